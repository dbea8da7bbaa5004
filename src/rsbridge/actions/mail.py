"""E-mailing a session key to the customer through the configured SMTP server.

Python's own :mod:`smtplib`, run in a worker thread: one short message per key does not
justify a dependency, and the thread keeps the event loop free while the server answers.
``security`` selects plain SMTP (``none``), an upgrade with STARTTLS (``starttls``) or TLS
from the first byte (``tls``, "SMTPS"); certificates are verified against the system's
CAs or ``ca_file``. Errors never contain the password (it is only ever given to
:meth:`smtplib.SMTP.login`).
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from rsbridge.actions.problems import ActionError, MailError
from rsbridge.config import SmtpConfig
from rsbridge.connectors.text import is_email_address


def check_address(address: str) -> str:
    """``address`` if it is one plain e-mail address; ActionError (422) otherwise."""
    if not is_email_address(address):
        raise ActionError(
            f"{address[:60]!r} is not an e-mail address such as someone@example.com",
            status=422,
            code="invalid_request",
        )
    return address


class Mailer:
    """Sends plain-text messages through one SMTP server."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    @property
    def server(self) -> str:
        """``host:port`` of the server, for messages."""
        return f"{self.config.host}:{self.config.effective_port}"

    def message(self, to: str, subject: str, body: str) -> EmailMessage:
        """The message to send (``From`` is the configured address)."""
        message = EmailMessage()
        message["From"] = self.config.from_address
        message["To"] = check_address(to)
        # A subject from the appliance could hold a line break; a header must not.
        message["Subject"] = " ".join(subject.split())
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.config.from_address.rpartition("@")[2])
        message.set_content(body)
        return message

    async def send(self, to: str, subject: str, body: str) -> None:
        """Send one message to ``to``; MailError says what went wrong."""
        message = self.message(to, subject, body)
        await asyncio.to_thread(self._send, message)

    def _context(self) -> ssl.SSLContext:
        cafile = str(self.config.ca_file) if self.config.ca_file else None
        return ssl.create_default_context(cafile=cafile)

    def _send(self, message: EmailMessage) -> None:
        config = self.config
        port = config.effective_port
        try:
            smtp: smtplib.SMTP
            if config.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    config.host, port, timeout=config.timeout_seconds, context=self._context()
                )
            else:
                smtp = smtplib.SMTP(config.host, port, timeout=config.timeout_seconds)
            with smtp:
                if config.security == "starttls":
                    smtp.starttls(context=self._context())
                if config.username is not None and config.password is not None:
                    smtp.login(config.username, config.password.get_secret_value())
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise MailError(
                f"the SMTP server {self.server} refused the login of {config.username!r} "
                f"({exc.smtp_code}); check smtp.username and smtp.password",
                retryable=False,
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise MailError(
                f"the SMTP server {self.server} does not offer STARTTLS or AUTH as configured; "
                "check smtp.security",
                retryable=False,
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = ", ".join(f"{r} ({c})" for r, (c, _) in exc.recipients.items())
            raise MailError(
                f"the SMTP server {self.server} refused the recipient {codes}", retryable=False
            ) from None
        except smtplib.SMTPResponseException as exc:
            raw = exc.smtp_error
            text = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)[:200]
            raise MailError(
                f"the SMTP server {self.server} answered {exc.smtp_code} {text}",
                retryable=exc.smtp_code < 500,
            ) from None
        except ssl.SSLError as exc:
            raise MailError(
                f"TLS with the SMTP server {self.server} failed ({exc.reason or exc}); check "
                "smtp.security and smtp.ca_file",
                retryable=False,
            ) from None
        except socket.gaierror:
            raise MailError(
                f"Unknown host: the SMTP server name {config.host!r} does not resolve",
                retryable=False,
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(
                f"could not send through the SMTP server {self.server}: {type(exc).__name__}: {exc}"
            ) from None
