"""Run any simulator's ASGI app on a loopback port in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send


class SwappableApp:
    """An ASGI app whose inner app can be replaced while it is served.

    Starting a server costs tens of milliseconds; test modules serve one of these once
    and plug a fresh simulator into ``app`` for each test.
    """

    def __init__(self) -> None:
        self.app: ASGIApp = Starlette()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def server_options(tls: tuple[Path, Path] | None = None) -> dict[str, Any]:
    """The uvicorn options every simulator is served with; ``tls``: certificate and key."""
    return {
        "log_level": "warning",
        # Simulators set their own Server header (the appliance says Apache).
        "server_header": False,
        # asyncio's loop, not uvloop (which uvicorn would pick where installed): libuv's
        # timers count whole milliseconds, and faults pause for less (trickle_seconds).
        "loop": "asyncio",
        "ssl_certfile": str(tls[0]) if tls else None,
        "ssl_keyfile": str(tls[1]) if tls else None,
    }


@contextmanager
def serve_in_thread(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 10.0,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a daemon thread; yields the base URL ``http://host:port``.

    ``port=0`` picks a free ephemeral port. ``tls`` (certificate and key PEM files)
    serves HTTPS instead, and the URL starts with ``https://``. The context waits until
    the server accepts connections and stops it (and the thread) on exit.
    """
    # IPPROTO_TCP given explicitly: asyncio sets TCP_NODELAY on accepted connections only
    # when the listening socket says it is TCP; without it each keep-alive answer waits
    # ~40 ms for the peer's delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, **server_options(tls)))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="sim-server"
    )
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"simulator server on {host}:{port} did not start")
            time.sleep(0.01)
        yield f"{'https' if tls else 'http'}://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        sock.close()
