"""The listening socket of ``rsbridge serve``, bound before anything else starts."""

from __future__ import annotations

import errno
import socket

from rsbridge.errors import ConfigurationError

__all__ = ["bind_listener"]


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not listening yet: the server calls listen).

    Raises :class:`ConfigurationError` naming the address when it cannot be bound: the
    port is taken (another ``rsbridge serve``?), the address is not this host's, or the
    port needs privileges.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    # IPPROTO_TCP given explicitly: asyncio sets TCP_NODELAY on accepted connections only
    # when the listening socket says it is TCP (see rsbridge.web.serve).
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    try:
        # Lets a restart bind while old connections linger in TIME_WAIT; on Linux it
        # never lets two listeners share a port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        why = (
            "the port is in use (is another rsbridge serve running?)"
            if exc.errno == errno.EADDRINUSE
            else exc.strerror or str(exc)
        )
        raise ConfigurationError(f"cannot listen on {host}:{port}: {why}") from None
    return sock
