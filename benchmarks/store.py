"""The job queue on PostgreSQL vs on SQLite (the baseline): record, then claim and finish.

    python3 dev.py bench store [--events 3000] [--senders 16] [--claimers 8] [--batch 100]
                               [--postgres postgresql://postgres@127.0.0.1:5432/test]

Measured through the Store interface only (no HTTP, no peers), in this process:

* **record**: ``--events`` session-end events, one job each, recorded by ``--senders``
  concurrent callers (the intake's pattern): events per second.
* **drain**: ``--claimers`` concurrent workers claim ``--batch`` jobs at a time and
  finish each one DONE (an attempt row and a status change), until none is left: jobs
  per second. On PostgreSQL once with one store (one node) and once with the claimers
  split over two stores (two nodes' pools on one database, still in this process and
  on these cores: it shows lock contention between nodes, not added capacity).
* **drain with the report's ledger entry**: twice more on one store, each after
  recording as many events again, recording an entry per job as a worker does: once
  with ``ledger_put`` before the finish (the worker until 2026-12), once carried by the
  finish (``Finish.ledger``: one round trip less). Their ratio is printed per backend.

The baseline is the SQLite store (WAL, synchronous=FULL, as shipped) in the same
invocation. PostgreSQL gets a fresh database ``rsbridge_bench_<random>`` on the server
of ``--postgres`` (or ``$RSBRIDGE_TEST_POSTGRES``), dropped afterwards. Target (issue 16):
PostgreSQL on one node within 20% of SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from harness import Comparison, verdict
from rsbridge.engine.store.base import (
    AttemptOutcome,
    Finish,
    IncomingEvent,
    JobSpec,
    LedgerEntry,
    LedgerKey,
    Store,
)
from rsbridge.engine.store.postgresql import PostgreSQLStore
from rsbridge.engine.store.sqlite import SQLiteStore

DONE = Finish(AttemptOutcome.DONE)
MODES = ("finish", "put+finish", "finish+ledger")
"""How each drained job ends: finish alone; the report's ledger entry put, then finish;
the entry carried by the finish."""


async def record(store: Store, events: int, senders: int, prefix: str = "") -> float:
    """Events per second recorded by ``senders`` concurrent callers."""
    queue = iter(range(events))

    async def sender() -> None:
        for n in queue:
            key, lsid = f"{prefix}k{n}", f"{prefix}L{n}"
            event = IncomingEvent("a1", "support_conference_end", "outbound", key, lsid=lsid)
            await store.record_event(event, [JobSpec("sn")])

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    return events / (time.perf_counter() - started)


async def drain(
    stores: list[Store], claimers: int, batch: int, jobs: int, mode: str = "finish"
) -> float:
    """Jobs per second claimed and finished by ``claimers`` spread over ``stores``, each
    job ended as ``mode`` says (:data:`MODES`)."""
    done = 0

    async def claimer(store: Store, name: str) -> None:
        nonlocal done
        while True:
            claimed = await store.claim(name, limit=batch, lease=60)
            if not claimed:
                return
            started = time.time()
            for job in claimed:
                key = LedgerKey("a1", job.lsid or "", job.event_type, "sn", "session_report")
                entry = LedgerEntry(key, "INC1", f"note-{job.id}", started)
                if mode == "put+finish":
                    await store.ledger_put(entry)
                finish = (
                    Finish(AttemptOutcome.DONE, ledger=(entry,))
                    if mode == "finish+ledger"
                    else DONE
                )
                await store.finish(job.id, name, finish, started_at=started)
            done += len(claimed)

    started = time.perf_counter()
    await asyncio.gather(*(claimer(stores[n % len(stores)], f"w{n}") for n in range(claimers)))
    took = time.perf_counter() - started
    assert done == jobs, (done, jobs)
    return jobs / took


async def measure(
    stores: list[Store], args: argparse.Namespace, modes: tuple[str, ...] = ("finish",)
) -> tuple[float, dict[str, float]]:
    """Events/s recorded, and jobs/s drained for each of ``modes``."""
    for store in stores:
        await store.open()
    try:
        rate = await record(stores[0], args.events, args.senders)
        drained = {}
        for n, mode in enumerate(modes):
            if n:
                await record(stores[0], args.events, args.senders, prefix=f"{mode}-")
            drained[mode] = await drain(stores, args.claimers, args.batch, args.events, mode)
        return rate, drained
    finally:
        for store in stores:
            await store.close()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = await measure([SQLiteStore(Path(tmp) / "bench.db")], args, MODES)
    admin = psycopg.connect(args.postgres, autocommit=True)
    names = [f"rsbridge_bench_{secrets.token_hex(4)}" for _ in range(2)]
    try:
        for name in names:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        one = await measure([PostgreSQLStore(with_database(args.postgres, names[0]))], args, MODES)
        url = with_database(args.postgres, names[1])
        two = await measure([PostgreSQLStore(url), PostgreSQLStore(url)], args)
    finally:
        for name in names:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        admin.close()
    table = Comparison(label_width=40)
    print(f"{args.events} events, {args.senders} senders; {args.claimers} claimers x {args.batch}")
    print(table.header().replace("baseline", "SQLite").replace("rsbridge", "PostgreSQL"))
    print(table.row("record, events/s (1 node)", base[0], one[0], "12.0f"))
    print(table.row("claim+finish, jobs/s (1 node)", base[1]["finish"], one[1]["finish"], "12.0f"))
    print(
        table.row("claim+finish, jobs/s (2 stores)", base[1]["finish"], two[1]["finish"], "12.0f")
    )
    for mode in MODES[1:]:
        print(table.row(f"claim+{mode}, jobs/s (1 node)", base[1][mode], one[1][mode], "12.0f"))
    within = min(one[0] / base[0], one[1]["finish"] / base[1]["finish"]) >= 0.8
    print(f"target: PostgreSQL one node within 20% of SQLite: {verdict(within)}")
    for name, (_, drained) in (("SQLite", base), ("PostgreSQL", one)):
        merged = drained["finish+ledger"] / drained["put+finish"]
        print(f"{name}: the entry carried by finish vs put before it: {merged:.2f}x jobs/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--claimers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "RSBRIDGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    asyncio.run(main(parser.parse_args()))
