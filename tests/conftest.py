"""Fixtures shared by every test package."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from rsbridge.appliance.report_model import CustomAttribute, SupportSession
from rsbridge.engine.signing import SIGNATURE_ATTRIBUTE, Signer

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
"""The ``[signing] secret`` of test configurations."""


def signer_for_tests() -> Signer:
    """The signer of test configurations (``SIGNING_SECRET``)."""
    return Signer(SecretStr(SIGNING_SECRET))


def signed_names(
    signature: str,
    attributes: Mapping[str, str],
    *,
    integration: str,
    appliance_id: str = "default",
    started: datetime | None = None,
) -> frozenset[str]:
    """The code names of ``attributes`` whose values ``signature`` vouches for, for a
    session of ``integration`` that starts at ``started`` (default: now)."""
    return signer_for_tests().verified(
        appliance_id, integration, signature, attributes, started=started or datetime.now(UTC)
    )


def sign_session(
    session: SupportSession, *integrations: str, appliance_id: str = "default"
) -> SupportSession:
    """``session`` with an ``rsb_sig`` over its external key and custom attributes for
    ``integrations`` (default ``servicenow``), as a session started from a key rsbridge
    issued carries (returns the same object)."""
    values = {a.code_name: a.value for a in session.custom_attributes}
    if session.external_key:
        values["external_key"] = session.external_key
    issued = session.start_time or datetime.now(UTC)
    signature: str | None = None
    for integration in integrations or ("servicenow",):
        signature = signer_for_tests().sign(
            appliance_id, integration, values, now=issued - timedelta(minutes=5), keep=signature
        )
    session.custom_attributes = [
        *(a for a in session.custom_attributes if a.code_name != SIGNATURE_ATTRIBUTE),
        CustomAttribute(SIGNATURE_ATTRIBUTE, "rsbridge signature", signature or ""),
    ]
    return session


class FakeClock:
    """A clock the tests move by hand: ``now`` in epoch seconds (2025-01-15 10:00 UTC by
    default); pass it where a simulator or client takes ``clock``."""

    def __init__(self, now: float = 1_736_935_200.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for servers run as subprocesses)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (made with the openssl command).

    Being self-signed, the certificate is also the CA file that makes a client trust it.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(  # noqa: S603 (fixed arguments)
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass(frozen=True)
class Trickle:
    """How a :func:`trickling_server` answers one path: ``body`` one byte every ``pause``
    seconds after the headers, which come after ``head_delay`` seconds."""

    body: bytes
    pause: float = 0.0
    head_delay: float = 0.0
    content_type: str = "application/json"


@contextlib.asynccontextmanager
async def trickling_server(routes: Mapping[str, Trickle]) -> AsyncIterator[str]:
    """A raw HTTP/1.1 server on loopback, in the test's event loop; yields its base URL.

    A request is answered by the route whose path prefix matches it (404 if none), with
    a Content-Length and ``Connection: close``. A peer this slow is what httpx's per-read
    timeouts cannot catch.
    """

    handlers: set[asyncio.Task[object]] = set()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        if me is not None:
            handlers.add(me)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            path = head.split(b" ", 2)[1].decode()
            route = max(
                ((prefix, r) for prefix, r in routes.items() if path.startswith(prefix)),
                key=lambda pair: len(pair[0]),
                default=None,
            )
            if route is None:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                return
            how = route[1]
            await asyncio.sleep(how.head_delay)
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Type: {how.content_type}\r\n"
                f"Content-Length: {len(how.body)}\r\nConnection: close\r\n\r\n".encode()
            )
            for i in range(len(how.body)):
                if how.pause:
                    await writer.drain()
                    await asyncio.sleep(how.pause)
                writer.write(how.body[i : i + 1])
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up: that is what the tests expect of it
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for handler in handlers:  # still trickling to a client that gave up
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)


# The real PostgreSQL server (tests/postgres.py): skipped without it, failed in CI.
from tests.postgres import postgres_database, postgres_url  # noqa: E402, F401
