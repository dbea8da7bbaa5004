"""The SMTP client against a real SMTP server on loopback: plain, STARTTLS, TLS, login."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from rsbridge.actions.mail import Mailer
from rsbridge.actions.problems import ActionError, MailError
from rsbridge.config import SmtpConfig
from tests.actions.conftest import SMTP_PASSWORD, Mailbox, smtp_server
from tests.conftest import free_port


def mailer(box: Mailbox, **options: Any) -> Mailer:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": box.port,
        "security": "none",
        "from_address": "rsbridge@example.com",
        "timeout_seconds": 10,
        **options,
    }
    return Mailer(SmtpConfig.model_validate(settings))


def only_rsbridge(
    server: object, session: object, envelope: object, mechanism: str, data: object
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        b"rsbridge",
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


async def test_plain_smtp_delivers_the_message() -> None:
    with smtp_server() as box:
        await mailer(box).send("abel@example.com", "Remote Support\r\nInvitation", "Click here")
    [(sender, recipients, message)] = box.received()
    assert (sender, recipients) == ("rsbridge@example.com", ["abel@example.com"])
    assert message["Subject"] == "Remote Support Invitation"  # no header injection
    assert message["Message-ID"].endswith("@example.com>")


async def test_login_with_username_and_password() -> None:
    with smtp_server(auth_require_tls=False, authenticator=only_rsbridge) as box:
        await mailer(box, username="rsbridge", password=SMTP_PASSWORD).send(
            "abel@example.com", "s", "b"
        )
        with pytest.raises(MailError) as caught:
            await mailer(box, username="rsbridge", password="wrong-password").send(
                "abel@example.com", "s", "b"
            )
    assert len(box.received()) == 1
    assert "refused the login of 'rsbridge' (535)" in caught.value.message
    assert "wrong-password" not in caught.value.message
    assert not caught.value.retryable


async def test_starttls(certificate: tuple[Path, Path]) -> None:
    context = server_context(certificate)
    with smtp_server(tls_context=context, require_starttls=True) as box:
        await mailer(box, security="starttls", ca_file=str(certificate[0])).send(
            "abel@example.com", "s", "b"
        )
        with pytest.raises(MailError, match="TLS with the SMTP server"):
            # Without the CA the self-signed certificate does not verify.
            await mailer(box, security="starttls").send("abel@example.com", "s", "b")
        with pytest.raises(MailError):
            # The server insists on STARTTLS.
            await mailer(box, security="none").send("abel@example.com", "s", "b")
    assert len(box.received()) == 1


async def test_starttls_refused_by_a_server_without_it() -> None:
    with smtp_server() as box, pytest.raises(MailError, match="does not offer STARTTLS"):
        await mailer(box, security="starttls").send("abel@example.com", "s", "b")


async def test_implicit_tls(certificate: tuple[Path, Path]) -> None:
    context = server_context(certificate)
    with smtp_server(server_hostname="127.0.0.1", ssl_context=context) as box:
        await mailer(box, security="tls", ca_file=str(certificate[0])).send(
            "abel@example.com", "s", "b"
        )
    assert len(box.received()) == 1


async def test_unreachable_server() -> None:
    box = Mailbox(free_port())
    with pytest.raises(MailError) as caught:
        await mailer(box).send("abel@example.com", "s", "b")
    assert f"127.0.0.1:{box.port}" in caught.value.message
    assert caught.value.retryable


async def test_bad_recipient_is_refused_before_connecting() -> None:
    box = Mailbox(free_port())
    with pytest.raises(ActionError):
        await mailer(box).send("abel@example.com\r\nBcc: x@example.com", "s", "b")


def test_default_ports() -> None:
    def port(security: str) -> int:
        return SmtpConfig(
            host="mail", security=security, from_address="a@example.com"
        ).effective_port

    assert (port("none"), port("starttls"), port("tls")) == (25, 587, 465)
