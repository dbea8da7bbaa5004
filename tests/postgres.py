"""Tests against the real PostgreSQL server: where it is, and a fresh database for a run.

The server is ``$RSBRIDGE_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``,
trust authentication). Each test session (each xdist worker) creates its own database
``rsbridge_test_<random>`` from it and drops it at the end; each test gets its own
schema in it (:func:`postgres_url`), so tests never see each other's rows.

When the server cannot be reached the tests that need it are skipped with the reason,
except in CI (``CI=true``), where they fail: a CI run that silently skipped them
would report a PostgreSQL store it never tested.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

SERVER_ENV = "RSBRIDGE_TEST_POSTGRES"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    """The URL of the maintenance database the test databases are created from."""
    return os.environ.get(SERVER_ENV, DEFAULT_SERVER)


def with_database(url: str, database: str) -> str:
    """``url`` naming ``database`` instead."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


def with_schema(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` (libpq ``options=-c search_path=...``)."""
    parts = urlsplit(url)
    option = "options=" + quote(f"-c search_path={schema}", safe="")
    query = f"{parts.query}&{option}" if parts.query else option
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _unreachable(reason: str) -> None:
    message = f"PostgreSQL not reachable at {server_url()} ({reason}); set {SERVER_ENV}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}: CI=true requires the PostgreSQL tests to run", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The URL of a database of its own for this test session, dropped afterwards."""
    try:
        admin = psycopg.connect(server_url(), autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        _unreachable(str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc))
        raise AssertionError("unreachable") from exc
    name = f"rsbridge_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield with_database(server_url(), name)
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """A store URL on a new, empty schema of the session's database."""
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return with_schema(postgres_database, schema)
