"""What a session puts in the BeyondTrust Session Details table, by logical column.

Values are Agiloft's wire form: text, dates as ``2025-01-15 10:00:00`` (UTC), a linked
field as ``:<value>`` (the linked record found by Agiloft, with ``:`` and ``?`` escaped).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.agiloft.client import link_value


def kb_time(value: datetime | None) -> str | None:
    """Agiloft's date-time text, UTC, or None."""
    if value is None:
        return None
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration_text(value: timedelta | None) -> str | None:
    """``HH:MM:SS`` (hours past 24 kept), or None."""
    if value is None:
        return None
    seconds = max(int(value.total_seconds()), 0)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def session_values(
    session: SupportSession,
    *,
    appliance_id: str,
    case_id: str | None,
    technician: str | None,
    chat: str,
    report_html: str,
) -> dict[str, str | None]:
    """The session record by logical column (None: left as it is)."""
    customer = session.primary_customer
    host = next((c.hostname for c in session.customers if c.primary and c.hostname), None)
    return {
        "session_id": session.lsid,
        "support_case": link_value(case_id) if case_id else None,
        "appliance": appliance_id,
        "external_key": session.external_key,
        "start_time": kb_time(session.start_time),
        "end_time": kb_time(session.end_time),
        "duration": duration_text(session.duration),
        "technician": link_value(technician) if technician else None,
        "primary_representative": session.primary_rep.name if session.primary_rep else None,
        "customer_name": customer.name if customer else None,
        "customer_hostname": host,
        "public_site": session.public_site.name if session.public_site else None,
        "chat_transcript": chat or None,
        "session_report": report_html,
    }
