"""The engine's commands: ``serve``, ``check``, ``pull``, ``render`` and ``events``.

Registered on the main app by :mod:`rsbridge.cli.root`. Reference: docs/cli.md.
"""

from __future__ import annotations

import asyncio
import json
import signal
import textwrap
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from rsbridge.config import Config, load_config
from rsbridge.console import fail
from rsbridge.engine.store.base import (
    EventFilter,
    EventStatus,
    JobFilter,
    JobStatus,
    PruneCounts,
    Store,
)
from rsbridge.errors import RsbridgeError

if TYPE_CHECKING:
    import uvicorn

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

events_app = typer.Typer(help="The event log, jobs and dead letters.", no_args_is_help=True)


def _config(path: Path) -> Config:
    try:
        return load_config(path)
    except RsbridgeError as exc:
        raise fail(exc.message) from None


def _run(action: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(action())  # type: ignore[arg-type]
    except RsbridgeError as exc:
        raise fail(exc.message) from None


async def _with_store(config: Config, action: Callable[[Store], Awaitable[T]]) -> T:
    from rsbridge.engine.store import open_store

    store = open_store(str(config.engine.store))
    await store.open()
    try:
        return await action(store)
    finally:
        await store.close()


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
    settings = _config(config)
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

    settings = _config(config)
    console = Console(highlight=False)
    console.print(f"[green]ok[/]  configuration {escape(str(config))}")
    verdicts = _run(lambda: run_checks(settings, only=integration))
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


def _parse_since(text: str) -> float:
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

    settings = _config(config)
    start = _parse_since(since) if since else None
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

    _run(go)


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
    settings = _config(config) if (lsid is not None or integration is not None) else None
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
        sessions = list(iter_sessions(file)) if file is not None else _run(fetch)
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


# --- events ------------------------------------------------------------------------


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


@events_app.command("list")
def events_list(
    config: ConfigOption = DEFAULT_CONFIG,
    status: Annotated[
        str | None, typer.Option(help="Job status: queued, running, done, dead.")
    ] = None,
    ignored: Annotated[bool, typer.Option(help="List events recorded as ignored instead.")] = False,
    lsid: Annotated[str | None, typer.Option(help="Only this session.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many rows.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List jobs (newest first), e.g. the dead letters with --status dead."""
    settings = _config(config)
    if status is not None and status not in {s.value for s in JobStatus}:
        raise fail(f"unknown status {status!r}; use {', '.join(s.value for s in JobStatus)}")
    console = Console(highlight=False)

    async def go(store: Store) -> None:
        if ignored:
            events = await store.list_events(
                EventFilter(status=EventStatus.IGNORED, lsid=lsid, limit=limit)
            )
            for e in events:
                row = {
                    "event": e.id,
                    "received": _when(e.received_at),
                    "type": e.event_type,
                    "lsid": e.lsid,
                }
                # Plain echo: Rich would wrap a long line (breaking the JSON) and read
                # "[...]" in the event's values as markup.
                typer.echo(
                    json.dumps(row)
                    if as_json
                    else f"{e.id:>7}  {_when(e.received_at)}  {e.event_type}  {e.lsid or '-'}"
                )
            return
        jobs = await store.list_jobs(
            JobFilter(status=JobStatus(status) if status else None, lsid=lsid, limit=limit)
        )
        if as_json:
            for j in jobs:
                typer.echo(
                    json.dumps(
                        {
                            "job": j.id,
                            "event": j.event_id,
                            "integration": j.integration,
                            "type": j.event_type,
                            "lsid": j.lsid,
                            "status": j.status.value,
                            "attempts": j.attempts,
                            "error": j.last_error,
                        }
                    )
                )
            return
        table = Table(
            "job",
            "event",
            "integration",
            "type",
            "lsid",
            "status",
            "attempts",
            "updated",
            "last error",
        )
        for j in jobs:
            # Text cells: an error or an lsid is shown as is, never read as Rich markup.
            table.add_row(
                *map(
                    Text,
                    (
                        str(j.id),
                        str(j.event_id),
                        j.integration,
                        j.event_type,
                        j.lsid or "-",
                        j.status.value,
                        str(j.attempts),
                        _when(j.updated_at),
                        (j.last_error or "")[:80],
                    ),
                )
            )
        console.print(table)

    _run(lambda: _with_store(settings, go))


@events_app.command("show")
def events_show(
    job: Annotated[int, typer.Argument(help="Job id (from events list).")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Show a job, its event's variables, every attempt, and the effects of its session."""
    settings = _config(config)
    # Plain echo, not Rich: the event's variables are what the appliance sent, and "[...]"
    # in them must not be read as markup (dropped, or a MarkupError for "[/...]").

    async def go(store: Store) -> None:
        found = await store.get_job(job)
        if found is None:
            raise fail(f"no job {job}")
        event = await store.get_event(found.event_id)
        typer.echo(
            f"job {found.id}: {found.event_type} for {found.integration}, "
            f"status {found.status.value}, {found.attempts} failed attempts"
        )
        if event is not None:
            typer.echo(
                f"event {event.id}: from {event.source} at {_when(event.received_at)}, "
                f"appliance {event.appliance_id}, delivered {event.deliveries}x"
            )
            for name, value in event.form:
                typer.echo(f"    {name} = {value}")
        for attempt in await store.attempts(found.id):
            typer.echo(
                f"  attempt {attempt.number} {_when(attempt.finished_at)} "
                f"{attempt.outcome.value}: {attempt.error or ''}"
            )
        if found.lsid:
            for entry in await store.ledger_for_session(found.appliance_id, found.lsid):
                if entry.key.integration == found.integration:
                    typer.echo(
                        f"  effect {entry.key.effect}: "
                        f"ticket {entry.ticket_id or '-'} ref {entry.ref or '-'}"
                    )

    _run(lambda: _with_store(settings, go))


@events_app.command("retry")
def events_retry(
    jobs: Annotated[
        list[int] | None, typer.Argument(help="Dead job ids to re-queue.", show_default=False)
    ] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    dead: Annotated[
        bool, typer.Option("--dead", help="Re-queue every dead letter (after an outage).")
    ] = False,
    integration: Annotated[
        str | None, typer.Option(help="With --dead: only this integration's.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="With --dead: only those that died since (date, ISO time, 12h, 3d)."),
    ] = None,
) -> None:
    """Re-queue dead letters now (their attempt count starts again)."""
    if bool(jobs) == dead:
        raise fail("name dead job ids, or give --dead (with --integration/--since) for all")
    if not dead and (integration is not None or since is not None):
        raise fail("--integration and --since select dead letters: use them with --dead")
    settings = _config(config)
    if integration is not None and integration not in {i.name for i in settings.integrations}:
        raise fail(f"no integration {integration!r} in {config}")
    cutoff = _parse_since(since) if since is not None else None

    async def by_id(store: Store) -> list[int]:
        return [j for j in jobs or () if not await store.retry_job(j)]

    if dead:
        count = _run(lambda: _with_store(settings, lambda s: _retry_dead(s, integration, cutoff)))
        typer.echo(f"re-queued {count} job(s)")
        return
    refused = _run(lambda: _with_store(settings, by_id))
    requeued = len(jobs or ()) - len(refused)
    # Said even when some are refused: those that were dead are queued again all the same.
    if requeued or not refused:
        typer.echo(f"re-queued {requeued} job(s)")
    if refused:
        raise fail(f"not dead letters (or unknown): {', '.join(map(str, refused))}")


async def _retry_dead(store: Store, integration: str | None, cutoff: float | None) -> int:
    """Re-queue the dead letters that match, a page at a time (newest first)."""
    count = 0
    while True:
        page = await store.list_jobs(
            JobFilter(status=JobStatus.DEAD, integration=integration, limit=500)
        )
        chosen = [j for j in page if cutoff is None or j.updated_at >= cutoff]
        requeued = 0
        for job in chosen:
            # False when another process re-queued it meanwhile: not counted, not an error.
            requeued += await store.retry_job(job.id)
        count += requeued
        # Newest first: a page with an older job means the rest are older still; a page
        # where nothing could be re-queued would only come back the same.
        if len(chosen) < len(page) or len(page) < 500 or not requeued:
            return count


@events_app.command("replay")
def events_replay(
    event: Annotated[int, typer.Argument(help="Event id to process again.")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Queue a recorded event again for the integrations that process it.

    Effects already in the ledger are not repeated: a replay completes what is missing.
    """
    from rsbridge.engine.intake import job_specs

    settings = _config(config)

    async def go(store: Store) -> list[int]:
        found = await store.get_event(event)
        if found is None:
            raise fail(f"no event {event}")
        specs = job_specs(
            settings, found.appliance_id, found.event_type, polled=found.source in ("poll", "pull")
        )
        if not specs:
            raise fail(f"no enabled integration processes {found.event_type}")
        return await store.replay_event(event, specs)

    created = _run(lambda: _with_store(settings, go))
    typer.echo(f"queued job(s) {', '.join(map(str, created))}")


_AGE_UNITS = {"m": 60, "h": 3600, "d": 86400}


def _parse_age(text: str, option: str) -> float:
    """``30d``, ``12h`` or ``90m`` in seconds."""
    if text[:-1].isdigit() and text[-1:] in _AGE_UNITS:
        return int(text[:-1]) * _AGE_UNITS[text[-1]]
    raise typer.BadParameter(f"{text!r}: use an age like 30d, 12h or 90m", param_hint=option)


def _older(now: float, cutoff: float) -> str:
    age = now - cutoff
    units = (("days", 86400), ("hours", 3600))
    unit, size = next(((u, n) for u, n in units if age >= n), ("minutes", 60))
    return f"older than {age / size:.4g} {unit}"


@events_app.command("prune")
def events_prune(
    config: ConfigOption = DEFAULT_CONFIG,
    older_than: Annotated[
        str | None,
        typer.Option(
            help="Remove finished events older than this (30d, 12h, 90m); "
            "default: engine.retention_days."
        ),
    ] = None,
    dead_older_than: Annotated[
        str | None,
        typer.Option(
            help="Also remove dead letters older than this; "
            "default: engine.dead_letter_retention_days (unset: keep them)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be removed.")
    ] = False,
) -> None:
    """Remove finished events (with their jobs and attempts) older than the retention.

    Events with a queued or running job are never removed; the idempotency ledger only
    per engine.ledger_retention_days, and never while an event of the session is stored.
    """
    from rsbridge.engine.retention import prune, retention_policy

    settings = _config(config)
    engine = settings.engine
    finished = _parse_age(older_than, "--older-than") if older_than else None
    dead = _parse_age(dead_older_than, "--dead-older-than") if dead_older_than else None
    now = datetime.now(UTC).timestamp()
    policy = retention_policy(engine, now=now, older_than=finished, dead_older_than=dead)
    dead_rule = "kept" if policy.dead_before is None else _older(now, policy.dead_before)
    ledger_rule = (
        "kept"
        if policy.ledger_before is None
        else f"of sessions with no event left, {_older(now, policy.ledger_before)}"
    )
    typer.echo(
        f"finished events {_older(now, policy.finished_before)}; "
        f"dead letters {dead_rule}; ledger entries {ledger_rule}"
    )

    async def go(store: Store) -> PruneCounts:
        return await (store.count_prunable(policy) if dry_run else prune(store, policy))

    counts = _run(lambda: _with_store(settings, go))
    typer.echo(
        f"{'would remove' if dry_run else 'removed'} {counts.events} events, {counts.jobs} jobs, "
        f"{counts.attempts} attempts, {counts.ledger} ledger entries"
    )


def register(app: typer.Typer) -> None:
    """Add the engine commands to the main ``rsbridge`` app."""
    app.command()(serve)
    app.command()(check)
    app.command()(pull)
    app.command()(render)
    app.add_typer(events_app, name="events")
