"""The console's store queries on a SQLite store with a million events, against naive
queries (the baseline) on the same file.

    python3 dev.py bench console [--events 1000000] [--runs 15]

The store is filled directly with SQL (``--events`` session events over 30 days, one job
each, in three integrations, ~1.5% dead, ~0.5% queued, an attempt per finished job and a
ledger ticket per session and integration) after the migrations ran, so that filling takes
seconds rather than the hours of a million ``record_event`` calls.

* **rsbridge**: ``Store.search_sessions`` (a page of 50) with each filter, a page deep in
  the history (``before=``), and ``Store.activity`` over the last 24 hours (hourly).
* **baseline**: what the same answers cost without the indexes and the keyset: one
  ``GROUP BY`` over every job (per session and integration, newest first, ``LIMIT 50``) with
  the same filter, and for the chart every done job of the 24 hours read into Python and
  its latencies sorted per hour.

Milliseconds per call (median of ``--runs``); ratio = rsbridge / baseline (below 1: faster).
Also printed: ``record_event`` rate with and without the console's indexes (their write cost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from harness import Comparison, verdict
from rsbridge.engine.store.base import IncomingEvent, JobSpec, SessionFilter
from rsbridge.engine.store.sqlite import SQLiteStore

INTEGRATIONS = ("sn", "sf", "audit")
DAY = 86400.0
NAIVE_SEARCH = """
SELECT appliance_id, lsid, integration, MAX(id) AS k,
       MAX(CASE status WHEN 'running' THEN 5 WHEN 'queued' THEN 4 WHEN 'dead' THEN 2 ELSE 1 END)
FROM jobs NOT INDEXED
WHERE lsid IS NOT NULL {where}
GROUP BY appliance_id, lsid, integration {having}
ORDER BY k DESC LIMIT 50"""
NAIVE_ACTIVITY = """
SELECT updated_at, created_at FROM jobs NOT INDEXED
WHERE status = 'done' AND updated_at >= ? AND updated_at < ?"""
CONSOLE_INDEXES = (
    "jobs_by_integration",
    "jobs_done_by_time",
    "attempts_failed_by_time",
    "ledger_by_ticket",
    "ledger_by_number",
)


def fill(path: Path, events: int, now: float) -> None:
    """``events`` events with their jobs, attempts and ledger tickets, over 30 days."""
    rng = random.Random(7)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    start = now - 30 * DAY
    with conn:
        event_rows, job_rows, attempt_rows, ledger_rows = [], [], [], []
        for n in range(1, events + 1):
            at = start + 30 * DAY * n / events
            lsid = f"L{n // 2}"  # a session end and a survey per session
            integration = INTEGRATIONS[n % 3]
            roll = rng.random()
            status = "queued" if roll < 0.005 else "dead" if roll < 0.02 else "done"
            done_at = at + rng.uniform(0.2, 5.0)
            event_rows.append((n, at, "a1", "support_conference_end", "outbound", f"k{n}", lsid))
            job_rows.append(
                (n, n, integration, "a1", "support_conference_end", lsid, 0, status,
                 at if status == "queued" else done_at, at,
                 at if status == "queued" else done_at,
                 "400 bad" if status == "dead" else None)
            )  # fmt: skip
            if status != "queued":
                attempt_rows.append(
                    (n, 1, "w", at, done_at, status, "400 bad" if status == "dead" else None)
                )
            if status == "done" and n % 2 == 0:
                detail = json.dumps({"number": f"INC{n:08d}"})
                ledger_rows.append(
                    ("a1", lsid, "ticket", integration, "ticket", f"T{n}", "", done_at, detail)
                )
            if len(event_rows) == 50_000 or n == events:
                conn.executemany(
                    "INSERT INTO events (id, received_at, appliance_id, event_type, source, "
                    "dedup_key, status, lsid) VALUES (?, ?, ?, ?, ?, ?, 'accepted', ?)",
                    event_rows,
                )
                conn.executemany(
                    "INSERT INTO jobs (id, event_id, integration, appliance_id, event_type, lsid, "
                    "rank, status, attempts, run_after, created_at, updated_at, last_error) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
                    job_rows,
                )
                conn.executemany("INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?)", attempt_rows)
                conn.executemany(
                    "INSERT OR IGNORE INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", ledger_rows
                )
                event_rows, job_rows, attempt_rows, ledger_rows = [], [], [], []
    conn.close()


async def timed(call: Callable[[], Awaitable[object]], runs: int) -> float:
    """Median milliseconds of ``call``."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def naive_activity(conn: sqlite3.Connection, since: float, until: float) -> list[tuple[int, float]]:
    """Per hour: deliveries and the median latency, from every row."""
    per: dict[int, list[float]] = {}
    for updated, created in conn.execute(NAIVE_ACTIVITY, (since, until)):
        per.setdefault(int((updated - since) // 3600), []).append(updated - created)
    return [(len(v), statistics.median(v)) for _, v in sorted(per.items())]


async def record_rate(path: Path, events: int, drop_console_indexes: bool) -> float:
    """Events per second recorded by 16 concurrent senders on a fresh store."""
    store = SQLiteStore(path)
    await store.open()
    if drop_console_indexes:
        conn = sqlite3.connect(path)
        for name in CONSOLE_INDEXES:
            conn.execute(f"DROP INDEX {name}")
        conn.close()
    queue = iter(range(events))

    async def sender() -> None:
        for n in queue:
            event = IncomingEvent("a1", "support_conference_end", "outbound", f"k{n}", lsid=f"L{n}")
            await store.record_event(event, [JobSpec("sn"), JobSpec("sf")])

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(16)))
    took = time.perf_counter() - started
    await store.close()
    return events / took


async def main(args: argparse.Namespace) -> None:
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "console.db"
        store = SQLiteStore(path)
        await store.open()
        await store.close()
        started = time.perf_counter()
        fill(path, args.events, now)
        print(f"filled {args.events} events in {time.perf_counter() - started:.0f} s")
        store = SQLiteStore(path)
        await store.open()
        conn = sqlite3.connect(path)
        ten_days_ago = now - 10 * DAY
        searches: list[tuple[str, SessionFilter, str, tuple[object, ...], str]] = [
            ("newest page", SessionFilter(), "", (), ""),
            ("integration", SessionFilter(integration="sf"), "AND integration = ?", ("sf",), ""),
            ("state dead", SessionFilter(state="dead"), "", (), "HAVING MAX(status = 'dead')"),
            ("lsid", SessionFilter(lsid="L123456"), "AND lsid = ?", ("L123456",), ""),
            (
                "one hour, 10 days ago",
                SessionFilter(since=ten_days_ago, until=ten_days_ago + 3600),
                "AND created_at >= ? AND created_at < ?",
                (ten_days_ago, ten_days_ago + 3600),
                "",
            ),
            (
                "page deep in history",
                SessionFilter(before=args.events // 2),
                "AND id < ?",
                (args.events // 2,),
                "",
            ),
        ]
        table = Comparison(label_width=34)
        print(f"{args.events} events; ms per call, median of {args.runs}")
        print(table.header())
        worst = 0.0
        for label, selection, where, params, having in searches:

            async def search(s: SessionFilter = selection) -> object:
                return await store.search_sessions(s, now=now)

            ours = await timed(search, args.runs)
            sql = NAIVE_SEARCH.format(where=where, having=having)

            async def naive(sql: str = sql, params: tuple[object, ...] = params) -> object:
                return conn.execute(sql, params).fetchall()

            base = await timed(naive, max(3, args.runs // 5))
            worst = max(worst, ours / base)
            print(table.row(f"search: {label}", base, ours, "12.2f"))
        number = f"INC{(args.events // 3) // 2 * 2:08d}"
        ours = await timed(lambda: store.search_sessions(SessionFilter(ticket=number)), args.runs)
        print(table.row("search: ticket number", None, ours, "12.2f"))
        since = now - DAY
        ours = await timed(lambda: store.activity(since, now, 3600), args.runs)

        async def naive_chart() -> object:
            return naive_activity(conn, since, now)

        base = await timed(naive_chart, max(3, args.runs // 5))
        worst = max(worst, ours / base)
        print(table.row("activity: 24 h, hourly", base, ours, "12.2f"))
        conn.close()
        await store.close()
        with_ix = await record_rate(Path(tmp) / "with.db", args.write_events, False)
        without = await record_rate(Path(tmp) / "without.db", args.write_events, True)
        print(table.header().replace("baseline", "no ix").replace("rsbridge", "console ix"))
        print(table.row("record_event, events/s (2 jobs)", without, with_ix, "12.0f"))
    print(f"target: every console query faster than its naive baseline: {verdict(worst < 1)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--write-events", type=int, default=3000)
    asyncio.run(main(parser.parse_args()))
