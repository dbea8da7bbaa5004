"""Fixtures shared by every test package."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
from pydantic import SecretStr

from rsbridge.appliance.report_model import CustomAttribute, SupportSession
from rsbridge.engine.signing import SIGNATURE_ATTRIBUTE, Signer

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
"""The ``[signing] secret`` of test configurations."""


def signature(attributes: Mapping[str, str], appliance_id: str = "default") -> str:
    """The ``rsb_sig`` value rsbridge puts beside ``attributes`` under the test secret."""
    return Signer(SecretStr(SIGNING_SECRET)).sign(appliance_id, attributes)


def sign_session(session: SupportSession, appliance_id: str = "default") -> SupportSession:
    """``session`` with an ``rsb_sig`` over its external key and custom attributes, as a
    session started from a key rsbridge issued carries (returns the same object)."""
    values = {a.code_name: a.value for a in session.custom_attributes}
    if session.external_key:
        values["external_key"] = session.external_key
    signed = signature(values, appliance_id)
    session.custom_attributes = [
        *(a for a in session.custom_attributes if a.code_name != SIGNATURE_ATTRIBUTE),
        CustomAttribute(SIGNATURE_ATTRIBUTE, "rsbridge signature", signed),
    ]
    return session


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
