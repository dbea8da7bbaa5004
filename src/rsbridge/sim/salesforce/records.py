"""sObject resources: basic info, create (JSON or multipart), read, update, delete, blobs,
and the external-id resource (read, upsert, delete).

Formats (REST API guide, "Working with Records"): create answers ``201 {"id", "success",
"errors"}``; update and delete ``204`` with no body; read answers the record with
``attributes`` (``?fields=`` narrows it). Upsert answers ``201`` with ``created: true`` for
a new record; an update answers ``204`` up to API v45.0 and ``200`` with ``created:
false`` from v46.0 (the upsert page's examples); several matches answer ``300`` with the
matching records' URLs. ``ContentVersion`` also takes a ``multipart/form-data`` body: an
``entity_content`` JSON part and a ``VersionData`` binary part
(dome_sobject_insert_update_blob).
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from rsbridge.sim.salesforce import query
from rsbridge.sim.salesforce.errors import SalesforceError, json_parser_error, not_found
from rsbridge.sim.salesforce.schema import global_entry
from rsbridge.sim.salesforce.wire import (
    Context,
    SimRequest,
    SimResponse,
    body_object,
    json_response,
)
from rsbridge.sim.servicenow.server import _multipart  # one form-data reader for both

if TYPE_CHECKING:
    from rsbridge.sim.salesforce.server import Handler, Org


class Records:
    """The sObject handlers of one org."""

    def __init__(self, org: Org) -> None:
        self.org = org
        self.state = org.state

    def by_external_id_methods(self) -> dict[str, Handler]:
        """Methods of ``/sobjects/{type}/{field}/{value}`` (and blob fields)."""
        return {"GET": self.read_external, "PATCH": self.upsert, "DELETE": self.delete_external}

    def basic_info(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        definition = self.state.require_object(parts[1])
        recent = [
            {"attributes": query.attributes(ctx.version, definition.name, r["Id"]), "Id": r["Id"]}
            for r in self.state.all_records(definition.name)[-5:]
        ]
        return json_response(
            200, {"objectDescribe": global_entry(definition, ctx.version), "recentItems": recent}
        )

    def _values(self, req: SimRequest, object_name: str) -> dict[str, Any]:
        content_type = req.headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/"):
            return body_object(req)
        parts = _multipart(req.body, content_type)
        if parts is None:
            raise json_parser_error("Multipart message must have a boundary")
        values: dict[str, Any] | None = None
        blob: bytes | None = None
        blob_field = ""
        for name, file_name, _part_type, data in parts:
            if name == "entity_content" or (file_name is None and values is None):
                try:
                    parsed = json.loads(data.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    raise json_parser_error("entity_content is not valid JSON") from None
                if not isinstance(parsed, dict):
                    raise json_parser_error("entity_content must be a JSON object")
                values = parsed
            else:
                blob, blob_field = data, name
        if values is None:
            raise SalesforceError(
                400, "INVALID_MULTIPART_REQUEST", "Multipart message must include entity_content"
            )
        definition = self.state.require_object(object_name)
        column = definition.field(blob_field) if blob is not None else None
        if blob is not None:
            if column is None or column.type != "base64":
                raise SalesforceError(
                    400,
                    "INVALID_FIELD",
                    f"Binary field '{blob_field}' does not exist on {definition.name}",
                )
            values[column.name] = base64.b64encode(blob).decode("ascii")
        return values

    def create(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        values = self._values(req, parts[1])
        record = self.state.create(parts[1], values, user_id=ctx.user_id)
        return json_response(201, {"id": record["Id"], "success": True, "errors": []})

    def _record(self, parts: list[str]) -> tuple[str, dict[str, Any]]:
        definition = self.state.require_object(parts[1])
        record = self.state.get(definition.name, parts[2])
        if record is None:
            raise not_found()
        return definition.name, record

    def read(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        _, record = self._record(parts)
        fields = req.params.get("fields")
        wanted = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
        return json_response(200, query.public_record(self.state, ctx.version, record, wanted))

    def update(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        name, record = self._record(parts)
        self.state.update(name, record["Id"], body_object(req), user_id=ctx.user_id)
        return SimResponse(204)

    def delete(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        definition = self.state.require_object(parts[1])
        self.state.delete(definition.name, parts[2])
        return SimResponse(204)

    def read_external(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        definition = self.state.require_object(parts[1])
        record = self.state.get(definition.name, parts[2])
        column = definition.field(parts[3])
        if record is not None and column is not None and column.type == "base64":
            data = self.state.blobs.get(record["Id"], b"")
            return SimResponse(200, data, {"Content-Type": "application/octet-stream"})
        matches = self._external(definition.name, parts[2], parts[3])
        if len(matches) > 1:
            raise query.MultipleMatchesError([r["Id"] for r in matches], definition.name)
        if not matches:
            raise not_found()
        return json_response(200, query.public_record(self.state, ctx.version, matches[0]))

    def _external(self, object_name: str, field_name: str, value: str) -> list[dict[str, Any]]:
        definition = self.state.require_object(object_name)
        column = definition.field(field_name)
        if column is None or not (column.external_id or column.name == "Id"):
            raise not_found(
                f"Provided external ID field does not exist or is not accessible: {field_name}"
            )
        return self.state.find_by(object_name, column.name, value)

    def upsert(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        record, created = query.upsert(
            self.state,
            parts[1],
            parts[2],
            parts[3],
            body_object(req),
            user_id=ctx.user_id,
            update_only=req.params.get("updateOnly", "").lower() == "true",
        )
        body = {"id": record["Id"], "success": True, "errors": [], "created": created}
        if created:
            return json_response(201, body)
        if float(ctx.version) < 46.0:
            return SimResponse(204)
        return json_response(200, body)

    def delete_external(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        definition = self.state.require_object(parts[1])
        matches = self._external(definition.name, parts[2], parts[3])
        if len(matches) > 1:
            raise query.MultipleMatchesError([r["Id"] for r in matches], definition.name)
        if not matches:
            raise not_found()
        self.state.delete(definition.name, matches[0]["Id"])
        return SimResponse(204)
