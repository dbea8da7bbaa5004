"""What a session puts in rsbridge's session forms, by field name (see :mod:`.forms`).

Keys are derived, not stored anywhere else: the session's key from (appliance,
integration, LSID), each child row's from the session's key, so a replay computes the
same keys and finds what an earlier attempt wrote. Text is cut to each field's length
(long fields are not cut); dates are written as AR answers them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rsbridge.appliance.report_model import ExitSurvey, SessionEvent, SupportSession
from rsbridge.connectors.remedy.forms import (
    EVENTS,
    EVENTS_PER_ROW,
    LONG,
    PARTICIPANT,
    ROW_KEY,
    SESSION,
    SESSION_KEY,
    SURVEY,
    SessionForm,
)
from rsbridge.connectors.text import digest_key


@dataclass(frozen=True, slots=True)
class Row:
    """One entry to write: its form, key and values by field name."""

    form: SessionForm
    key: str
    values: dict[str, Any]


row_key = digest_key
"""The key of an entry, derived from ``parts`` (fits the 80-character key fields)."""


def session_key(appliance_id: str, integration: str, lsid: str) -> str:
    """The key of a session's ``RSB:Session`` entry: the same for its import and surveys."""
    return row_key(appliance_id, integration, lsid, "session")


def ar_time(value: datetime | None) -> str | None:
    """AR's date-time text (``2022-06-21T11:08:05.000+0000``, UTC), or None."""
    if value is None:
        return None
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _fit(form: SessionForm, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without Nones, text cut to each field's length (with an ellipsis)."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        length = form.field(name).length
        if isinstance(value, str) and length != LONG and len(value) > length:
            value = value[: length - 1] + "…"
        out[name] = value
    return out


def session_row(
    session: SupportSession,
    key: str,
    *,
    appliance_id: str,
    integration: str,
    ticket_number: str | None,
    ticket_form: str | None,
    details: str,
    association: str,
    state: str,
) -> Row:
    """The ``RSB:Session`` entry: the columns of the incident's BeyondTrust Sessions panel."""
    rep = session.primary_rep
    customer = session.primary_customer
    values = {
        SESSION_KEY: key,
        "Session ID": session.lsid,
        "Appliance": appliance_id,
        "Integration": integration,
        "Ticket Number": ticket_number,
        "Ticket Form": ticket_form,
        "Start Time": ar_time(session.start_time),
        "End Time": ar_time(session.end_time),
        "Duration": (
            int(session.duration.total_seconds()) if session.duration is not None else None
        ),
        "File Count": session.file_transfer_count,
        "Representative": rep.name if rep else None,
        "Customer": customer.name if customer else None,
        "Public Site": session.public_site.name if session.public_site else None,
        "External Key": session.external_key,
        "Details": details,
        "Import State": state,
        "Association": association or None,
    }
    return Row(SESSION, key, _fit(SESSION, values))


def child_rows(session: SupportSession, key: str, ticket_number: str | None) -> Iterator[Row]:
    """The session's participants (representatives, then customers) and its events,
    :data:`~.forms.EVENTS_PER_ROW` to an entry."""

    def row(form: SessionForm, name: str, values: dict[str, Any]) -> Row:
        child = row_key(key, form.logical, name)
        common = {
            ROW_KEY: child,
            SESSION_KEY: key,
            "Session ID": session.lsid,
            "Ticket Number": ticket_number,
        }
        return Row(form, child, _fit(form, {**common, **values}))

    for i, rep in enumerate(session.representatives):
        yield row(
            PARTICIPANT,
            f"rep/{i}",
            {
                "Role": "Representative",
                "Name": rep.display_name or rep.public_display_name or rep.username,
                "Username": rep.username,
                "Primary": "Yes" if rep.primary else "No",
                "Host": rep.hostname,
                "Public IP": _text(rep.public_ip),
                "Private IP": _text(rep.private_ip),
                "Operating System": rep.os,
                "Seconds Involved": rep.seconds_involved,
            },
        )
    for i, customer in enumerate(session.customers):
        yield row(
            PARTICIPANT,
            f"customer/{i}",
            {
                "Role": "Customer",
                "Name": customer.info.get("name") or customer.username,
                "Username": customer.username,
                "Primary": "Yes" if customer.primary else "No",
                "Host": customer.hostname,
                "Public IP": _text(customer.public_ip),
                "Private IP": _text(customer.private_ip),
                "Operating System": customer.os,
            },
        )
    events = session.events
    for start in range(0, len(events), EVENTS_PER_ROW):
        page = events[start : start + EVENTS_PER_ROW]
        yield row(
            EVENTS,
            f"events/{start}",
            {
                "First Sequence": start,
                "Last Sequence": start + len(page) - 1,
                "First Time": ar_time(page[0].timestamp),
                "Last Time": ar_time(page[-1].timestamp),
                "Events": "\n".join(event_line(e, start + i) for i, e in enumerate(page)),
            },
        )


def event_line(event: SessionEvent, sequence: int) -> str:
    """One event on one line: sequence, time, type, who, to whom, what (line breaks
    inside a chat message shown as ``\\n`` so that a line stays one event)."""
    parts = [
        str(sequence),
        ar_time(event.timestamp) or "-",
        event.event_type,
        event.performed_by.name if event.performed_by else "-",
    ]
    if event.destination is not None:
        parts.append(f"-> {event.destination.name}")
    detail = event.body or event.filename or ""
    if event.data:
        detail = (detail + " " if detail else "") + " ".join(
            f"{k}={v}" for k, v in event.data.items()
        )
    line = " | ".join(parts) + (f" | {detail}" if detail else "")
    return line.replace("\\", "\\\\").replace("\r", "").replace("\n", "\\n")


def survey_row(
    key: str,
    delivery_key: str,
    *,
    lsid: str,
    kind: str,
    survey: ExitSurvey,
    submitted: datetime | None,
    ticket_number: str | None,
) -> Row:
    """The ``RSB:Session Survey`` entry of one exit survey (its key from the delivery's)."""
    child = row_key(delivery_key, "survey")
    answers = "\n".join(
        f"{a.name}: {a.value}".replace("\r", "").replace("\n", " ") for a in survey.answers
    )
    values = {
        ROW_KEY: child,
        SESSION_KEY: key,
        "Session ID": lsid,
        "Ticket Number": ticket_number,
        "Kind": "Customer" if kind == "customer" else "Representative",
        "Submitted": ar_time(submitted),
        "Answers": answers,
    }
    return Row(SURVEY, child, _fit(SURVEY, values))


def _text(value: object) -> str | None:
    return None if value is None else str(value)
