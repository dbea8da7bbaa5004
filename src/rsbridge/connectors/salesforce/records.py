"""Session records for Salesforce: the session and its children, each with an import key.

Every record carries ``Import_Key__c``, derived from the delivery's idempotency key and
the record's place in the session (``sha256(key | object | index)``, 40 hex digits), and
is upserted by it: writing the same session twice addresses the same records. Children
name their session by its import key (``"Session__r": {"Import_Key__c": ...}``), so the
session and all its children go in one composite call, in any order Salesforce applies.

Values are typed as Salesforce's REST API reads them: ISO 8601 date-times, numbers,
booleans; text is cut to its field's length (customer text can be long).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rsbridge.appliance.report_model import ExitSurvey, SessionEvent, SupportSession
from rsbridge.connectors.salesforce.schema import OBJECTS_BY_LOGICAL, Schema
from rsbridge.connectors.text import digest_key

KEY_FIELD = "key"
"""The logical name of every object's ``Import_Key__c``."""


@dataclass(frozen=True, slots=True)
class SfRecord:
    """One record to upsert: its object (logical name), import key and logical values."""

    obj: str
    key: str
    values: dict[str, Any]


import_key = digest_key
"""The import key of a record, derived from ``parts`` (fits the 80-character field)."""


def sf_time(value: datetime | None) -> str | None:
    """Salesforce's date-time text (ISO 8601, UTC, milliseconds), or None."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cut(obj: str, logical: str, value: str | None) -> str | None:
    """``value`` cut to the length of field ``logical`` of ``obj`` (None stays None)."""
    if value is None:
        return None
    limit = next(f.max_chars for f in OBJECTS_BY_LOGICAL[obj].fields if f.logical == logical)
    if limit is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


def session_record(
    session: SupportSession,
    key: str,
    appliance_id: str,
    *,
    case_id: str | None,
    rep_user: str | None,
    recording_base_url: str | None,
) -> SfRecord:
    """The session record (the parent of every child)."""
    recording = session.recording
    recording_url = recording.view_url if recording else None
    if recording_base_url:
        # The vendor's "External Recording Base URL": lsid=<lsid> is appended.
        joiner = "&" if "?" in recording_base_url else "?"
        recording_url = f"{recording_base_url}{joiner}lsid={session.lsid}"
    values: dict[str, Any] = {
        "lsid": session.lsid,
        "appliance": appliance_id,
        "session_type": session.session_type,
        "case": case_id,
        "start_time": sf_time(session.start_time),
        "end_time": sf_time(session.end_time),
        "duration": int(session.duration.total_seconds()) if session.duration else None,
        "external_key": session.external_key,
        "public_site": session.public_site.name if session.public_site else None,
        "jumpoint": session.jumpoint.name if session.jumpoint else None,
        "jump_group": session.jump_group.name if session.jump_group else None,
        "primary_rep": session.primary_rep.name if session.primary_rep else None,
        "primary_rep_user": rep_user,
        "primary_customer": session.primary_customer.name if session.primary_customer else None,
        "file_transfers": session.file_transfer_count,
        "chat_url": session.chat_view_url,
        "recording_url": recording_url,
    }
    return SfRecord("session", key, {k: cut_any("session", k, v) for k, v in values.items()})


def cut_any(obj: str, logical: str, value: Any) -> Any:
    """:func:`cut` for text values; other values unchanged."""
    return cut(obj, logical, value) if isinstance(value, str) else value


def child_records(
    session: SupportSession, key: str, rep_users: dict[str, str]
) -> Iterator[SfRecord]:
    """The children of the session: reps, customers, teams, events, attributes,
    recordings; ``rep_users`` maps rep usernames to Salesforce User ids."""

    def record(obj: str, index: int, values: dict[str, Any]) -> SfRecord:
        typed = {k: cut_any(obj, k, v) for k, v in values.items()}
        return SfRecord(obj, import_key(key, obj, str(index)), typed)

    for i, rep in enumerate(session.representatives):
        yield record(
            "rep",
            i,
            {
                "username": rep.username,
                "display_name": rep.display_name or rep.public_display_name,
                "private_display_name": rep.private_display_name,
                "rep_id": rep.id,
                "user": rep_users.get(rep.username or ""),
                "public_ip": _str(rep.public_ip),
                "private_ip": _str(rep.private_ip),
                "hostname": rep.hostname,
                "os": rep.os,
                "primary": rep.primary,
                "owner": rep.session_owner,
                "invited": rep.invited,
                "seconds_involved": rep.seconds_involved,
            },
        )
    for i, customer in enumerate(session.customers):
        info = customer.info
        yield record(
            "customer",
            i,
            {
                "name": info.get("name"),
                "username": customer.username,
                "company": info.get("company"),
                "details": info.get("details"),
                "public_ip": _str(customer.public_ip),
                "private_ip": _str(customer.private_ip),
                "hostname": customer.hostname,
                "os": customer.os,
                "primary": customer.primary,
            },
        )
    for i, team in enumerate(session.teams):
        yield record("team", i, {"name": team.name, "team_id": team.id})
    for i, event in enumerate(session.events):
        yield record("event", i, event_values(event, i))
    for i, attr in enumerate(session.custom_attributes):
        yield record(
            "attribute",
            i,
            {"code_name": attr.code_name, "display_name": attr.display_name, "value": attr.value},
        )
    recordings = [("session", session.recording)] if session.recording else []
    recordings += [("command_shell", r) for r in session.command_shell_recordings]
    for i, (kind, rec) in enumerate(recordings):
        yield record(
            "recording",
            i,
            {
                "kind": kind,
                "instance": rec.instance,
                "view_url": rec.view_url,
                "download_url": rec.download_url,
            },
        )


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def event_values(event: SessionEvent, sequence: int) -> dict[str, Any]:
    """One event: who did what, when, with the body and data it carries."""
    data = "\n".join(f"{k}={v}" for k, v in event.data.items())
    if event.system_information:
        data = (
            (data + "\n" if data else "")
            + "system information: "
            + ", ".join(f"{c.name} ({len(c.rows)} rows)" for c in event.system_information)
        )
    return {
        "sequence": sequence,
        "time": sf_time(event.timestamp),
        "event_type": event.event_type,
        "performed_by": event.performed_by.name if event.performed_by else None,
        "destination": event.destination.name if event.destination else None,
        "body": event.body,
        "filename": event.filename,
        "filesize": event.filesize,
        "data": data or None,
    }


def survey_records(key: str, kind: str, index: int, survey: ExitSurvey) -> list[SfRecord]:
    """One record per answer of an exit survey."""
    return [
        SfRecord(
            "survey",
            import_key(key, "survey", str(index), str(i)),
            {
                "kind": kind,
                "survey": index,
                "question": cut("survey", "question", answer.name),
                "answer": cut("survey", "answer", answer.value),
            },
        )
        for i, answer in enumerate(survey.answers)
    ]


def to_sobject(schema: Schema, record: SfRecord, *, session_key: str | None) -> dict[str, Any]:
    """The record as Salesforce JSON (API names; the session named by its import key)."""
    values = {schema.field(record.obj, k): v for k, v in record.values.items() if v is not None}
    values[schema.field(record.obj, KEY_FIELD)] = record.key
    if session_key is not None:
        session_ref = schema.field(record.obj, "session")
        relationship = session_ref[: -len("__c")] + "__r"
        values[relationship] = {schema.field("session", KEY_FIELD): session_key}
    return values
