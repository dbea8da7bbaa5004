"""Values as the AR REST API writes and reads them (itsm-apis.md 3.2, "Value formats").

Stored by type: characters as ``str``, integers as ``int``, dates as epoch seconds,
selections as their enumeration code, attachments as ``{"name", "sizeBytes"}``. Answered
as AR does: dates ``2022-06-21T11:08:05.000+0000``, selections as display strings,
attachments as ``{name, sizeBytes, href}``, empty fields as ``null``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rsbridge.sim.remedy.errors import bad_value
from rsbridge.sim.remedy.forms import FieldDef, FormDef

LATEST = 253402300799  # 9999-12-31T23:59:59Z: later dates cannot be written back


def format_date(epoch: int) -> str:
    """``2022-06-21T11:08:05.000+0000`` (UTC), as in the recorded Helix answers."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def parse_date(text: str) -> int:
    """Epoch seconds from an ISO-8601 date (AR's own format included) or epoch digits."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def render(fdef: FieldDef, value: Any, href: str) -> Any:
    """One stored value as the API answers it; ``href`` is the attachment's download URL."""
    if value is None:
        return None
    if fdef.type == "datetime":
        return format_date(int(value))
    if fdef.type == "selection":
        return fdef.display(int(value))
    if fdef.type == "attachment":
        return {"name": value["name"], "sizeBytes": value["sizeBytes"], "href": href}
    return value


def coerce(form: FormDef, fdef: FieldDef, raw: Any) -> Any:
    """A client's value in stored form; raises ARERR 306 for what the field cannot hold.

    Selections take the display string or the enumeration code (a number or digits), as
    integrations send either (itsm-apis.md 3.3, "Some integrations send the enum codes").
    """
    if raw is None or raw == "":
        return None
    try:
        if fdef.type == "selection":
            if isinstance(raw, str) and raw in fdef.options:
                return fdef.options[raw]
            code = int(raw)
            if fdef.display(code) is None:
                raise ValueError(raw)
            return code
        if fdef.type == "datetime":
            epoch = raw if isinstance(raw, int) else parse_date(str(raw))
            if not 0 <= epoch <= LATEST:
                raise ValueError(raw)
            return epoch
        if fdef.type == "integer":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if fdef.type == "attachment":
            # The JSON part names the file; the bytes come in the attach-<field> part.
            return {"name": str(raw), "sizeBytes": 0}
    except (ValueError, TypeError):
        raise bad_value(form.name, fdef.name, str(raw)) from None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise bad_value(form.name, fdef.name, str(raw))
    return str(raw)
