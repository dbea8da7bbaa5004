"""``rsbridge events ...``: the event log, jobs and dead letters (list, show, retry, replay,
prune). Registered on the main app by :mod:`rsbridge.cli.root`. Reference: docs/cli.md.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from rsbridge.cli.common import (
    DEFAULT_CONFIG,
    ConfigOption,
    load_or_fail,
    parse_since,
    run_or_fail,
    with_store,
)
from rsbridge.console import fail
from rsbridge.engine.fixing import replay_specs, retry_dead
from rsbridge.engine.store.base import (
    EventFilter,
    EventStatus,
    Job,
    JobFilter,
    JobStatus,
    PruneCounts,
    Store,
)

events_app = typer.Typer(help="The event log, jobs and dead letters.", no_args_is_help=True)


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
    settings = load_or_fail(config)
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
                            "status": _shown_status(j),
                            "attempts": j.attempts,
                            "error": _error(j),
                            "note": j.last_error if j.status is JobStatus.DONE else None,
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
            "failed",
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
                        _shown_status(j),
                        str(j.attempts),
                        _when(j.updated_at),
                        (_error(j) or "")[:80],
                    ),
                )
            )
        console.print(table)

    run_or_fail(lambda: with_store(settings, go))


def _shown_status(job: Job) -> str:
    """The job's status as an operator reads it: a session the integration skips (no
    ticket, by its configuration) is ``skipped``, not ``done`` with an error."""
    if job.status is JobStatus.DONE and (job.last_error or "").startswith("skipped:"):
        return "skipped"
    return job.status.value


def _error(job: Job) -> str | None:
    """The last error, for jobs that have not succeeded; a done job's text is a note (why
    it was skipped, or that its effects were already there), not an error."""
    return None if job.status is JobStatus.DONE else job.last_error


@events_app.command("show")
def events_show(
    job: Annotated[int, typer.Argument(help="Job id (from events list).")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Show a job, its event's variables, every attempt, and the effects of its session."""
    settings = load_or_fail(config)
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

    run_or_fail(lambda: with_store(settings, go))


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
    settings = load_or_fail(config)
    if integration is not None and integration not in {i.name for i in settings.integrations}:
        raise fail(f"no integration {integration!r} in {config}")
    cutoff = parse_since(since) if since is not None else None

    async def by_id(store: Store) -> list[int]:
        return [j for j in jobs or () if not await store.retry_job(j)]

    if dead:
        count = run_or_fail(
            lambda: with_store(settings, lambda s: retry_dead(s, integration, cutoff))
        )
        typer.echo(f"re-queued {count} job(s)")
        return
    refused = run_or_fail(lambda: with_store(settings, by_id))
    requeued = len(jobs or ()) - len(refused)
    # Said even when some are refused: those that were dead are queued again all the same.
    if requeued or not refused:
        typer.echo(f"re-queued {requeued} job(s)")
    if refused:
        raise fail(f"not dead letters (or unknown): {', '.join(map(str, refused))}")


@events_app.command("replay")
def events_replay(
    event: Annotated[int, typer.Argument(help="Event id to process again.")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Queue a recorded event again for the integrations that process it.

    Effects already in the ledger are not repeated: a replay completes what is missing.
    """
    settings = load_or_fail(config)

    async def go(store: Store) -> list[int]:
        found = await store.get_event(event)
        if found is None:
            raise fail(f"no event {event}")
        specs = replay_specs(settings, found)
        if not specs:
            raise fail(f"no enabled integration processes {found.event_type}")
        return await store.replay_event(event, specs)

    created = run_or_fail(lambda: with_store(settings, go))
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

    settings = load_or_fail(config)
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

    counts = run_or_fail(lambda: with_store(settings, go))
    typer.echo(
        f"{'would remove' if dry_run else 'removed'} {counts.events} events, {counts.jobs} jobs, "
        f"{counts.attempts} attempts, {counts.ledger} ledger entries"
    )


def register(app: typer.Typer) -> None:
    """Add ``rsbridge events`` to the main app."""
    app.add_typer(events_app, name="events")
