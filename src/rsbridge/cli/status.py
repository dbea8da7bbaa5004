"""``rsbridge status``: per appliance and integration, what the engine has done and holds.

Read from the store only (no engine needs to run, no peer is called), so it answers on
any node sharing the store. Registered by :mod:`rsbridge.cli.root`; reference: docs/cli.md.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from rsbridge.cli.common import DEFAULT_CONFIG, ConfigOption, load_or_fail, run_or_fail, with_store
from rsbridge.config import Config
from rsbridge.engine.store.base import JobStats, LastFailure, Store

ERROR_CHARS = 200
"""How much of the last error the table and the JSON show."""


@dataclass(frozen=True, slots=True)
class IntegrationStatus:
    """One row: an appliance and integration, configured or found in the store."""

    appliance: str
    integration: str
    configured: bool
    stats: JobStats
    last_failure: LastFailure | None

    def as_json(self, now: float) -> dict[str, Any]:
        """The row as JSON (times as ISO 8601 UTC, ``null`` when never)."""
        s, failure = self.stats, self.last_failure
        return {
            "appliance": self.appliance,
            "integration": self.integration,
            "configured": self.configured,
            "last_success": _iso(s.last_done_at),
            "last_error": None
            if failure is None
            else {"at": _iso(failure.at), "error": (failure.error or "")[:ERROR_CHARS]},
            "queued": s.queued,
            "waiting": s.waiting,
            "running": s.running,
            "dead": s.dead,
            "done": s.done,
            "oldest_job_age_seconds": None
            if s.oldest_unfinished_at is None
            else round(max(0.0, now - s.oldest_unfinished_at), 3),
        }


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def collect(
    config: Config, stats: list[JobStats], failures: list[LastFailure]
) -> list[IntegrationStatus]:
    """Rows for every configured integration (zeros when it has no job yet) and for any
    appliance and integration pair the store holds jobs of (one removed from the
    configuration still has its dead letters)."""
    by_key = {(s.appliance_id, s.integration): s for s in stats}
    failed = {(f.appliance_id, f.integration): f for f in failures}
    configured = {(i.appliance, i.name) for i in config.integrations}
    keys = sorted(configured | set(by_key) | set(failed))
    return [
        IntegrationStatus(
            appliance,
            integration,
            (appliance, integration) in configured,
            by_key.get((appliance, integration), JobStats(appliance, integration)),
            failed.get((appliance, integration)),
        )
        for appliance, integration in keys
    ]


def _ago(now: float, ts: float | None) -> str:
    if ts is None:
        return "never"
    age = max(0.0, now - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if age >= size:
            return f"{age / size:.0f}{unit} ago"
    return f"{age:.0f}s ago"


def status(
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document (and nothing else).")
    ] = False,
) -> None:
    """Per appliance and integration: last success, last error, queued, waiting and dead jobs."""
    settings = load_or_fail(config)

    async def read(store: Store) -> tuple[list[JobStats], list[LastFailure]]:
        return await store.job_stats(), await store.last_failures()

    stats, failures = run_or_fail(lambda: with_store(settings, read))
    now = time.time()
    rows = collect(settings, stats, failures)
    if as_json:
        typer.echo(json.dumps({"integrations": [r.as_json(now) for r in rows]}, indent=2))
        return
    table = Table(
        "appliance",
        "integration",
        "last success",
        "last error",
        "queued",
        "running",
        "waiting",
        "dead",
    )
    for row in rows:
        failure = row.last_failure
        error = (
            "-"
            if failure is None
            else f"{_ago(now, failure.at)}: {(failure.error or '')[:ERROR_CHARS]}"
        )
        name = row.integration if row.configured else f"{row.integration} (not configured)"
        # Text cells: an error is shown as is, never read as Rich markup.
        table.add_row(
            *map(
                Text,
                (
                    row.appliance,
                    name,
                    _ago(now, row.stats.last_done_at),
                    error,
                    str(row.stats.queued),
                    str(row.stats.running),
                    str(row.stats.waiting),
                    str(row.stats.dead),
                ),
            )
        )
    Console(highlight=False).print(table)


def register(app: typer.Typer) -> None:
    """Add ``status`` to the main ``rsbridge`` app."""
    app.command()(status)
