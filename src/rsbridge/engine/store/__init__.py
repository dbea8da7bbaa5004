"""Durable store backends behind one interface (see base)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from rsbridge.engine.store.base import Store
from rsbridge.engine.store.memory import MemoryStore
from rsbridge.engine.store.sqlite import SQLiteStore
from rsbridge.engine.store.urls import is_postgresql_url, mask_url, scrub
from rsbridge.errors import ConfigurationError

__all__ = ["MemoryStore", "SQLiteStore", "Store", "open_store"]

SQLITE_URL_PREFIX = "sqlite:///"
MEMORY_URL = "memory:"


def open_store(
    path_or_url: str | Path,
    *,
    synchronous: Literal["normal", "full"] = "full",
    migrate: bool = True,
) -> Store:
    """The store a setting names (not opened yet: call ``await store.open()``).

    With ``migrate`` (the engine), opening creates the database and applies missing
    migrations; without (operators' commands), it refuses a database that does not exist
    or lacks a migration, naming ``rsbridge store migrate``.

    * a file system path, or ``sqlite:///path``: :class:`SQLiteStore` on that file. As
      in SQLAlchemy, ``sqlite:///data/rsbridge.db`` is relative to the working
      directory and ``sqlite:////var/lib/rsbridge/rsbridge.db`` absolute.
    * ``memory:``: a :class:`MemoryStore` (tests and demos; nothing survives exit).
    * ``postgresql://...`` (or ``postgres://``): a
      :class:`~rsbridge.engine.store.postgresql.PostgreSQLStore`, shared by several nodes.

    Any other URL raises :class:`~rsbridge.errors.ConfigurationError`; messages never
    show a password the URL holds.
    """
    if isinstance(path_or_url, Path):
        return SQLiteStore(path_or_url, synchronous=synchronous, migrate=migrate)
    text = path_or_url.strip()
    if text == MEMORY_URL:
        return MemoryStore()
    if not text:
        raise ConfigurationError("the store location is empty: give a file path or memory:")
    if text.startswith(SQLITE_URL_PREFIX):
        path = text.removeprefix(SQLITE_URL_PREFIX)
        if not path:
            raise ConfigurationError(f"store URL {text!r} names no database file")
        return SQLiteStore(Path(path), synchronous=synchronous, migrate=migrate)
    if text.startswith("sqlite:"):
        raise ConfigurationError(f"store URL {text!r}: write sqlite:///path/to/file.db")
    if is_postgresql_url(text):
        return _postgresql(text, migrate=migrate)
    if "://" in text:
        scheme = text.partition("://")[0]
        raise ConfigurationError(
            f"store URL {mask_url(text)!r}: the {scheme!r} store is not supported;"
            " use a file path, sqlite:///path, postgresql://... or memory:"
        )
    return SQLiteStore(Path(text), synchronous=synchronous, migrate=migrate)


def _postgresql(url: str, *, migrate: bool = True) -> Store:
    # psycopg is imported only by installations that use it.
    import psycopg

    from rsbridge.engine.store.postgresql import PostgreSQLStore

    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        # libpq quotes the whole URL in some of its messages.
        reason = scrub(reason.replace(url, mask_url(url)), url)
        raise ConfigurationError(f"store URL {mask_url(url)!r} is not valid: {reason}") from None
    return PostgreSQLStore(url, migrate=migrate)
