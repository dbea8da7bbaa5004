"""Small XML helpers shared by the command client and the report parser.

The appliance declares namespaces that have changed over the years
(``http://www.bomgar.com/namespaces/API/...`` on Remote Support,
``http://www.beyondtrust.com/...`` on newer products), so everything here works on
local names and ignores the namespace.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from lxml import etree

from rsbridge.errors import (
    ApplianceCommandError,
    AppliancePermissionError,
    ApplianceResponseError,
    InvalidCustomFieldError,
    ReportError,
    ReportSecurityError,
    RepresentativeNotFoundError,
    RepresentativeUnavailableError,
    RsbridgeError,
    SessionNotFoundError,
)

Element = etree._Element


# Options for every parser of appliance data: no DTD loading, no network, libxml2's
# default size limits (huge_tree off). Only the predefined entities can resolve: callers
# pass the bytes through PrologGuard first, which refuses any DTD.
# (resolve_entities=False would look stricter, but lxml's feed parser then stalls
# silently on an undefined entity instead of reporting it.)
_SAFE = {
    # The appliance sends UTF-8 only. Forcing it means libxml2 reads the same bytes the
    # guard scanned: a UTF-16 or EBCDIC document cannot carry a DTD past it.
    "encoding": "utf-8",
    "resolve_entities": "internal",
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}


def safe_parser() -> etree.XMLParser:
    """A parser for a whole response the appliance sent (see the options above)."""
    return etree.XMLParser(**_SAFE)  # type: ignore[arg-type]  # stubs lag lxml's options


def safe_pull_parser(
    tags: tuple[str, ...], events: tuple[str, ...] = ("end",)
) -> etree.XMLPullParser:
    """A feed parser reporting ``events`` of each element in ``tags``, same options."""
    return etree.XMLPullParser(events=events, tag=tags, **_SAFE)  # type: ignore[arg-type]


_PROLOG_LIMIT = 64 * 1024


_LOCAL_NAMES: dict[object, str] = {}
_LOCAL_NAMES_MAX = 4096  # a document with endless distinct tags must not grow the memo


def local_name(el: Element) -> str:
    """The tag of ``el`` without its namespace (``""`` for comments and PIs)."""
    tag = el.tag
    try:
        return _LOCAL_NAMES[tag]  # the parser's hottest call: a memo beats slicing each time
    except KeyError:
        name = tag[tag.rfind("}") + 1 :] if isinstance(tag, str) else ""
        if len(_LOCAL_NAMES) < _LOCAL_NAMES_MAX:
            _LOCAL_NAMES[tag] = name
        return name


def children(el: Element) -> list[tuple[str, Element]]:
    """The element children of ``el`` with their local names, in document order."""
    return [(local_name(c), c) for c in el if isinstance(c.tag, str)]


def child_text(el: Element, name: str) -> str | None:
    """Text of the first child called ``name`` (any namespace); ``None`` if absent or empty."""
    for c in el:
        if local_name(c) == name:
            return c.text or None
    return None


class PrologGuard:
    """Refuses documents that declare a DTD before handing bytes to libxml2.

    The appliance never sends a DOCTYPE; one in a report is either a mistake or an
    attack (billion laughs, external entities). Checking the prolog ourselves gives a
    clear error instead of relying on how a given libxml2 build treats entities.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """Take ``data``; return the bytes that are safe to parse now (maybe empty)."""
        if self.done:
            return data
        self._buffer += data
        if self._scan(self._buffer):
            self.done = True
            out, self._buffer = self._buffer, b""
            return out
        if len(self._buffer) > _PROLOG_LIMIT:
            raise ReportSecurityError("XML prolog longer than 64 KiB before the root element")
        return b""

    def flush(self) -> bytes:
        """Whatever is still held back (at end of input)."""
        self.done = True
        out, self._buffer = self._buffer, b""
        return out

    @staticmethod
    def _scan(buf: bytes) -> bool:
        """True once the root element starts; raises on a DTD or other declaration."""
        i = 3 if buf.startswith(b"\xef\xbb\xbf") else 0
        n = len(buf)
        while True:
            while i < n and buf[i] in b" \t\r\n":
                i += 1
            if n - i < 4:  # too little to tell "<!--", "<?" and "<!" from a root tag
                return False
            for opener, closer in ((b"<?", b"?>"), (b"<!--", b"-->")):
                if buf.startswith(opener, i):
                    end = buf.find(closer, i + len(opener))
                    if end < 0:
                        return False
                    i = end + len(closer)
                    break
            else:
                if buf.startswith(b"<!", i):
                    raise ReportSecurityError(
                        "the document declares a DTD (<!DOCTYPE ...>); appliance reports never do, "
                        "so it is refused to rule out entity expansion attacks"
                    )
                return True  # root element, or garbage libxml2 will report with a position


# Error texts of the Command API, most specific first. The real appliance strings are
# only partly documented (see docs/appliance.md); the simulator uses these same forms.
_ERROR_PATTERNS: list[tuple[re.Pattern[str], type[ApplianceCommandError], str]] = [
    (
        re.compile(r"permission", re.I),
        AppliancePermissionError,
        "grant the API account the permission in /login > Management > API Configuration",
    ),
    (
        re.compile(r"representative could not be found", re.I),
        RepresentativeNotFoundError,
        "check the representative id or username (rep_username must match exactly one user)",
    ),
    (
        re.compile(r"not available", re.I),
        RepresentativeUnavailableError,
        "the representative must be logged in and available; pick another queue or try later",
    ),
    (
        re.compile(r"too long", re.I),
        ApplianceCommandError,
        "custom field values are limited to 1,024 characters each and 10 KB in total",
    ),
    (
        re.compile(r"custom field|session\.custom", re.I),
        InvalidCustomFieldError,
        "define the custom field's code name in /login > Management > API Configuration",
    ),
    (
        re.compile(r"'lsid'|session could not be found", re.I),
        SessionNotFoundError,
        "the session has ended or the lsid is wrong",
    ),
]


def command_error(text: str, action: str) -> ApplianceCommandError:
    """Turn the text of an appliance ``<error>`` into the most specific exception."""
    for pattern, cls, hint in _ERROR_PATTERNS:
        if pattern.search(text):
            message = f"{action}: the appliance answered {text!r}; {hint}"
            return cls(message, appliance_text=text, action=action)
    message = f"{action}: the appliance answered {text!r}"
    return ApplianceCommandError(message, appliance_text=text, action=action)


def unix_time(text: str | None, error: type[RsbridgeError]) -> datetime | None:
    """A UNIX timestamp as aware UTC datetime; ``None`` for empty or 0; ``error`` if invalid."""
    if not text or text == "0":
        return None
    try:
        return datetime.fromtimestamp(int(text), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise error(f"expected a UNIX timestamp, got {text[:40]!r}") from None


def syntax_error_parts(exc: etree.XMLSyntaxError) -> tuple[int, int, str]:
    """Line, column and message of a libxml2 error, without the position it repeats."""
    line, column = exc.position
    return line, column, re.sub(r",? line \d+, column \d+$", "", (exc.msg or "").strip())


def parse_document(data: bytes, what: str) -> Element:
    """Parse a small complete response safely; raise :class:`ApplianceResponseError` if bad."""
    guard = PrologGuard()
    try:
        body = guard.feed(data) + guard.flush()
    except ReportError as exc:
        raise ApplianceResponseError(f"{what}: {exc.message}", retryable=False) from None
    try:
        root = etree.fromstring(body, safe_parser())
    except etree.XMLSyntaxError as exc:
        line, column, detail = syntax_error_parts(exc)
        raise ApplianceResponseError(
            f"{what}: malformed XML from the appliance at line {line}, column {column}: {detail}"
        ) from None
    return root
