"""What the command modules share: the ``--config`` option, loading the configuration,
running a coroutine, opening the store, and reading a ``--since`` time.

Errors become :func:`rsbridge.console.fail` (``error: ...`` and exit status 1).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from rsbridge.config import Config, load_config
from rsbridge.console import fail
from rsbridge.engine.store.base import Store
from rsbridge.errors import RsbridgeError

T = TypeVar("T")

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        envvar="RSBRIDGE_CONFIG",
        help="The configuration file (TOML).",
        dir_okay=False,
    ),
]
DEFAULT_CONFIG = Path("rsbridge.toml")


def load_or_fail(path: Path) -> Config:
    try:
        return load_config(path)
    except RsbridgeError as exc:
        raise fail(exc.message) from None


def run_or_fail(action: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(action())  # type: ignore[arg-type]
    except RsbridgeError as exc:
        raise fail(exc.message) from None


async def with_store(config: Config, action: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``action`` on the configured store. An operator's command neither creates the
    store nor changes its schema: a missing database (a wrong path) or one that lacks a
    migration is refused with what to do."""
    from rsbridge.engine.store import open_store

    store = open_store(str(config.engine.store), migrate=False)
    await store.open()
    try:
        return await action(store)
    finally:
        await store.close()


def parse_since(text: str) -> float:
    """``2026-11-20``, an ISO date-time, or a span like ``36h`` / ``3d`` ago."""
    now = datetime.now(UTC).timestamp()
    units = {"m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1:] in units:
        return now - int(text[:-1]) * units[text[-1]]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("use a date, an ISO date-time, or 30m / 12h / 3d") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
