"""``rsbridge store migrate`` against the real PostgreSQL server and a SQLite file."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from rsbridge.cli import app
from rsbridge.engine.store.sqlite import load_migrations


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["store", *args], prog_name="rsbridge")
    return result.exit_code, result.output


def test_migrate_applies_then_reports_up_to_date(postgres_url: str) -> None:
    # trust authentication ignores the password: it is here to be kept out of the output.
    url = f"{postgres_url}&password=hunter22"
    known = len(load_migrations("postgresql"))
    code, out = run("migrate", "--store", url, "--check")
    assert code == 1 and "applied versions none" in out and "pending 1" in out
    code, out = run("migrate", "--store", url)
    assert code == 0 and "applied migration 1" in out
    code, out = run("migrate", "--store", url)
    assert code == 0 and f"schema up to date (version {known})" in out
    code, out = run("migrate", "--store", url, "--check")
    assert code == 0 and "pending none" in out
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)")
    code, out = run("migrate", "--store", url)
    assert code == 1 and "newer rsbridge" in out
    code, out = run("migrate", "--store", url, "--check")
    assert code == 1 and "written by a newer rsbridge" in out
    assert "hunter22" not in out


def test_migrate_opens_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    code, out = run("migrate", "--store", str(path))
    assert code == 0 and "schema up to date" in out and path.exists()


def test_an_unreachable_database_is_one_clear_line() -> None:
    code, out = run("migrate", "--store", "postgresql://u:hunter22@127.0.0.1:1/db")
    assert code == 1 and "cannot connect to the store database" in out
    assert "hunter22" not in out and "Traceback" not in out


@pytest.mark.parametrize(
    ("password", "fragments"),
    [
        ("pw?with#hash", ["pw?with", "with#hash", "#hash"]),
        ("Sup3r%Secret", ["Sup3r", "Secret"]),
        ("has sp4ce", ["has sp4ce"]),
        ("a/b@c", ["a/b"]),
    ],
    ids=["query-and-fragment", "bad-percent", "space", "slash-and-at"],
)
def test_no_password_in_any_message(password: str, fragments: list[str]) -> None:
    """Passwords libpq accepts but a URL parser splits, or that libpq quotes in its own
    error: the CLI's messages never show them, whole or in part."""
    url = f"postgresql://rsb:{password}@127.0.0.1:1/db"
    for args in (["migrate", "--store", url], ["copy", "--from", "x.db", "--to", url]):
        code, out = run(*args)
        assert code != 0
        for piece in [password, *fragments]:
            assert piece not in out, (args, out)


async def _open_without_migrating(location: str) -> None:
    from rsbridge.engine.store import open_store

    store = open_store(location, migrate=False)
    await store.open()
    await store.close()


def test_an_operators_command_does_not_migrate_a_sqlite_store(tmp_path: Path) -> None:
    import asyncio
    import sqlite3

    from rsbridge.errors import ConfigurationError

    db = tmp_path / "old.db"
    assert run("migrate", "--store", str(db))[0] == 0
    asyncio.run(_open_without_migrating(str(db)))  # up to date: opens
    newest = len(load_migrations())
    with sqlite3.connect(db) as conn:  # as a store of the rsbridge before the newest migration
        conn.execute("DELETE FROM schema_migrations WHERE version = ?", (newest,))
    with pytest.raises(ConfigurationError, match="run `rsbridge store migrate`"):
        asyncio.run(_open_without_migrating(str(db)))
    with sqlite3.connect(db) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert newest not in versions  # nothing was applied


def test_an_operators_command_does_not_migrate_a_postgresql_store(postgres_url: str) -> None:
    import asyncio

    from rsbridge.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="run `rsbridge store migrate`"):
        asyncio.run(_open_without_migrating(postgres_url))  # an empty database
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('jobs') IS NOT NULL").fetchone()
    assert exists == (False,)
    assert run("migrate", "--store", postgres_url)[0] == 0
    asyncio.run(_open_without_migrating(postgres_url))
