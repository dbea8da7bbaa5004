"""``rsbridge demo``: one story per target, told on simulated peers.

Each connector plugin may bring a story (its ``demo`` hook); ``--target`` picks one.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from rsbridge.cli.plugins import hooks
from rsbridge.connectors.registry import load_hook
from rsbridge.console import fail
from rsbridge.errors import ConfigurationError, RsbridgeError

if TYPE_CHECKING:
    from rsbridge.demo import Stage

DEFAULT_TARGET = "servicenow"


def demo(
    target: Annotated[
        str,
        typer.Option(
            help="Whose story to tell: servicenow, salesforce, remedy, agiloft, or a package's."
        ),
    ] = DEFAULT_TARGET,
    sessions: Annotated[int, typer.Option(min=1, help="How many simulated sessions to run.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the session generator.")] = 7,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep",
            help="Then keep the simulators and the engine running, print their URLs and how "
            "to rehearse a session, until Ctrl-C.",
        ),
    ] = False,
) -> None:
    """Run the whole story on simulated peers, in a temporary directory, in seconds.

    It starts a simulated appliance, the target's simulated system (with rsbridge's
    session tables or forms loaded) and a webhook receiver on loopback ports, and the
    engine with three integrations: the target's (auto-create on join), a jsonl audit
    file and the webhook. The default story also seats a simulated Salesforce org that
    imports every session without a Case (its own column).

    Technicians generate session keys from open tickets through the actions API; a
    closed ticket is refused. Other sessions start without a ticket and get one created
    as the representative joins, written back to the live session. A customer who names
    someone else's ticket in a start URL of their own does not reach it.

    Every outbound event is sent twice, yet each session is imported once. The story
    ends with a table of what arrived where (each session's ticket, its records, notes
    and survey answers, the file, the webhook) and the calls it took.

    With --keep everything stays up once the sessions are delivered: it prints the URLs
    of the engine's pages and of the simulators, and ``rsbridge rehearse`` lines that
    play one more session against them, and stops cleanly on Ctrl-C.

    Targets: servicenow (the default), salesforce, remedy, agiloft; an installed
    connector package may add its own.
    """
    stories = hooks("demo")
    story = stories.get(target)
    if story is None:
        told = sorted(n for n, h in stories.items() if not isinstance(h, ConfigurationError))
        raise fail(f"no demo for {target!r} (available: {', '.join(told) or 'none'})")
    try:
        if isinstance(story, ConfigurationError):
            raise story
        run: Any = load_hook(story)
        console = Console()
        if not keep:
            run(sessions=sessions, seed=seed, console=console)
            return
        if "keep" not in inspect.signature(run).parameters:
            raise fail(f"the {target} demo cannot keep running (its story takes no keep)")

        from rsbridge.demo import linger

        async def linger_here(peers: Stage, engine_url: str) -> None:
            await linger(peers, engine_url, console)

        run(sessions=sessions, seed=seed, console=console, keep=linger_here)
    except RsbridgeError as exc:
        raise fail(exc.message) from None


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the main ``rsbridge`` app."""
    app.command()(demo)
