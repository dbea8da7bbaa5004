"""Intake acknowledgement latency and throughput vs a bare ASGI handler.

    python3 dev.py bench intake [--serial 2000] [--concurrent 5000] [--senders 32]

Two servers run in turn, each in its own process under uvicorn on loopback (so that the
sender and the server do not share one core): the baseline, a bare ASGI app that reads the
body and answers 200 with no parsing and no write; and rsbridge's intake app over the
SQLite store (WAL, synchronous=FULL: every acknowledged event is on disk), with its
metrics counted as under ``rsbridge serve``. For each:

* serial: one sender, one event at a time (the appliance's own pattern): p50 / p99 of
  the time to the 200;
* concurrent: ``--senders`` senders, ``--concurrent`` events in all: events per second.

Figures are printed with their ratio to the baseline measured in the same invocation.
Targets (shared/DESIGN.md): p99 under 5 ms for the serial sender, over 2,000 events/s for
concurrent senders, on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import httpx

from harness import Comparison, percentile, verdict

FORM = [
    ("event", "support_conference_end"),
    ("version", "3"),
    ("appliance_id", "0d3f6f7c1b2a4e5f8a9b0c1d2e3f4a5b"),
    ("external_key", "INC0010001"),
]


def _bare_app() -> object:
    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()  # type: ignore[operator]
            more = message.get("more_body", False)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"OK"})  # type: ignore[operator]

    return app


def _intake_app(workdir: Path) -> object:
    import contextlib

    from rsbridge.config import parse_config
    from rsbridge.engine.intake import Intake
    from rsbridge.engine.store import open_store
    from rsbridge.engine.store.metered import MeteredStore
    from rsbridge.metrics import Metrics
    from rsbridge.web.app import create_app

    config = parse_config(
        {
            "engine": {"store": str(workdir / "bench.db")},
            "appliances": [
                {
                    "id": "default",
                    "host": "127.0.0.1:9",
                    "client_id": "x",
                    "client_secret": "y",
                    "use_plain_http": True,
                }
            ],
            "integrations": [
                {
                    "name": "audit",
                    "connector": "jsonl",
                    "settings": {"path": str(workdir / "d.jsonl")},
                }
            ],
        }
    )
    # Counted as under `rsbridge serve`: the metrics are part of every acknowledgement.
    metrics = Metrics()
    store = MeteredStore(open_store(str(config.engine.store)), metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[None]:
        await store.open()
        yield
        await store.close()

    return create_app(Intake(config, store), store, lifespan=lifespan, metrics=metrics)


def serve(kind: str, port: int) -> None:
    """Child process: serve the baseline or the intake until killed."""
    import uvicorn

    from rsbridge.web.guard import ConnectionLimits, guarded_protocol

    with tempfile.TemporaryDirectory() as workdir:
        app = _bare_app() if kind == "baseline" else _intake_app(Path(workdir))
        # The intake under the listener limits of `rsbridge serve`; the baseline without.
        http = "h11" if kind == "baseline" else guarded_protocol(ConnectionLimits())
        uvicorn.run(
            app,  # type: ignore[arg-type]
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            http=http,
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_up(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            try:
                await http.post(url, content=b"event=warmup")
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
    raise SystemExit(f"server at {url} did not start")


def _body(n: int) -> bytes:
    return urlencode([*FORM, ("lsid", f"{n:032x}"), ("timestamp", str(1763700000 + n))]).encode()


class _Connection:
    """A minimal HTTP/1.1 keep-alive sender.

    Written here rather than using httpx because httpx's own per-request cost (about a
    millisecond on these machines) is as large as what is being measured.
    """

    def __init__(self, port: int, path: str) -> None:
        self.port, self.path = port, path
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def _serial(port: int, path: str, count: int, offset: int = 0) -> list[float]:
    latencies = []
    connection = _Connection(port, path)
    try:
        for n in range(offset, offset + count):
            body = _body(n)
            started = time.perf_counter()
            status = await connection.post(body)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise SystemExit(f"{path}: HTTP {status}")
    finally:
        await connection.close()
    return latencies


async def _concurrent(port: int, path: str, count: int, senders: int, offset: int) -> float:
    numbers = iter(range(offset, offset + count))

    async def sender() -> None:
        connection = _Connection(port, path)
        try:
            for n in numbers:
                if await connection.post(_body(n)) != 200:
                    raise SystemExit(f"{path}: not 200")
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    return count / (time.perf_counter() - started)


def measure(kind: str, serial: int, concurrent: int, senders: int) -> dict[str, float]:
    port = _free_port()
    child = subprocess.Popen(  # noqa: S603 (this script, as a child)
        [sys.executable, __file__, "--serve", kind, "--port", str(port)]
    )
    try:
        path = "/ERSPost?appliance=default"
        asyncio.run(_wait_up(f"http://127.0.0.1:{port}{path}"))
        asyncio.run(_serial(port, path, 200, offset=10**6))  # warm-up
        latencies = asyncio.run(_serial(port, path, serial))
        rate = asyncio.run(_concurrent(port, path, concurrent, senders, serial + 1000))
    finally:
        child.terminate()
        child.wait()
    return {
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "events_per_s": rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serial", type=int, default=2000)
    parser.add_argument("--concurrent", type=int, default=5000)
    parser.add_argument("--senders", type=int, default=32)
    parser.add_argument("--serve", choices=["baseline", "rsbridge"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    base = measure("baseline", args.serial, args.concurrent, args.senders)
    ours = measure("rsbridge", args.serial, args.concurrent, args.senders)
    print(
        f"serial sender, {args.serial} events; "
        f"concurrent: {args.senders} senders, {args.concurrent} events"
    )
    table = Comparison(24)
    print(table.header())
    for key, label in (
        ("p50_ms", "ack p50 (ms)"),
        ("p99_ms", "ack p99 (ms)"),
        ("events_per_s", "events/s (concurrent)"),
    ):
        print(table.row(label, base[key], ours[key], "12.2f"))
    print(
        f"targets: p99 < 5 ms -> {verdict(ours['p99_ms'] < 5)}; "
        f"> 2000 events/s -> {verdict(ours['events_per_s'] > 2000)}"
    )


if __name__ == "__main__":
    main()
