"""Validation and encoding of session custom attributes (``session.custom.*``).

The Command API (``generate_session_key``, ``set_session_attributes``), the client
scripting API and the session generation API all take the same custom attributes, with
the same documented limits. :func:`custom_field_params` checks them once, before
anything reaches the appliance, so a mistake shows up as a
:class:`~rsbridge.errors.ClientScriptError` naming the field instead of a vague
``<error>`` from the appliance or a silently truncated value.

Limits enforced:

* each value at most :data:`MAX_VALUE_CHARS` (1,024) characters (Unicode code points);
* all values together, external key included, at most :data:`MAX_TOTAL_BYTES`
  (10,240) bytes. The vendor says "10 KB" without saying what is counted; we count the
  UTF-8 byte length of the values only (not the code names, not the percent-encoding),
  read KB as 1,024 bytes, and document it here so the choice can be revisited;
* at most :data:`MAX_FIELDS` (30) custom fields, the most the appliance lets an
  administrator configure. The external key is a built-in attribute, not a configured
  custom field, so it does not count towards the 30.

An empty value is allowed: it clears the attribute on the appliance.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from rsbridge.errors import ClientScriptError

PREFIX = "session.custom."
"""Query parameter prefix of every custom attribute."""

EXTERNAL_KEY = "external_key"
"""Code name of the built-in external key attribute."""

MAX_VALUE_CHARS = 1024
MAX_TOTAL_BYTES = 10 * 1024
MAX_FIELDS = 30

# Our conservative check, not the appliance's rule (which is not documented): generated
# code names are lower-case words joined by underscores, so letters, digits and
# underscores cover every real one and keep names safe in URLs and BRCS files unescaped.
_CODE_NAME = re.compile(r"[A-Za-z0-9_]+")

_PREVIEW_CHARS = 40


def preview(text: str) -> str:
    """``repr`` of ``text`` cut to a few dozen characters, for error messages."""
    if len(text) <= _PREVIEW_CHARS:
        return repr(text)
    return f"{text[:_PREVIEW_CHARS]!r}… ({len(text):,} characters)"


def custom_field_params(
    attributes: Mapping[str, str], *, external_key: str | None = None
) -> list[tuple[str, str]]:
    """Validate custom attributes and return them as ordered query parameters.

    ``attributes`` maps code names (without the ``session.custom.`` prefix) to values;
    ``external_key``, when given, comes first as ``session.custom.external_key``. The
    result keeps the order of ``attributes`` and is ready for URL or form encoding.

    Raises:
        ClientScriptError: a code name is malformed or is ``external_key``, a value is
            too long, the values are too large together, or there are too many fields.
    """
    if len(attributes) > MAX_FIELDS:
        raise ClientScriptError(
            f"{len(attributes)} custom fields given; the appliance supports at most "
            f"{MAX_FIELDS} (the external key is not counted). Drop the fields you do not need."
        )
    pairs: list[tuple[str, str]] = []
    if external_key is not None:
        pairs.append((PREFIX + EXTERNAL_KEY, external_key))
    for code_name, value in attributes.items():
        if code_name.lower() == EXTERNAL_KEY:
            raise ClientScriptError(
                f"{code_name!r} found in the custom attributes; pass the external key with "
                "external_key=... instead, so it cannot be given twice."
            )
        if not _CODE_NAME.fullmatch(code_name):
            raise ClientScriptError(
                f"Custom field code name {preview(code_name)} is not valid: use the code name "
                "shown in /login > Management > API Configuration (letters, digits and "
                "underscores, without the 'session.custom.' prefix)."
            )
        pairs.append((PREFIX + code_name, value))

    total = 0
    largest = ("", -1)
    for name, value in pairs:
        if len(value) > MAX_VALUE_CHARS:
            raise ClientScriptError(
                f"{name} is {len(value):,} characters long; the appliance accepts at most "
                f"{MAX_VALUE_CHARS:,} characters per custom field. Shorten the value."
            )
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise ClientScriptError(
                f"{name} contains a lone surrogate and cannot be sent as UTF-8; "
                "fix the text at its source."
            ) from None
        total += size
        largest = max(largest, (name, size), key=lambda item: item[1])
    if total > MAX_TOTAL_BYTES:
        raise ClientScriptError(
            f"The custom field values (external key included) total {total:,} bytes as UTF-8; "
            f"the appliance accepts at most {MAX_TOTAL_BYTES:,} bytes (10 KB) per session. "
            f"Shorten the longest values (the largest is {largest[0]}, {largest[1]:,} bytes)."
        )
    return pairs
