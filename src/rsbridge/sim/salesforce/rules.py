"""Business rules the platform applies on writes, reproduced because integrations notice them.

``CaseNumber`` and other auto-numbers, ``Name`` of contacts and users, ``IsClosed`` /
``ClosedDate`` of cases, and the ``ContentDocument`` (with a ``ContentDocumentLink`` to
``FirstPublishLocationId``) behind every new ``ContentVersion`` (ContentVersion object
reference: the document is created with the first version).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from rsbridge.sim.salesforce.errors import SalesforceError
from rsbridge.sim.salesforce.schema import ObjectDef

if TYPE_CHECKING:
    from rsbridge.sim.salesforce.state import SimSalesforceState

Record = dict[str, Any]


def apply(
    state: SimSalesforceState, definition: ObjectDef, record: Record, stamp: str, *, creating: bool
) -> None:
    """Fill the fields the platform computes on a write (``record`` is changed in place)."""
    name = definition.name
    if creating and definition.auto_number_format:
        # Case numbers of a new org start after the sample data's (00001001).
        number = state.auto_numbers.get(name, 1000 if name == "Case" else 0) + 1
        state.auto_numbers[name] = number
        record[definition.name_field] = re.sub(
            r"\{(0+)\}",
            lambda m: str(number).zfill(len(m.group(1))),
            definition.auto_number_format,
        )
    if name in ("Contact", "User"):
        parts = [record.get("FirstName"), record.get("LastName")]
        record["Name"] = " ".join(p for p in parts if p)
    if name == "Case":
        closed = record.get("Status") == "Closed"
        if closed and not record.get("IsClosed"):
            record["ClosedDate"] = stamp
        elif not closed:
            record["ClosedDate"] = None
        record["IsClosed"] = closed
    blob = record.pop("__blob__", None)
    if name == "ContentVersion" and creating:
        data = blob if isinstance(blob, bytes) else b""
        if blob is None:
            raise SalesforceError(
                400,
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [VersionData]",
                ["VersionData"],
            )
        path = str(record.get("PathOnClient") or "")
        extension = path.rsplit(".", 1)[-1].lower() if "." in path else ""
        record |= {
            "Title": record.get("Title") or path.rsplit(".", 1)[0],
            "FileExtension": extension or None,
            "FileType": extension.upper() or "UNKNOWN",
            "ContentSize": len(data),
            "VersionNumber": "1",
            "IsLatest": True,
        }
        record["__blob__"] = data


def content_document(state: SimSalesforceState, version: Record, user_id: str | None) -> None:
    """Create the ContentDocument (and link) of a new ContentVersion; keep its bytes."""
    blob = version.pop("__blob__", b"")
    state.blobs[version["Id"]] = blob
    document = state.create("ContentDocument", {}, user_id=user_id)
    before = dict(document)
    document |= {
        "Title": version["Title"],
        "FileExtension": version["FileExtension"],
        "FileType": version["FileType"],
        "ContentSize": version["ContentSize"],
        "LatestPublishedVersionId": version["Id"],
    }
    state.reindex("ContentDocument", before, document)
    version["ContentDocumentId"] = document["Id"]
    location = version.get("FirstPublishLocationId")
    if location:
        state.create(
            "ContentDocumentLink",
            {
                "ContentDocumentId": document["Id"],
                "LinkedEntityId": location,
                "ShareType": "V",
                "Visibility": "AllUsers",
            },
            user_id=user_id,
        )
