"""What the command modules share: the ``--config`` option, loading the configuration,
running a coroutine, opening the store, and reading a ``--since`` time.

Errors become :func:`rsbridge.console.fail` (``error: ...`` and exit status 1).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
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
    from rsbridge.engine.fixing import parse_since as parse

    try:
        return parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


# What a terminal would act on rather than show: C0 controls (line breaks and tabs too, as a
# value must stay on its line), DEL, C1 controls (0x9b is a CSI on some terminals) and the
# bidirectional overrides that reorder what follows.
_TERMINAL_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # its Unicode control picture: \x1b shows as "␛"
    if code == 0x7F:
        return "\u2421"
    return f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control characters shown, not acted on.

    Values from the appliance (event variables, errors quoting them) are set by customers;
    printed as they are, an escape sequence could rewrite the terminal or fake a line.
    """
    return _TERMINAL_CONTROLS.sub(_shown, text)
