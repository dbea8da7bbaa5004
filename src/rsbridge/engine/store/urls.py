"""Store URLs as messages may show them: without a password.

Kept free of driver imports so that configuration checks and error messages can use it
without loading psycopg.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit, urlunsplit

__all__ = ["POSTGRESQL_SCHEMES", "is_postgresql_url", "mask_url"]

POSTGRESQL_SCHEMES: Final = ("postgresql://", "postgres://")


def is_postgresql_url(text: str) -> bool:
    """Whether a store setting names a PostgreSQL database."""
    return text.strip().lower().startswith(POSTGRESQL_SCHEMES)


def mask_url(url: str) -> str:
    """``url`` with its password (and any ``password=`` parameter) replaced by ``***``."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "(a store URL that cannot be parsed)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}{':***' if sep else ''}@{hostinfo}"
    query = "&".join(
        "password=***" if pair.lower().startswith("password=") else pair
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
