"""Field values: checking and converting what a client writes, formatting dates.

Values are kept as the REST API returns them (JSON types; date-times as
``2025-01-15T10:00:00.000+0000``, dates as ``2025-01-15``). The error codes and texts
are the platform's (errorcodes.htm and the field-type pages); the exact wording of
``JSON_PARSER_ERROR`` and ``INVALID_CROSS_REFERENCE_KEY`` texts is inferred from
community reports.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, date, datetime
from typing import Any

from rsbridge.sim.salesforce.errors import SalesforceError, json_parser_error
from rsbridge.sim.salesforce.ids import to18
from rsbridge.sim.salesforce.schema import FieldDef

_TEXT_TYPES = frozenset({"string", "textarea", "email", "phone", "url", "picklist"})


def format_datetime(moment: float) -> str:
    """UNIX seconds as the API writes date-times: ``2025-01-15T10:00:00.000+0000``."""
    stamp = datetime.fromtimestamp(moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}+0000"


def _bad_value(definition: FieldDef, raw: Any) -> SalesforceError:
    kind = {"int": "int", "double": "double", "boolean": "boolean"}.get(definition.type, "")
    kind = kind or definition.type
    return json_parser_error(
        f"Cannot deserialize instance of {kind} from VALUE_STRING value {raw} "
        "or request may be missing a required field"
    )


def coerce(definition: FieldDef, raw: Any) -> Any:
    """The stored form of ``raw`` written to ``definition`` (``None`` stays ``None``)."""
    if raw is None:
        return None
    kind = definition.type
    if kind in _TEXT_TYPES:
        if isinstance(raw, bool):
            text = "true" if raw else "false"
        elif isinstance(raw, int | float | str):
            text = str(raw)
        else:
            raise json_parser_error(
                f"Cannot deserialize instance of string from START_OBJECT value "
                f"for field {definition.name}"
            )
        size = len(text.encode("utf-8")) if definition.byte_length else len(text)
        if definition.length and size > definition.length:
            raise SalesforceError(
                400,
                "STRING_TOO_LONG",
                f"{definition.label}: data value too large: {text[:20]}... "
                f"(max length={definition.length})",
                [definition.name],
            )
        if kind == "picklist" and definition.restricted and text not in definition.picklist_values:
            raise SalesforceError(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{definition.label}: bad value for restricted picklist field: {text}",
                [definition.name],
            )
        if kind == "email" and text and "@" not in text:
            raise SalesforceError(
                400,
                "INVALID_EMAIL_ADDRESS",
                f"{definition.label}: invalid email address: {text}",
                [definition.name],
            )
        return text
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise _bad_value(definition, raw)
    if kind in ("int", "double", "currency", "percent"):
        if isinstance(raw, bool):
            raise _bad_value(definition, raw)
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise _bad_value(definition, raw) from None
        return int(number) if kind == "int" else number
    if kind == "datetime":
        moment = _parse_datetime(raw)
        if moment is None:
            raise _bad_value(definition, raw)
        return format_datetime(moment.timestamp())
    if kind == "date":
        try:
            return date.fromisoformat(str(raw)[:10]).isoformat()
        except ValueError:
            raise _bad_value(definition, raw) from None
    if kind in ("reference", "id"):
        normal = to18(raw) if isinstance(raw, str) else None
        if normal is None:
            raise SalesforceError(
                400,
                "MALFORMED_ID",
                f"{definition.label}: id value of incorrect type: {raw}",
                [definition.name],
            )
        return normal
    if kind == "base64":
        return decode_base64(definition, raw)
    return raw


def decode_base64(definition: FieldDef, raw: Any) -> bytes:
    """The bytes of a base64 field value."""
    try:
        return base64.b64decode(str(raw), validate=True)
    except (binascii.Error, ValueError):
        raise SalesforceError(
            400,
            "JSON_PARSER_ERROR",
            f"Illegal base64 value for field {definition.name}",
        ) from None


def _parse_datetime(raw: Any) -> datetime | None:
    if not isinstance(raw, str):
        return None
    text = raw.strip().replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
