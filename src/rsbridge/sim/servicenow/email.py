"""The simulated instance's Email API: ``POST /api/now/v1/email`` and ``GET .../email/{id}``.

From ServiceNow's Email API reference: the caller needs the ``email_api_send`` role; the
body's ``to`` (required), ``cc`` and ``bcc`` are arrays of at most 100 addresses each
(``to`` maps to the ``recipients`` field, ``cc`` to ``copied``, ``bcc`` to
``blind_copied``); ``subject``, ``html`` (the ``body`` field), ``text`` (``body_text``),
``importance`` and ``headers`` (an object) are optional; ``table_name`` and
``table_record_id`` relate the e-mail to a record and need each other. The answer is 200
with ``{"result": {"id", "links": [{"rel": "self", ...}, {"rel": "status", ...}]}}``; the
record is an outbound e-mail of the e-mail log (``sys_email``: ``type = send-ready``,
``mailbox = outbox``, ``state = ready``), which the instance's mail job then sends. A GET
returns ``id``, ``type``, ``state``, ``subject``, ``to``, ``cc``, ``bcc``, ``html``,
``text``, ``importance`` and ``headers`` (``sysparm_fields`` picks some).

Inferred, no public sample: the field that keeps ``table_name`` (``target_table``) and
``table_record_id`` (``instance``, the e-mail's "Target"), the 400 texts for a missing
``to``, a bad address, a lone ``table_name`` or ``table_record_id`` and more than 100
addresses, the 404 for a related record that does not exist, and the 403 texts (a 403
for a GET of a record that does not exist is documented).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rsbridge.sim.servicenow.state import (
    SimServiceNowError,
    SimServiceNowState,
    SimUser,
    invalid_table,
    no_record,
)

SEND_ROLE = "email_api_send"
MAX_ADDRESSES = 100
# One address, optionally with a display name: "User1 <user1@example.com>".
_ADDRESS = re.compile(r"(?:[^<>@\r\n,;]*<)?[^@\s<>,;\"()]+@[^@\s<>,;\"()]+>?")
_FIELDS = {"to": "recipients", "cc": "copied", "bcc": "blind_copied"}


def _bad_request(detail: str) -> SimServiceNowError:
    return SimServiceNowError(400, "Bad Request", detail)


def _addresses(payload: dict[str, Any], name: str, *, required: bool) -> list[str]:
    value = payload.get(name)
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value):
        raise _bad_request(f"'{name}' must be a list of e-mail addresses")
    if len(value) > MAX_ADDRESSES:
        raise _bad_request(f"'{name}' holds more than {MAX_ADDRESSES} addresses")
    for address in value:
        if not isinstance(address, str) or not _ADDRESS.fullmatch(address.strip()):
            raise _bad_request(f"Invalid email address in '{name}'")
    return [a.strip() for a in value]


def send(state: SimServiceNowState, user: SimUser, payload: dict[str, Any]) -> dict[str, Any]:
    """Create the outbound e-mail record; the API's ``result``."""
    if not user.has_role(SEND_ROLE):
        raise SimServiceNowError(
            403, "User Not Authorized", f"The user does not have the {SEND_ROLE} role"
        )
    lists = {
        field: ",".join(_addresses(payload, name, required=name == "to"))
        for name, field in _FIELDS.items()
    }
    table, record_id = payload.get("table_name"), payload.get("table_record_id")
    if bool(table) != bool(record_id):
        raise _bad_request("table_name and table_record_id must be given together")
    if table:
        if not isinstance(table, str) or not state.has_table(table):
            raise invalid_table(str(table))
        if state.find(table, str(record_id)) is None:
            raise no_record()
    headers = payload.get("headers") or {}
    if not isinstance(headers, dict):
        raise _bad_request("'headers' must be an object")
    values = {
        **lists,
        "type": "send-ready",
        "state": "ready",
        "mailbox": "outbox",
        "subject": str(payload.get("subject") or ""),
        "body": str(payload.get("html") or ""),
        "body_text": str(payload.get("text") or ""),
        "importance": str(payload.get("importance") or ""),
        "headers": "\n".join(f"{k}: {v}" for k, v in headers.items()),
        "target_table": str(table or ""),
        "instance": str(record_id or ""),
        "user": user.user_name,
    }
    record = state.insert("sys_email", values, user=user.user_name)
    sys_id = record["sys_id"]
    return {
        "id": sys_id,
        "links": [
            {"rel": "self", "href": f"/now/v1/email/{sys_id}"},
            {"rel": "status", "href": f"/now/v1/email/{sys_id}?sysparm_fields=id,type,state,error"},
        ],
    }


def read(
    state: SimServiceNowState, user: SimUser, sys_id: str, fields: Sequence[str] | None
) -> dict[str, Any]:
    """An e-mail record in the API's shape (``fields``: the ones asked for)."""
    if not state.can_read(user, "sys_email"):
        raise SimServiceNowError(
            403, "User Not Authorized", "The user cannot read the Email [sys_email] table"
        )
    record = state.find("sys_email", sys_id)
    if record is None:
        raise SimServiceNowError(403, "No Record found", "Record doesn't exist or ACL restricts it")
    headers = dict(
        line.split(": ", 1) for line in record.get("headers", "").splitlines() if ": " in line
    )
    shown: dict[str, Any] = {
        "id": record["sys_id"],
        "type": record.get("type", ""),
        "state": record.get("state", ""),
        "error": record.get("error_string", ""),
        "subject": record.get("subject", ""),
        "html": record.get("body", ""),
        "text": record.get("body_text", ""),
        "importance": record.get("importance", ""),
        "headers": headers,
        **{name: record.get(field, "").split(",") for name, field in _FIELDS.items()},
    }
    return {k: v for k, v in shown.items() if not fields or k in fields}
