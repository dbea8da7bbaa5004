"""Salesforce record ids: 15-character case-sensitive ids and their 18-character form.

An id is the object's 3-character key prefix, a 2-character pod / instance part, one
reserved character and a 9-character base-62 counter. The 18-character form appends a
3-character checksum so that the id survives case-insensitive systems: for each 5-character
chunk, bit ``i`` is set when character ``i`` is an upper-case letter, and the 5-bit number
indexes ``A..Z0..5``. (Algorithm as documented for ``CASESAFEID()`` and the API's ID field
type: https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/field_types.htm#i1435616)
"""

from __future__ import annotations

import re

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID15 = re.compile(r"[0-9A-Za-z]{15}")
_ID18 = re.compile(r"[0-9A-Za-z]{18}")
#: The pod part the simulated org uses (real orgs show e.g. ``Dn``, ``5g``, ``Hp``).
POD = "5g"


def checksum(id15: str) -> str:
    """The 3-character suffix that turns a 15-character id into its 18-character form."""
    suffix = ""
    for start in range(0, 15, 5):
        bits = 0
        for offset, char in enumerate(id15[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << offset
        suffix += _CHECKSUM_ALPHABET[bits]
    return suffix


def to18(value: str) -> str | None:
    """The 18-character id for a 15- or 18-character id; ``None`` when ``value`` is not one.

    An 18-character id is rebuilt from its first 15 characters, so a suffix that does not
    match (a mistyped id) is refused rather than trusted.
    """
    if _ID15.fullmatch(value):
        return value + checksum(value)
    if _ID18.fullmatch(value) and checksum(value[:15]) == value[15:].upper():
        return value[:15] + checksum(value[:15])
    return None


def base62(number: int, width: int) -> str:
    """``number`` in base 62, left-padded with ``0`` to ``width`` characters."""
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    return digits.rjust(width, "0")


def make_id(prefix: str, number: int) -> str:
    """The 18-character id number ``number`` of the object with key prefix ``prefix``."""
    id15 = f"{prefix}{POD}0{base62(number, 9)}"
    return id15 + checksum(id15)
