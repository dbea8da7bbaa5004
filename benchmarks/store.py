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
from rsbridge.engine.store.base import AttemptOutcome, Finish, IncomingEvent, JobSpec, Store
from rsbridge.engine.store.postgresql import PostgreSQLStore
from rsbridge.engine.store.sqlite import SQLiteStore

DONE = Finish(AttemptOutcome.DONE)


async def record(store: Store, events: int, senders: int) -> float:
    """Events per second recorded by ``senders`` concurrent callers."""
    queue = iter(range(events))

    async def sender() -> None:
        for n in queue:
            event = IncomingEvent("a1", "support_conference_end", "outbound", f"k{n}", lsid=f"L{n}")
            await store.record_event(event, [JobSpec("sn")])

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    return events / (time.perf_counter() - started)


async def drain(stores: list[Store], claimers: int, batch: int, jobs: int) -> float:
    """Jobs per second claimed and finished by ``claimers`` spread over ``stores``."""
    done = 0

    async def claimer(store: Store, name: str) -> None:
        nonlocal done
        while True:
            claimed = await store.claim(name, limit=batch, lease=60)
            if not claimed:
                return
            started = time.time()
            for job in claimed:
                await store.finish(job.id, name, DONE, started_at=started)
            done += len(claimed)

    started = time.perf_counter()
    await asyncio.gather(*(claimer(stores[n % len(stores)], f"w{n}") for n in range(claimers)))
    took = time.perf_counter() - started
    assert done == jobs, (done, jobs)
    return jobs / took


async def measure(stores: list[Store], args: argparse.Namespace) -> tuple[float, float]:
    for store in stores:
        await store.open()
    try:
        rate = await record(stores[0], args.events, args.senders)
        return rate, await drain(stores, args.claimers, args.batch, args.events)
    finally:
        for store in stores:
            await store.close()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = await measure([SQLiteStore(Path(tmp) / "bench.db")], args)
    admin = psycopg.connect(args.postgres, autocommit=True)
    names = [f"rsbridge_bench_{secrets.token_hex(4)}" for _ in range(2)]
    try:
        for name in names:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        one = await measure([PostgreSQLStore(with_database(args.postgres, names[0]))], args)
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
    print(table.row("claim+finish, jobs/s (1 node)", base[1], one[1], "12.0f"))
    print(table.row("claim+finish, jobs/s (2 stores)", base[1], two[1], "12.0f"))
    within = min(one[0] / base[0], one[1] / base[1]) >= 0.8
    print(f"target: PostgreSQL one node within 20% of SQLite: {verdict(within)}")


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
