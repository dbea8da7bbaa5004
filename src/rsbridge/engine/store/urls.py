"""Store URLs as messages may show them: without a password.

Kept free of driver imports so that configuration checks and error messages can use it
without loading psycopg.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit, urlunsplit

__all__ = ["POSTGRESQL_SCHEMES", "is_postgresql_url", "mask_url", "scrub", "url_secrets"]

POSTGRESQL_SCHEMES: Final = ("postgresql://", "postgres://")


def is_postgresql_url(text: str) -> bool:
    """Whether a store setting names a PostgreSQL database."""
    return text.strip().lower().startswith(POSTGRESQL_SCHEMES)


def _userinfo_split(url: str) -> tuple[str, str | None, str]:
    """``(scheme://user, password or None, @rest)``, splitting at the LAST ``@``: a password
    may hold ``?``, ``#`` or ``/`` that a URL parser would take for the end of the host
    part (libpq accepts them). A query holding an ``@`` is over-masked, never under."""
    head, sep, rest = url.partition("://")
    at = rest.rfind("@")
    if not sep or at == -1:
        return url, None, ""
    user, colon, password = rest[:at].partition(":")
    return f"{head}{sep}{user}", (password if colon else None), rest[at:]


def url_secrets(url: str) -> list[str]:
    """The password of ``url`` (as written and percent-decoded) and any ``password=``
    parameter value: what :func:`scrub` removes from a message."""
    from urllib.parse import unquote

    found: list[str] = []
    _, password, _ = _userinfo_split(url.strip())
    if password:
        found += [password, unquote(password)]
    for pair in url.replace("?", "&").split("&"):
        name, eq, value = pair.partition("=")
        if eq and name.strip().lower() == "password" and value:
            found += [value, unquote(value)]
    return sorted({f for f in found if f}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's message about ``url``) without the URL's password in it."""
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text


def mask_url(url: str) -> str:
    """``url`` with its password (and any ``password=`` parameter) replaced by ``***``."""
    head, password, rest = _userinfo_split(url.strip())
    masked = f"{head}{':***' if password is not None else ''}{rest}" if rest else head
    try:
        parts = urlsplit(masked)
    except ValueError:
        return "(a store URL that cannot be parsed)"
    query = "&".join(
        "password=***" if pair.lower().startswith("password=") else pair
        for pair in parts.query.split("&")
        if pair
    )
    return scrub(urlunsplit((parts.scheme, parts.netloc, parts.path, query, "")), url)
