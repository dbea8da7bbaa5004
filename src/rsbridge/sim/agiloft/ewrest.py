"""The EW REST answer styles: ``EWREST_`` lines, the ``/.json`` envelope, error pages.

Lines (documented): ``EWREST_id='353';``, one ``EWREST_<field>='value';`` per field, empty
fields as ``null``; the documented EWSelect/EWSearch counters have spaces around ``=``
(``EWREST_id_length = '3';``). Values are JavaScript single-quoted strings (the format is
meant for ``eval()``), so ``\\``, ``'`` and line breaks are backslash-escaped (inferred).

The ``/.json`` decorator (documented): ``{"success": true, "message": "", "result": ...}``.

Errors without ``/.json`` (inferred from community clients, which see an HTML document
wrapping a typed exception): ``<html>...EWWrongDataException has occurred: [default
task-N][millis] <message>...</html>``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from typing import Any

from rsbridge.sim.agiloft.errors import AgiloftError

TEXT_TYPE = "text/plain; charset=UTF-8"
JSON_TYPE = "application/json; charset=UTF-8"
HTML_TYPE = "text/html; charset=UTF-8"
# Exception class names by status (EWWrongDataException is seen by community clients; the
# others are inferred).
EXCEPTIONS = {
    400: "EWWrongDataException",
    401: "EWAuthenticationException",
    403: "EWPermissionException",
    404: "EWNotFoundException",
    405: "EWWrongDataException",
    409: "EWConflictException",
    500: "EWOperationException",
}
_LINE = re.compile(r"EWREST_(?P<key>[^=\s']+)\s*=\s*(?:'(?P<value>(?:[^'\\]|\\.)*)'|null)\s*;")
_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r"}
_UNESCAPES = {"n": "\n", "r": "\r"}


def quote(value: str) -> str:
    """A value as a JavaScript single-quoted string (with the quotes)."""
    return "'" + "".join(_ESCAPES.get(c, c) for c in value) + "'"


def line(key: str, value: str | None) -> str:
    """``EWREST_<key>='value';`` (``EWREST_<key>=null;`` for an empty field)."""
    return f"EWREST_{key}={'null' if value is None else quote(value)};"


def counter(key: str, count: int | str) -> str:
    """``EWREST_<key> = 'n';``, the spaced form of the documented Select/Search counters."""
    return f"EWREST_{key} = '{count}';"


def text_body(lines: Iterable[str]) -> str:
    """Lines joined by newlines, with a final newline."""
    return "".join(f"{entry}\n" for entry in lines)


def record_lines(values: dict[str, Any], suffix: str = "") -> list[str]:
    """One line per field; a multi-valued field answers one line per value, indexed from 0
    (as ``EWREST_f_group_0`` in the documented EWRead example) when ``suffix`` is empty,
    comma-joined in search rows (``suffix`` ``_<row>``)."""
    out: list[str] = []
    for key, value in values.items():
        if isinstance(value, list):
            if not value:
                out.append(line(f"{key}{suffix}", None))
            elif suffix:
                out.append(line(f"{key}{suffix}", ", ".join(value)))
            else:
                out.extend(line(f"{key}_{i}", str(v)) for i, v in enumerate(value))
        else:
            out.append(line(f"{key}{suffix}", None if value is None else str(value)))
    return out


def envelope(result: Any, message: str = "", success: bool = True) -> str:
    """The ``/.json`` answer."""
    return json.dumps({"success": success, "message": message, "result": result})


def error_page(exc: AgiloftError, task: int, millis: int) -> str:
    """The HTML page an error answers without ``/.json``."""
    name = EXCEPTIONS.get(exc.status, "EWOperationException")
    text = html.escape(exc.message, quote=False)
    return (
        "<html><head><title>Error</title></head><body>"
        f"<p>{name} has occurred: [default task-{task}][{millis}] {text}</p>"
        "</body></html>"
    )


def parse_lines(body: str) -> dict[str, str | None]:
    """The ``EWREST_`` assignments of a body, by key (``None`` for ``null``); a reader for
    tests and clients. Spaces around ``=`` are allowed, as the documented examples mix
    both forms."""
    out: dict[str, str | None] = {}
    for match in _LINE.finditer(body):
        value = match["value"]
        out[match["key"]] = None if value is None else _unescape(value)
    return out


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _UNESCAPES.get(m[1], m[1]), value)
