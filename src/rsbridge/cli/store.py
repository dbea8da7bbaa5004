"""``rsbridge store``: the store's schema. Reference: docs/cli.md.

Registered on the main app by :mod:`rsbridge.cli.root`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from rsbridge.cli.common import DEFAULT_CONFIG, ConfigOption
from rsbridge.config import load_config
from rsbridge.console import fail
from rsbridge.errors import RsbridgeError

store_app = typer.Typer(
    help="The store: schema migrations, moving to PostgreSQL.", no_args_is_help=True
)

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="The store to act on (a file path or a postgresql:// URL); "
        "default: engine.store of the configuration.",
    ),
]


@store_app.command("migrate")
def migrate(
    config: ConfigOption = DEFAULT_CONFIG,
    store: StoreOption = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Only say which migrations are pending; exit 1 if any are."),
    ] = False,
) -> None:
    """Apply the store's schema migrations (before starting upgraded nodes).

    ``rsbridge serve`` also applies them at start; this lets an operator do it once,
    ahead of a rolling upgrade, and see what was done. A database written by a newer
    rsbridge is refused.
    """
    location = store
    if location is None:
        try:
            location = str(load_config(config).engine.store)
        except RsbridgeError as exc:
            raise fail(exc.message) from None
    try:
        lines, pending = asyncio.run(_migrate(location, check=check))
    except RsbridgeError as exc:
        raise fail(exc.message) from None
    for line in lines:
        typer.echo(line)
    if check and pending:
        raise typer.Exit(code=1)


@store_app.command("copy")
def copy(
    source: Annotated[
        str,
        typer.Option("--from", help="The SQLite store to copy: a file path or sqlite:///path."),
    ],
    target: Annotated[
        str,
        typer.Option("--to", help="The empty PostgreSQL store: a postgresql:// URL."),
    ],
) -> None:
    """Copy a SQLite store (events, jobs, attempts, ledger, watermarks, audit log) into
    PostgreSQL.

    Stop every node first: what an engine writes after the copy's snapshot is not
    copied. Ids are kept, so nothing is imported twice after the move. The target must
    hold no data; it is written in one transaction.
    """
    from rsbridge.engine.store.copy import copy_sqlite_to_postgresql
    from rsbridge.engine.store.urls import is_postgresql_url, mask_url

    path = Path(source.removeprefix("sqlite:///"))
    if "://" in str(path):
        raise fail(f"--from {mask_url(source)!r}: give the SQLite file (path or sqlite:///path)")
    if not is_postgresql_url(target):
        raise fail(f"--to {mask_url(target)!r}: give a postgresql:// URL")
    try:
        counts = asyncio.run(copy_sqlite_to_postgresql(path, target))
    except RsbridgeError as exc:
        raise fail(exc.message) from None
    typer.echo(
        f"copied {counts.events} events, {counts.jobs} jobs, {counts.attempts} attempts,"
        f" {counts.ledger} ledger entries, {counts.watermarks} watermarks and"
        f" {counts.audit} audit log entries to"
        f" {mask_url(target)}"
    )


async def _migrate(location: str, *, check: bool) -> tuple[list[str], bool]:
    """What was (or, with ``check``, would be) done, and whether anything is pending."""
    from rsbridge.engine.store import open_store
    from rsbridge.engine.store.postgresql import PostgreSQLStore
    from rsbridge.engine.store.postgresql_schema import migrate as apply
    from rsbridge.engine.store.postgresql_schema import schema_state

    target = open_store(location)
    if not isinstance(target, PostgreSQLStore):
        if check:
            return [f"{location}: the embedded store migrates itself when opened"], False
        await target.open()  # SQLite applies what is missing when opened
        await target.close()
        return [f"{location}: schema up to date"], False
    conn = await target.connect()
    try:
        state = await schema_state(conn)
        if check:
            applied = ", ".join(map(str, state.applied)) or "none"
            pending = ", ".join(map(str, state.pending)) or "none"
            newer = " (written by a newer rsbridge)" if state.newer else ""
            line = f"{target.label}: applied versions {applied}{newer}; pending {pending}"
            return [line], bool(state.pending) or state.newer
        done = await apply(conn, target.label)
    finally:
        await conn.close()
    if not done:
        return [f"{target.label}: schema up to date (version {state.known})"], False
    return [f"{target.label}: applied migration {version}" for version in done], False
