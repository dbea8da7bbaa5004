"""Text helpers the connectors share: long text cut into parts a ticketing field holds,
keys derived from parts, file names made from session data, e-mail addresses."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

_EMAIL_ADDRESS = re.compile(r"[^@\s<>,;\"()]+@[^@\s<>,;\"()]+")


def is_email_address(text: str) -> bool:
    """Whether ``text`` is one plain e-mail address (``someone@example.com``): no display
    name, no list, no line break, at most 254 characters."""
    return len(text) <= 254 and _EMAIL_ADDRESS.fullmatch(text) is not None


def digest_key(*parts: str) -> str:
    """A 40-hex-digit key derived from ``parts`` (fits an 80-character key field): the
    same parts give the same key, so a replay finds what an earlier attempt wrote."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def safe_filename(value: str, default: str = "session") -> str:
    """``value`` as a file name: letters, digits, ``-_.`` (others become ``_``), at most
    80 characters; ``default`` when nothing is left. Session values are customer data."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in value)[:80] or default


def split_text(text: str, limit: int, *, measure: Callable[[str], int] | None = None) -> list[str]:
    """``text`` in parts of at most ``limit`` (UTF-8 bytes, or ``measure``), cut at a line
    end where one is near, numbered "(part i of n)" when there are several; nothing lost."""
    size: Callable[[str], int] = measure or _utf8_bytes
    if size(text) <= limit:
        return [text]
    room = limit - len(" (part 9999 of 9999)")
    parts: list[str] = []
    rest = text
    while rest:
        cut = min(len(rest), room)
        while cut > 1 and size(rest[:cut]) > room:
            cut -= max(1, (size(rest[:cut]) - room) // 4)
        if cut < len(rest):
            newline = rest.rfind("\n", 0, cut)
            if newline > cut // 2:
                cut = newline + 1
        parts.append(rest[:cut])
        rest = rest[cut:]
    return [f"{p} (part {i} of {len(parts)})" for i, p in enumerate(parts, 1)]


def _utf8_bytes(text: str) -> int:
    return len(text.encode())
