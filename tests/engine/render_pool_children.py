"""Misbehaving render children for tests/engine/test_render_pool.py: each starts like a
real one (ready frame), then answers the first request wrongly. Importable by the
spawned child, which runs them instead of the pool's own child code."""

from __future__ import annotations

import pickle
import signal
import socket
import struct
from collections.abc import Mapping
from typing import Any

_HEADER = struct.Struct(">I")


def _start(sock: socket.socket) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock.setblocking(True)
    body = pickle.dumps(("ready", True, None))
    sock.sendall(_HEADER.pack(len(body)) + body)
    # The request: its header, then its body.
    (size,) = _HEADER.unpack(sock.recv(_HEADER.size, socket.MSG_WAITALL))
    sock.recv(size, socket.MSG_WAITALL)


def _until_closed(sock: socket.socket) -> None:
    while sock.recv(65536):
        pass


def not_a_pickle(sock: socket.socket, specs: Mapping[str, Any]) -> None:
    """Answers with a frame that does not unpickle."""
    _start(sock)
    sock.sendall(_HEADER.pack(5) + b"junk!")
    _until_closed(sock)


def too_large(sock: socket.socket, specs: Mapping[str, Any]) -> None:
    """Announces a frame of 4 GiB."""
    _start(sock)
    sock.sendall(b"\xff\xff\xff\xff")
    _until_closed(sock)


def not_an_answer(sock: socket.socket, specs: Mapping[str, Any]) -> None:
    """Answers with a pickle of something else."""
    _start(sock)
    body = pickle.dumps(["a", "list"])
    sock.sendall(_HEADER.pack(len(body)) + body)
    _until_closed(sock)


def wrong_request(sock: socket.socket, specs: Mapping[str, Any]) -> None:
    """Answers another request id."""
    _start(sock)
    body = pickle.dumps((-1, True, "not yours"))
    sock.sendall(_HEADER.pack(len(body)) + body)
    _until_closed(sock)


def hangs_up(sock: socket.socket, specs: Mapping[str, Any]) -> None:
    """Closes its socket halfway through an answer."""
    _start(sock)
    sock.sendall(_HEADER.pack(100) + b"half")
    sock.close()


def answers_two_at_once(sock: socket.socket, specs: Mapping[str, Any]) -> None:
    """A real child that reads two requests before it answers the first (both in order):
    it waits for ever on a pool that sends one request at a time."""
    from rsbridge.engine.render_pool import _answer

    renderers = {name: spec.build() for name, spec in specs.items()}
    _start_ready(sock)
    while True:
        requests = [_read_frame(sock), _read_frame(sock)]
        for request in requests:
            body = pickle.dumps(_answer(renderers, request))
            sock.sendall(_HEADER.pack(len(body)) + body)


def answers_three_together(sock: socket.socket, specs: Mapping[str, Any]) -> None:
    """A real child that reads three requests, then writes their three answers at once (a
    send buffer large enough that they are all in the socket together)."""
    from rsbridge.engine.render_pool import _answer

    renderers = {name: spec.build() for name, spec in specs.items()}
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    _start_ready(sock)
    while True:
        requests = [_read_frame(sock) for _ in range(3)]
        answers = [pickle.dumps(_answer(renderers, request)) for request in requests]
        sock.sendall(b"".join(_HEADER.pack(len(body)) + body for body in answers))


def _start_ready(sock: socket.socket) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock.setblocking(True)
    body = pickle.dumps(("ready", True, None))
    sock.sendall(_HEADER.pack(len(body)) + body)


def _read_frame(sock: socket.socket) -> Any:
    header = sock.recv(_HEADER.size, socket.MSG_WAITALL)
    if len(header) < _HEADER.size:
        raise SystemExit(0)  # the pool closed its end
    (size,) = _HEADER.unpack(header)
    return pickle.loads(sock.recv(size, socket.MSG_WAITALL))  # noqa: S301 (the test's pool)


def answers_slowly(sock: socket.socket, specs: Mapping[str, Any]) -> None:
    """A real child that takes 1 s over each request."""
    import time

    from rsbridge.engine.render_pool import _answer

    renderers = {name: spec.build() for name, spec in specs.items()}
    _start_ready(sock)
    while True:
        request = _read_frame(sock)
        time.sleep(1.0)
        body = pickle.dumps(_answer(renderers, request))
        sock.sendall(_HEADER.pack(len(body)) + body)
