"""Serve an ASGI app with uvicorn inside the running event loop (demo, tests, benchmarks).

Unlike :func:`rsbridge.sim.serve.serve_in_thread`, the app shares the caller's loop, so
objects bound to it (the store's futures, httpx clients) can be used from both sides.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.types import ASGIApp

from rsbridge.web.guard import ConnectionLimits, guarded_protocol


@asynccontextmanager
async def serving(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 10.0,
    limits: ConnectionLimits | None = None,
) -> AsyncIterator[str]:
    """Serve ``app`` until the context exits; yields ``http://host:port``.

    ``port=0`` picks a free port. The app's lifespan runs at start and at exit. The
    listener enforces ``limits`` (default: :class:`ConnectionLimits`' defaults), as
    ``rsbridge serve`` does.
    """
    # IPPROTO_TCP given explicitly: asyncio sets TCP_NODELAY on accepted connections only
    # when the listening socket says it is TCP; without it each keep-alive answer waits
    # ~40 ms for the peer's delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # proxy_headers=False: the intake decides itself which proxies to believe.
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            lifespan="auto",
            proxy_headers=False,
            http=guarded_protocol(limits or ConnectionLimits()),
        )
    )
    # uvicorn installs signal handlers only in run(); serve() leaves ours alone.
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = asyncio.get_running_loop().time() + startup_timeout
        while not server.started:
            if task.done() or asyncio.get_running_loop().time() > deadline:
                if task.done() and task.exception() is not None:
                    raise RuntimeError(
                        f"server on {host}:{port} did not start"
                    ) from task.exception()
                raise RuntimeError(f"server on {host}:{port} did not start")
            await asyncio.sleep(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, startup_timeout)
        sock.close()
