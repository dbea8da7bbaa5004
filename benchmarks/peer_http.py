"""The peers' HTTP client: CPU per request on httpx's default transport and the lean one.

    python3 dev.py bench peer_http [--requests 3000] [--concurrency 8] [--rounds 3]
                                   [--latency 0.005] [--profile N]

Both sides are the clients rsbridge makes for its peers (:func:`rsbridge.peer_http.http_client`):
**before** inside :func:`rsbridge.fastpaths.turned_off` (httpx's default transport: httpcore
on anyio), **lean** with the fast paths on (:class:`~rsbridge.http_pool.ConnectionPool` of
httpcore's connections on :class:`~rsbridge.http_backend.AsyncioBackend`). Two shapes of call:

* **webhook**: a 50 KB JSON POST answered with a few bytes (the webhook connector's
  client, no call deadline), the pipeline benchmark's session report;
* **appliance**: a GET answered with 20 KB (a :class:`~rsbridge.deadline.DeadlineClient`,
  as the appliance client and the ticketing connectors use).

The server is a minimal HTTP/1.1 keep-alive server in a child process (its CPU is not
counted), answering each request ``--latency`` seconds late. ``--concurrency`` requests
are in flight at once, so the pool holds that many connections. The figure is this
process's CPU per request (every thread), the best of ``--rounds`` rounds of each side,
the sides alternating; printed as ratios lean / before, measured in the same run.
``--profile N`` runs one more lean round per shape under cProfile and prints the top N
functions by own time, and the share of the pool's bookkeeping (taking and giving back
connections).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from harness import ChildPeer, Stopwatch, announce
from rsbridge import fastpaths
from rsbridge.peer_http import http_client

WEBHOOK_BODY = b'{"session": "' + b"x" * 50_000 + b'"}'
APPLIANCE_ANSWER = 20_000


# --- the server (child process) ------------------------------------------------------------


async def _serve(latency: float) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, size = 0, 8
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"x-answer-size":
                        size = int(value)
                if length:
                    await reader.readexactly(length)
                if latency:
                    await asyncio.sleep(latency)
                body = b'{"a":"' + b"y" * max(0, size - 8) + b'"}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await announce({"url": f"http://127.0.0.1:{port}"})


# --- the client (this process) -------------------------------------------------------------

Shape = Callable[[httpx.AsyncClient, str], Any]


async def webhook_call(http: httpx.AsyncClient, url: str) -> None:
    response = await http.post(
        f"{url}/hook", content=WEBHOOK_BODY, headers={"Content-Type": "application/json"}
    )
    response.raise_for_status()
    response.json()


async def appliance_call(http: httpx.AsyncClient, url: str) -> None:
    response = await http.get(f"{url}/api", headers={"X-Answer-Size": str(APPLIANCE_ANSWER)})
    response.raise_for_status()
    assert len(response.content) == APPLIANCE_ANSWER


SHAPES: dict[str, tuple[Shape, float | None]] = {
    # name: the call, the client's call deadline (None: a plain httpx.AsyncClient)
    "webhook": (webhook_call, None),
    "appliance": (appliance_call, 120.0),
}


async def _round(
    url: str, shape: str, lean: bool, requests: int, concurrency: int, profile: Any = None
) -> float:
    """CPU ms per request of ``requests`` calls, ``concurrency`` at once (after a warm-up)."""
    call, deadline = SHAPES[shape]
    if lean:
        client = http_client(deadline=deadline, timeout=30.0)
    else:
        with fastpaths.turned_off():
            client = http_client(deadline=deadline, timeout=30.0)
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await call(http, url)

    async with client as http:
        await asyncio.gather(*(one() for _ in range(concurrency * 20)))  # connections made
        with Stopwatch() as watch:
            if profile is not None:
                profile.enable()
            await asyncio.gather(*(one() for _ in range(requests)))
            if profile is not None:
                profile.disable()
    return watch.cpu_seconds * 1000 / requests


def _print_profile(profile: cProfile.Profile, top: int) -> None:
    stats = pstats.Stats(profile)
    rows: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in rows.values()) or 1.0
    ranked = sorted(rows.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for (path, line, name), (_calls, primitive, own, cumulative, _callers) in ranked:
        where = f"{Path(path).name}:{line}({name})" if line else name
        print(f"  {own / total:6.1%} own {cumulative / total:6.1%} cum {primitive:>8}  {where}")
    pool = [
        (name, row[3])
        for (path, _line, name), row in rows.items()
        if path.endswith("http_pool.py") and name in ("_acquire", "_release")
    ]
    for name, cumulative in pool:
        print(
            f"  the pool: ConnectionPool.{name} {cumulative / total:.1%} of the profiled CPU (cum)"
        )


async def _measure(args: argparse.Namespace, url: str) -> None:
    print(
        f"{args.requests} requests per round, {args.concurrency} at once, "
        f"best of {args.rounds} rounds; server latency {args.latency * 1000:g} ms"
    )
    print(f"{'CPU ms / request':32}{'before':>10}{'lean':>10}{'ratio':>9}")
    for shape in SHAPES:
        best = {False: float("inf"), True: float("inf")}
        for _ in range(args.rounds):
            for lean in (False, True):
                ms = await _round(url, shape, lean, args.requests, args.concurrency)
                best[lean] = min(best[lean], ms)
        before, lean_ms = best[False], best[True]
        print(f"{shape:32}{before:10.3f}{lean_ms:10.3f}{lean_ms / before:8.2f}x")
    if args.profile:
        for shape in SHAPES:
            profile = cProfile.Profile()
            await _round(url, shape, True, args.requests, args.concurrency, profile)
            print(f"profile, lean, {shape}: top {args.profile} by own time")
            _print_profile(profile, args.profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.005, help="server latency (s)")
    parser.add_argument("--profile", type=int, metavar="N", default=0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.latency))
        return
    script = str(Path(__file__).resolve())
    with ChildPeer([script, "--serve", "--latency", str(args.latency)], "server") as server:
        asyncio.run(_measure(args, server.info["url"]))


if __name__ == "__main__":
    main()
