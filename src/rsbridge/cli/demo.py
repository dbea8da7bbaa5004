"""``rsbridge demo``: one story per target, told on simulated peers.

Each connector plugin may bring a story (its ``demo`` hook); ``--target`` picks one.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from rsbridge.cli.plugins import hooks
from rsbridge.connectors.registry import load_hook
from rsbridge.console import fail
from rsbridge.errors import ConfigurationError, RsbridgeError

DEFAULT_TARGET = "servicenow"


def demo(
    target: Annotated[
        str, typer.Option(help="Whose story to tell: a connector that brings a demo.")
    ] = DEFAULT_TARGET,
    sessions: Annotated[int, typer.Option(min=1, help="How many simulated sessions to run.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the session generator.")] = 7,
) -> None:
    """Start simulated peers and the engine, run sessions, and show what arrived where."""
    stories = hooks("demo")
    story = stories.get(target)
    if story is None:
        told = sorted(n for n, h in stories.items() if not isinstance(h, ConfigurationError))
        raise fail(f"no demo for {target!r} (available: {', '.join(told) or 'none'})")
    try:
        if isinstance(story, ConfigurationError):
            raise story
        run: Any = load_hook(story)
        run(sessions=sessions, seed=seed, console=Console())
    except RsbridgeError as exc:
        raise fail(exc.message) from None


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the main ``rsbridge`` app."""
    app.command()(demo)
