"""The engine's commands: ``serve``, ``check``, ``pull`` and ``render`` (``events`` is in
:mod:`rsbridge.cli.events`).

Registered on the main app by :mod:`rsbridge.cli.root`. Reference: docs/cli.md.
"""

from __future__ import annotations

import signal
import textwrap
import threading
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from rsbridge.cli.common import (
    DEFAULT_CONFIG,
    ConfigOption,
    load_or_fail,
    parse_since,
    run_or_fail,
)
from rsbridge.console import fail
from rsbridge.errors import RsbridgeError

if TYPE_CHECKING:
    import uvicorn


def serve(
    config: ConfigOption = DEFAULT_CONFIG,
    host: Annotated[
        str | None, typer.Option(help="Listen address (default: engine.listen_host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Listen port (default: engine.listen_port).")
    ] = None,
    log_level: Annotated[
        str, typer.Option(help="Logging level: debug, info, warning or error.")
    ] = "info",
    log_format: Annotated[
        str, typer.Option(help="Log lines as 'human' text or 'json' (one object a line).")
    ] = "human",
) -> None:
    """Run intake, workers and pollers in one process, with /health, /ready and /metrics."""
    import uvicorn

    from rsbridge.engine.runtime import Engine
    from rsbridge.eventloop import loop_name
    from rsbridge.log_setup import LOG_FORMATS, configure
    from rsbridge.web.guard import ConnectionLimits, guarded_protocol
    from rsbridge.web.listen import bind_listener

    level = log_level.lower()
    if level not in _LOG_LEVELS:
        raise typer.BadParameter(
            f"{log_level!r} is not one of {', '.join(_LOG_LEVELS)}", param_hint="--log-level"
        )
    if log_format not in LOG_FORMATS:
        raise typer.BadParameter(
            f"{log_format!r} is not one of {', '.join(LOG_FORMATS)}", param_hint="--log-format"
        )
    settings = load_or_fail(config)
    engine = Engine(settings)
    try:
        engine.build()
        # Bound before the engine opens: a busy port fails here, before any poller or
        # worker has started (uvicorn would run the app's startup first, then bind).
        sock = bind_listener(
            host or settings.engine.listen_host,
            settings.engine.listen_port if port is None else port,
        )
    except RsbridgeError as exc:
        raise fail(exc.message) from None
    # Only now: a command that failed above leaves the process's logging as it was.
    configure(level, "json" if log_format == "json" else "human")
    server = uvicorn.Server(
        uvicorn.Config(
            engine.asgi_app(),
            # uvloop unless engine.event_loop rules it out (rsbridge.eventloop).
            loop=loop_name(settings.engine.event_loop),
            log_level=level,
            # Our handler (configure above) formats uvicorn's lines too.
            log_config=None,
            timeout_graceful_shutdown=int(settings.engine.shutdown_grace_seconds) + 5,
            # The intake believes X-Forwarded-For only from engine.trusted_proxies.
            proxy_headers=False,
            # uvicorn's access log prints query strings, where the appliance puts its
            # outbound_event_token and rep-console links their token: secrets stay out.
            access_log=False,
            # Request head and body timeouts and the connection cap ([engine]): a client
            # that sends slowly, or not at all, cannot hold connections open.
            http=guarded_protocol(ConnectionLimits.of(settings.engine)),
        )
    )
    _stop_on_signals(server)
    with sock:
        server.run(sockets=[sock])
    if not server.started:
        raise fail("the server did not start (see the log above)")


_LOG_LEVELS = ("debug", "info", "warning", "error")


def _stop_on_signals(server: uvicorn.Server) -> None:
    """Make SIGTERM and SIGINT stop ``server`` (a uvicorn.Server) gracefully, exit status 0.

    While it serves, uvicorn takes both signals over, shuts down gracefully, then raises
    the signal again for the handler it found: with Python's default SIGTERM action, that
    killed the process after the graceful stop (exit status -15, "killed by SIGTERM").
    This handler is the one it finds, so the stop ends normally; a signal that arrives
    before uvicorn took over stops the server as soon as it has started.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread

    def stop(signum: int, frame: object) -> None:
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)


def check(
    config: ConfigOption = DEFAULT_CONFIG,
    integration: Annotated[str | None, typer.Option(help="Check only this integration.")] = None,
) -> None:
    """Validate the configuration and test every appliance and integration connection."""
    from rsbridge.engine.check import run_checks

    settings = load_or_fail(config)
    console = Console(highlight=False)
    console.print(f"[green]ok[/]  configuration {escape(str(config))}")
    verdicts = run_or_fail(lambda: run_checks(settings, only=integration))
    for verdict in verdicts:
        mark = "[green]ok[/]  " if verdict.ok else "[red]FAIL[/]"
        console.print(f"{mark} {escape(verdict.target)}: {escape(verdict.summary)}")
        for line in verdict.details:  # one finding (with its fix) or verified item per line
            # Wrapped here, with a hanging indent under the text (Rich would start at column 0).
            wrapped = textwrap.fill(
                line,
                width=max(console.width, 40),
                initial_indent="       - ",
                subsequent_indent=" " * 9,
                break_long_words=False,
                break_on_hyphens=False,
            )
            console.print(escape(wrapped), soft_wrap=True)
        for warning in verdict.warnings:
            console.print(f"[yellow]warn[/] {escape(verdict.target)}: {escape(warning)}")
    if not all(v.ok for v in verdicts):
        raise typer.Exit(code=1)


def pull(
    config: ConfigOption = DEFAULT_CONFIG,
    since: Annotated[
        str | None,
        typer.Option(help="Backfill from this time (2026-11-01, an ISO time, or 12h / 3d ago)."),
    ] = None,
    integration: Annotated[str | None, typer.Option(help="Only this integration.")] = None,
    work: Annotated[bool, typer.Option(help="Also process what was queued, until done.")] = True,
) -> None:
    """Pull ended sessions now (the vendor's "Pull Support Sessions") and queue them."""
    from rsbridge.engine.runtime import Engine

    settings = load_or_fail(config)
    start = parse_since(since) if since else None
    console = Console(highlight=False)

    async def go() -> None:
        async with Engine(settings) as engine:
            pollers = [p for p in engine.pollers if integration in (None, p.integration.name)]
            if not pollers:
                raise fail(
                    "no enabled polling integration"
                    + (f" named {integration}" if integration else "")
                )
            for poller in pollers:
                if start is None:
                    result = await poller.poll()
                else:
                    total = max(1, round(datetime.now(UTC).timestamp() - start))
                    with Progress(console=console, transient=True) as progress:
                        bar = progress.add_task(f"{poller.integration.name}", total=total)
                        result = await poller.pull(
                            start, None, on_chunk=partial(progress.advance, bar)
                        )
                console.print(
                    f"{result.integration}: {result.sessions} sessions listed, {result.queued} new "
                    f"events queued ({result.appliance_calls} appliance calls)"
                )
            if work and engine.worker is not None:
                outcomes = await engine.worker.run_until_idle(
                    max_wait=settings.engine.report_wait_seconds
                )
                counts: dict[str, int] = {}
                for outcome in outcomes:
                    counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
                console.print(
                    "processed: "
                    + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing")
                )

    run_or_fail(go)


def render(
    lsid: Annotated[
        str | None, typer.Option(help="Fetch this session's report from the appliance.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(help="A saved SupportSession report (XML).", exists=True, dir_okay=False),
    ] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    integration: Annotated[
        str | None, typer.Option(help="Use this integration's templates and filters.")
    ] = None,
    part: Annotated[
        str | None, typer.Option(help="Render one part (chat, notes, system_info, ...).")
    ] = None,
    html: Annotated[
        bool, typer.Option("--html", help="Print the HTML form instead of text.")
    ] = False,
) -> None:
    """Preview the rendered report of a session, as a connector would receive it."""
    from rsbridge.appliance.report_parser import iter_sessions
    from rsbridge.engine.render import Renderer

    if (lsid is None) == (file is None):
        raise fail("give exactly one of --lsid or --file")
    # A saved file renders with the default templates and needs no configuration.
    settings = load_or_fail(config) if (lsid is not None or integration is not None) else None
    chosen = None
    if settings is not None and integration is not None:
        chosen = settings.integration(integration)
        if chosen is None:
            raise fail(f"no integration named {integration}")

    async def fetch() -> list[object]:
        from rsbridge.engine.appliances import make_appliance_client

        assert settings is not None and lsid is not None
        appliance_id = (
            chosen.appliance
            if chosen
            else settings.appliances[0].id
            if settings.appliances
            else None
        )
        appliance = settings.appliance(appliance_id) if appliance_id else None
        if appliance is None:
            raise fail("the configuration has no appliance to fetch from")
        async with make_appliance_client(appliance) as client:
            return [s async for s in client.support_sessions(lsid=lsid)]

    try:
        # Inside the try: a missing template directory is a TemplateError too.
        renderer = Renderer(
            chosen.templates if chosen else None,
            import_events=chosen.import_events if chosen else None,
        )
        sessions = list(iter_sessions(file)) if file is not None else run_or_fail(fetch)
        if not sessions:
            raise fail(
                f"{file} holds no session report"
                if file is not None
                else f"the appliance has no report for session {lsid}"
            )
        for session in sessions:
            report = renderer.render(session)  # type: ignore[arg-type]
            chosen_part = report.full if part is None else report.parts.get(part)
            if chosen_part is None:
                raise fail(f"no part {part!r}; parts: {', '.join(sorted(report.parts))}")
            typer.echo(chosen_part.html if html else chosen_part.text)
    except RsbridgeError as exc:
        raise fail(exc.message) from None


def register(app: typer.Typer) -> None:
    """Add the engine commands to the main ``rsbridge`` app."""
    app.command()(serve)
    app.command()(check)
    app.command()(pull)
    app.command()(render)
