"""Session records: the rows one imported session becomes, with stable sys_ids.

Every row's sys_id is derived from the session's idempotency key and the row's place
(``sha256(key | table | index)`` cut to 32 hex digits, the sys_id format), so writing
the same session twice addresses the same rows: the connector inserts only the rows
that are missing, and a replay changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from rsbridge.appliance.report_model import ExitSurvey, SessionEvent, SupportSession
from rsbridge.connectors.servicenow.schema import Schema

MAX_TEXT = 4000  # characters of a u_body / u_details / u_answer column


@dataclass(frozen=True, slots=True)
class Row:
    """One row to insert: its table (logical name), stable sys_id and values."""

    table: str
    sys_id: str
    values: dict[str, str]


def stable_id(*parts: str) -> str:
    """A 32-hex-digit sys_id derived from ``parts``."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


_CODE_TAG = re.compile(r"\[(/?code)\]", re.IGNORECASE)
ZERO_WIDTH_SPACE = "\u200b"


def journal_safe(text: str) -> str:
    """``text`` that cannot open or close a ``[code]`` block in a journal field.

    ServiceNow renders ``[code]...[/code]`` in work notes and comments as HTML; text
    from a session (chat, notes, names, anything a template renders) must stay text. A
    zero-width space after the bracket breaks the tag and reads the same.
    """
    return _CODE_TAG.sub(lambda tag: f"[{ZERO_WIDTH_SPACE}{tag.group(1)}]", text)


def sn_time(value: datetime | None) -> str:
    """ServiceNow's date-time text (UTC, space separated), or ``""``."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def _b(flag: bool) -> str:
    return "true" if flag else "false"


def _s(value: object) -> str:
    return "" if value is None else str(value)


def _cut(text: str | None, limit: int = MAX_TEXT) -> str:
    if not text:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def session_values(session: SupportSession, appliance_id: str) -> dict[str, str]:
    """The session row's values (logical columns), references excepted."""
    recording = session.recording
    return {
        "lsid": session.lsid,
        "appliance": appliance_id,
        "session_type": session.session_type,
        "start_time": sn_time(session.start_time),
        "end_time": sn_time(session.end_time),
        "duration": _s(int(session.duration.total_seconds()) if session.duration else ""),
        "external_key": _cut(session.external_key, 1024),
        "public_site": session.public_site.name if session.public_site else "",
        "jumpoint": session.jumpoint.name if session.jumpoint else "",
        "jump_group": session.jump_group.name if session.jump_group else "",
        "primary_rep": session.primary_rep.name if session.primary_rep else "",
        "primary_customer": session.primary_customer.name if session.primary_customer else "",
        "file_transfers": str(session.file_transfer_count),
        "chat_url": _s(session.chat_view_url),
        "recording_url": _s(recording.view_url if recording else None),
    }


def child_rows(
    session: SupportSession, key: str, session_sys_id: str, rep_users: dict[str, str]
) -> Iterator[Row]:
    """The rows of the child tables (reps, customers, teams, events, attributes,
    recordings); ``rep_users`` maps rep usernames to sys_user sys_ids."""

    def row(table: str, index: int, values: dict[str, str]) -> Row:
        return Row(table, stable_id(key, table, str(index)), {"session": session_sys_id, **values})

    for i, rep in enumerate(session.representatives):
        yield row(
            "rep",
            i,
            {
                "username": _s(rep.username),
                "display_name": _s(rep.display_name or rep.public_display_name),
                "private_display_name": _s(rep.private_display_name),
                "rep_id": _s(rep.id),
                "user": rep_users.get(rep.username or "", ""),
                "public_ip": _s(rep.public_ip),
                "private_ip": _s(rep.private_ip),
                "hostname": _s(rep.hostname),
                "os": _s(rep.os),
                "primary": _b(rep.primary),
                "owner": _b(rep.session_owner),
                "invited": _b(rep.invited),
                "seconds_involved": _s(rep.seconds_involved),
            },
        )
    for i, customer in enumerate(session.customers):
        info = customer.info
        yield row(
            "customer",
            i,
            {
                "name": _s(info.get("name")),
                "username": _s(customer.username),
                "company": _s(info.get("company")),
                "details": _cut(info.get("details")),
                "public_ip": _s(customer.public_ip),
                "private_ip": _s(customer.private_ip),
                "hostname": _s(customer.hostname),
                "os": _s(customer.os),
                "primary": _b(customer.primary),
            },
        )
    for i, team in enumerate(session.teams):
        yield row("team", i, {"name": team.name, "team_id": _s(team.id)})
    for i, event in enumerate(session.events):
        yield row("event", i, event_values(event, i))
    for i, attr in enumerate(session.custom_attributes):
        yield row(
            "attribute",
            i,
            {
                "code_name": attr.code_name,
                "display_name": attr.display_name,
                "value": _cut(attr.value, 1024),
            },
        )
    recordings = [("session", session.recording)] if session.recording else []
    recordings += [("command_shell", r) for r in session.command_shell_recordings]
    for i, (kind, rec) in enumerate(recordings):
        yield row(
            "recording",
            i,
            {
                "kind": kind,
                "instance": _s(rec.instance),
                "view_url": _s(rec.view_url),
                "download_url": _s(rec.download_url),
            },
        )


def event_values(event: SessionEvent, sequence: int) -> dict[str, str]:
    """One event row: who did what, when, with the body and data it carries."""
    data = "\n".join(f"{k}={v}" for k, v in event.data.items())
    if event.system_information:
        data = (
            (data + "\n" if data else "")
            + "system information: "
            + ", ".join(f"{c.name} ({len(c.rows)} rows)" for c in event.system_information)
        )
    return {
        "sequence": str(sequence),
        "time": sn_time(event.timestamp),
        "event_type": event.event_type,
        "performed_by": event.performed_by.name if event.performed_by else "",
        "destination": event.destination.name if event.destination else "",
        "body": _cut(event.body),
        "filename": _s(event.filename),
        "filesize": _s(event.filesize),
        "data": _cut(data),
    }


def survey_rows(
    key: str, session_sys_id: str, kind: str, index: int, survey: ExitSurvey
) -> list[Row]:
    """One row per answer of an exit survey."""
    return [
        Row(
            "survey",
            stable_id(key, "survey", str(index), str(i)),
            {
                "session": session_sys_id,
                "kind": kind,
                "survey": str(index),
                "question": answer.name,
                "answer": _cut(answer.value),
            },
        )
        for i, answer in enumerate(survey.answers)
    ]


def to_record(schema: Schema, row: Row) -> dict[str, str]:
    """The row as a ServiceNow record (real column names, its sys_id included)."""
    return {"sys_id": row.sys_id, **schema.row(row.table, row.values)}
