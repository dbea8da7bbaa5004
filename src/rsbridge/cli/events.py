"""``rsbridge events ...``: the event log, jobs and dead letters (list, show, retry, replay,
prune). Registered on the main app by :mod:`rsbridge.cli.root`. Reference: docs/cli.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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
    printable,
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
    LedgerEntry,
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
            if as_json:
                for e in events:
                    row = {
                        "event": e.id,
                        "received": _when(e.received_at),
                        "type": e.event_type,
                        "lsid": e.lsid,
                    }
                    typer.echo(json.dumps(row))
                return
            console.print(
                _fitted(
                    console.width,
                    _IGNORED_COLUMNS,
                    [
                        (
                            str(e.id),
                            _short(e.received_at, console.width),
                            _type(e.event_type),
                            e.lsid or "-",
                        )
                        for e in events
                    ],
                )
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
        rows = [
            (
                str(j.id),
                str(j.event_id),
                j.integration,
                _type(j.event_type),
                j.lsid or "-",
                _shown_status(j),
                str(j.attempts),
                _short(j.updated_at, console.width),
                # One line: a multi-line error would break the row.
                " ".join((_error(j) or "").split()),
            )
            for j in jobs
        ]
        console.print(_fitted(console.width, _JOB_COLUMNS, rows))

    run_or_fail(lambda: with_store(settings, go))


# --- tables that fit the terminal -------------------------------------------------------

Columns = tuple[tuple[str, int | None, int], ...]
"""A table's columns: header, narrowest width (None: never cut), weight (how much more
room it keeps than a weight-1 column when the terminal is too narrow for every cell)."""

_JOB_COLUMNS: Columns = (
    ("job", None, 1),
    ("event", None, 1),
    ("integration", 8, 1),
    ("type", 8, 1),
    ("lsid", 8, 1),
    ("status", None, 1),
    ("failed", None, 1),
    ("updated", None, 1),
    ("last error", 10, 3),
)
_IGNORED_COLUMNS: Columns = (
    ("event", None, 1),
    ("received", None, 1),
    ("type", 12, 1),
    ("lsid", 8, 1),
)

_EVENT_PREFIX = "support_conference_"


def _type(event_type: str) -> str:
    """An event type as the table shows it, without the ``support_conference_`` every
    session event starts with: ``end``, ``member_added``..."""
    return event_type.removeprefix(_EVENT_PREFIX)


def _short(ts: float | None, width: int) -> str:
    """A time in a table cell: month, day and time of day (UTC), to the minute only on a
    terminal narrower than 100 columns (so that the error keeps some room)."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime(
        "%m-%d %H:%M:%S" if width >= 100 else "%m-%d %H:%M"
    )


def _widths(natural: list[int], columns: Columns, available: int) -> list[int]:
    """Column widths within ``available``: the cuttable column widest for its weight loses
    a character at a time until the row fits or every one is at its narrowest."""
    widths = list(natural)
    while sum(widths) > available:
        cuttable = [
            i
            for i, (w, (_, low, _)) in enumerate(zip(widths, columns, strict=True))
            if low is not None and w > max(low, len(columns[i][0]))
        ]
        if not cuttable:
            break
        widest = max(cuttable, key=lambda i: widths[i] / columns[i][2])
        widths[widest] -= 1
    return widths


def _fitted(width: int, columns: Columns, rows: Sequence[tuple[str, ...]]) -> Table:
    """A table of ``rows`` no wider than ``width``: one line per row, a cut cell ends with
    an ellipsis, never wraps. Text cells: an error or an lsid is never read as markup."""
    natural = [
        max([len(header), *(len(row[i]) for row in rows)])
        for i, (header, _, _) in enumerate(columns)
    ]
    # Each column is followed by one space (the last one's is a trailing blank).
    available = width - len(columns)
    widths = _widths(natural, columns, available)
    table = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False)
    for (header, _, _), column_width in zip(columns, widths, strict=True):
        table.add_column(header, width=column_width, no_wrap=True, overflow="ellipsis")
    for row in rows:
        table.add_row(*map(Text, row))
    return table


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
    # in them must not be read as markup (dropped, or a MarkupError for "[/...]"). Every
    # line goes through printable(): those values may hold terminal escapes.
    def echo(line: str) -> None:
        typer.echo(printable(line))

    async def go(store: Store) -> None:
        found = await store.get_job(job)
        if found is None:
            raise fail(f"no job {job}")
        event = await store.get_event(found.event_id)
        echo(
            f"job {found.id}: {found.event_type} for {found.integration}, "
            f"status {_shown_status(found)}, {found.attempts} failed attempts"
        )
        if event is not None:
            echo(
                f"event {event.id}: from {event.source} at {_when(event.received_at)}, "
                f"appliance {event.appliance_id}, delivered {event.deliveries}x"
            )
            for name, value in event.form:
                echo(f"    {name} = {value}")
        for attempt in await store.attempts(found.id):
            echo(
                f"  attempt {attempt.number} {_when(attempt.finished_at)} "
                f"{attempt.outcome.value}: {attempt.error or ''}"
            )
        if found.lsid:
            entries = [
                entry
                for entry in await store.ledger_for_session(found.appliance_id, found.lsid)
                if entry.key.integration == found.integration
            ]
            for line in _effects(entries):
                echo(line)

    run_or_fail(lambda: with_store(settings, go))


def _effects(entries: list[LedgerEntry]) -> list[str]:
    """The lines of ``events show`` for a session's ledger entries in one integration:
    its ticket by the number people know it by (INC0010001, a CaseNumber...), with the
    record id, kind and link the connector recorded, then each effect on that ticket.

    The number is recorded with the session's ticket (the ``ticket`` entry); entries
    written before numbers were recorded show the record id alone.
    """
    from rsbridge.engine.association import TICKET_EFFECT

    numbers: dict[str, str] = {}
    lines: list[str] = []
    for entry in entries:
        if entry.key.effect != TICKET_EFFECT:
            continue
        detail = entry.detail
        if not entry.ticket_id:
            why = detail.get("unassociated")
            lines.append("  ticket: none, imported without one" + (f" ({why})" if why else ""))
            continue
        number = detail.get("number", "")
        if number and number != entry.ticket_id:
            numbers[entry.ticket_id] = number
        facts = [detail.get("kind", ""), _record(entry.ticket_id, number), _source(detail)]
        said = ", ".join(f for f in facts if f)
        lines.append(f"  ticket {number or entry.ticket_id}" + (f" ({said})" if said else ""))
        if detail.get("url"):
            lines.append(f"    {detail['url']}")
    for entry in entries:
        ticket = entry.ticket_id
        shown = f"{numbers[ticket]} (record {ticket})" if ticket in numbers else ticket or "-"
        lines.append(f"  effect {entry.key.effect}: ticket {shown} ref {entry.ref or '-'}")
    return lines


def _record(ticket_id: str, number: str) -> str:
    return f"record {ticket_id}" if number and number != ticket_id else ""


def _source(detail: dict[str, str]) -> str:
    """How the session got its ticket: created by rsbridge, or found by a reference."""
    from rsbridge.engine.association import CREATED_SOURCE

    source = detail.get("source", "")
    if not source:
        return ""
    return "created by rsbridge" if source == CREATED_SOURCE else f"found by {source}"


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
