"""The console's statements on the PostgreSQL store (SQL in :mod:`.console_sql`)."""

from __future__ import annotations

from rsbridge.engine.store.base import SessionFilter
from rsbridge.engine.store.console_sql import activity_sql, for_postgresql, search_sql

__all__ = ["ACTIVITY_DONE", "ACTIVITY_FAILED", "search_statement"]

ACTIVITY_DONE, ACTIVITY_FAILED = (for_postgresql(s) for s in activity_sql("postgresql"))


def search_statement(selection: SessionFilter) -> str:
    """The session search for ``selection``, with psycopg parameters."""
    return for_postgresql(search_sql(selection, "postgresql"))
