"""Field values as the EW REST interface writes them: choices by display text, repeated keys
for multi-value fields, ``:value`` for linked fields, and Agiloft's date forms."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from rsbridge.sim.agiloft import errors
from rsbridge.sim.agiloft.tables import FieldDef, Record

# The documented EWRead example answers ``date_updated='Dec 27 2017 04:40:24'``.
DATE_OUTPUT = "%b %d %Y %H:%M:%S"
DATE_INPUTS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", DATE_OUTPUT, "%m/%d/%Y %H:%M")
_INTEGER = re.compile(r"[-+]?\d+")
_QUALIFIER = re.compile(r"(?<!\\):")

# Finds the records of a linked table whose field equals a value.
LinkFinder = Callable[[str, str, str], list[Record]]


def render_datetime(moment: float) -> str:
    """Epoch seconds as the KB answers a date (UTC)."""
    return datetime.fromtimestamp(moment, UTC).strftime(DATE_OUTPUT)


def parse_datetime(text: str) -> datetime | None:
    """A date in one of the accepted forms (UTC), or ``None``."""
    for form in DATE_INPUTS:
        try:
            return datetime.strptime(text.strip(), form).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def same(a: str, b: str) -> bool:
    """Equality as the KB's database compares text: case-insensitive (inferred)."""
    return a.casefold() == b.casefold()


def link_value(raw: str) -> str:
    """The value of a linked-field write: ``:Agiloft`` or ``Company:Agiloft`` (query by
    example) gives ``Agiloft``; ``\\:`` and ``\\?`` are literal ``:`` and ``?``."""
    parts = _QUALIFIER.split(raw, maxsplit=1)
    value = parts[1] if len(parts) == 2 else parts[0]
    return value.replace("\\:", ":").replace("\\?", "?")


def coerce(
    table: str, fdef: FieldDef, raw: Sequence[str], find: LinkFinder
) -> tuple[Any, list[int] | None]:
    """The stored value of a write (and the linked ids of a link); raises ``AgiloftError``.

    An empty value clears the field. A single-valued field given several values keeps the
    last one (inferred).
    """
    texts = [t for t in raw if t != ""]
    if not texts:
        return ([] if fdef.many else None), ([] if fdef.type == "link" else None)
    if fdef.type == "file":
        raise errors.wrong_value(fdef.name, "files are sent as multipart parts or with EWAttach")
    if fdef.type == "link":
        return _link(fdef, texts, find)
    if fdef.type == "multichoice":
        out: list[str] = []
        for text in texts:
            _check_choice(fdef, text)
            if text not in out:
                out.append(text)
        return out, None
    text = texts[-1]
    if fdef.type == "choice":
        _check_choice(fdef, text)
    elif fdef.type == "integer":
        if not _INTEGER.fullmatch(text.strip()):
            raise errors.wrong_value(fdef.name, f"{text!r} is not a whole number")
        text = str(int(text))
    elif fdef.type == "datetime":
        moment = parse_datetime(text)
        if moment is None:
            raise errors.wrong_value(fdef.name, f"{text!r} is not a date (use 2025-01-15 10:00:00)")
        text = moment.strftime(DATE_OUTPUT)
    return text, None


def _check_choice(fdef: FieldDef, text: str) -> None:
    if text not in fdef.choices:
        raise errors.wrong_value(
            fdef.name, f"{text!r} is not one of its choices ({', '.join(fdef.choices)})"
        )


def _link(fdef: FieldDef, texts: list[str], find: LinkFinder) -> tuple[Any, list[int]]:
    shown: list[str] = []
    ids: list[int] = []
    for text in texts if fdef.multi else texts[-1:]:
        value = link_value(text)
        if value.startswith("?"):
            raise errors.wrong_value(fdef.name, "the '?' sub-select form is not simulated")
        found = find(fdef.link_table, fdef.link_field, value)
        if len(found) != 1:
            count = "no record" if not found else f"{len(found)} records"
            raise errors.wrong_value(
                fdef.name, f"{count} in {fdef.link_table} with {fdef.link_field} {value!r}"
            )
        target = found[0]
        if target.id not in ids:
            ids.append(target.id)
            shown.append((target.texts(fdef.link_field) or [value])[0])
    return (shown if fdef.multi else shown[0]), ids
