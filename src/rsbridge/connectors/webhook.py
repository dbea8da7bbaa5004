"""The ``webhook`` connector: every delivery POSTed as JSON to a URL.

It hands deliveries to anything that accepts an HTTP POST (an automation platform, a
queue's HTTP gateway, a small service of your own). The body is the same JSON record
the ``jsonl`` connector writes as a line (see docs/connectors.md), and every request
carries the delivery's idempotency key in an ``Idempotency-Key`` header: the receiver
must treat a repeated key as the same delivery (store it once, answer as before),
because rsbridge sends it again whenever it cannot know whether an earlier attempt
arrived.

Answers: 2xx is success, and a JSON body's ``"id"`` becomes the write's reference;
401/403 raise :class:`~rsbridge.errors.ConnectorAuthError`; 404 for a write into a
ticket raises :class:`~rsbridge.errors.TicketNotFoundError`; 408, 425, 429 and 5xx,
timeouts and connection failures are retried within the call (exponential backoff
with jitter, or the ``Retry-After`` the receiver asks for) and then raise
:class:`~rsbridge.errors.ConnectorRetryableError`; any other status raises
:class:`~rsbridge.errors.ConnectorPermanentError` with an excerpt of the body.

Tickets are virtual, as in ``jsonl``: :meth:`WebhookConnector.find_ticket` accepts
a plain id (:func:`~rsbridge.connectors.base.virtual_ticket`), and
:meth:`WebhookConnector.create_ticket` POSTs a ``ticket`` record and uses the
receiver's ``"id"`` (or an id derived from the key).

The secret is sent only as ``Authorization: Bearer <secret>``; it is never part of a
message or a repr, and the URL is shown without user info or query string.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from pydantic import SecretStr

from rsbridge import __version__, fastpaths
from rsbridge.appliance.report_json import compact_json
from rsbridge.appliance.report_model import SupportSession
from rsbridge.backoff import backoff
from rsbridge.connectors.base import (
    CheckResult,
    Connector,
    ConnectorSettings,
    NoteDelivery,
    SessionDelivery,
    Setting,
    SurveyDelivery,
    Ticket,
    WriteResult,
    virtual_ticket,
)
from rsbridge.connectors.jsonl import (
    note_record,
    session_report_record,
    survey_record,
    ticket_record,
)
from rsbridge.connectors.transport import retry_after_seconds
from rsbridge.errors import (
    ConfigurationError,
    ConnectorAuthError,
    ConnectorError,
    ConnectorPermanentError,
    ConnectorRetryableError,
    TicketNotFoundError,
)
from rsbridge.peer_http import http_client
from rsbridge.tls import certificate_problem, tls_verification

__all__ = [
    "RETRYABLE_STATUSES",
    "WebhookConnector",
    "idempotency_header",
    "retry_after_seconds",
]

RETRYABLE_STATUSES = frozenset({408, 425, 429})
"""Statuses (besides every 5xx) after which the same request may succeed later."""
_BODY_LIMIT = 64 * 1024  # bytes of a response read: enough for {"id": ...}, bounded otherwise
_EXCERPT_CHARS = 300
_USER_AGENT = f"rsbridge/{__version__}"
_HEADER_SAFE = re.compile(r"[!-~]+")


def _display_url(url: httpx.URL) -> str:
    """``url`` without user info, query or fragment, which may hold credentials."""
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"


def _parse_url(value: object, setting: str) -> httpx.URL:
    where = f"connector settings (webhook): {setting}"
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{where}: must be an http:// or https:// URL")
    try:
        url = httpx.URL(value.strip())
    except httpx.InvalidURL:
        raise ConfigurationError(f"{where}: not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(f"{where}: must be an http:// or https:// URL with a host")
    return url


def idempotency_header(key: str) -> str:
    """The ``Idempotency-Key`` header value for ``key``: the key itself if it is visible
    ASCII, else the key percent-encoded (header values cannot carry the rest)."""
    if _HEADER_SAFE.fullmatch(key):
        return key
    return urllib.parse.quote(key, safe="")


@dataclass(frozen=True, slots=True)
class _Options:
    url: httpx.URL
    check_url: httpx.URL | None
    timeout: float
    max_attempts: int
    backoff_seconds: float
    max_retry_wait: float
    include_session: bool
    secret: SecretStr | None = field(repr=False)


def _options(config: ConnectorSettings) -> _Options:
    values = config.model_dump()

    def number(name: str, default: float, *, minimum: float, above: bool = False) -> float:
        value = values.get(name)
        value = default if value is None else float(value)
        if not math.isfinite(value) or value < minimum or (above and value == minimum):
            bound = f"greater than {minimum:g}" if above else f"at least {minimum:g}"
            raise ConfigurationError(f"connector settings (webhook): {name}: must be {bound}")
        return value

    secret = values.get("secret")
    check_url = values.get("check_url")
    include_session = values.get("include_session")
    url = _parse_url(values.get("url"), "url")
    if url.userinfo and isinstance(secret, SecretStr) and secret.get_secret_value():
        # httpx turns user info into Basic auth, replacing the Bearer header: the secret
        # would silently never be sent.
        raise ConfigurationError(
            "connector settings (webhook): url: has a user name and password, and secret is "
            "set too: the receiver would get Basic auth only; use one of them"
        )
    return _Options(
        url=url,
        check_url=None if not check_url else _parse_url(check_url, "check_url"),
        timeout=number("timeout", 10.0, minimum=0.0, above=True),
        max_attempts=int(number("max_attempts", 3, minimum=1)),
        backoff_seconds=number("backoff_seconds", 0.5, minimum=0.0),
        max_retry_wait=number("max_retry_wait", 30.0, minimum=0.0),
        include_session=True if include_session is None else bool(include_session),
        secret=secret if isinstance(secret, SecretStr) and secret.get_secret_value() else None,
    )


class WebhookConnector(Connector):
    """POSTs each delivery as JSON to a URL, with the idempotency key in a header."""

    name: ClassVar[str] = "webhook"
    title: ClassVar[str] = "Webhook (JSON POST)"
    settings: ClassVar[tuple[Setting, ...]] = (
        Setting(
            "url",
            "url",
            required=True,
            help="Where deliveries are POSTed (http:// or https://).",
        ),
        Setting(
            "secret",
            "str",
            secret=True,
            help="Sent as `Authorization: Bearer <secret>` with every request, if set.",
        ),
        Setting(
            "timeout",
            "float",
            default=10.0,
            help="Seconds one request may take, from connecting to the end of the answer.",
        ),
        Setting(
            "max_attempts",
            "int",
            default=3,
            help="Attempts per call for 408/425/429/5xx answers, timeouts and connection "
            "failures, before the call fails with a retryable error (the engine retries "
            "it later).",
        ),
        Setting(
            "backoff_seconds",
            "float",
            default=0.5,
            help="Wait before the second attempt; it doubles for each further attempt, "
            "with random jitter (between half and all of it).",
        ),
        Setting(
            "max_retry_wait",
            "float",
            default=30.0,
            help="Longest `Retry-After` honoured within a call; a longer one ends the call "
            "with a retryable error carrying the hint, for the engine to schedule.",
        ),
        Setting(
            "check_url",
            "url",
            help="If set, the connection test GETs this URL and expects 2xx; otherwise it "
            'POSTs {"kind": "check"} to `url`.',
        ),
        Setting(
            "include_session",
            "bool",
            default=True,
            help="Include the whole session model as JSON (`session`) in session report "
            "bodies, not only the rendered text and HTML.",
        ),
        Setting("verify_tls", "bool", default=True, help="Verify the receiver's TLS certificate."),
        Setting(
            "ca_file",
            "path",
            help="A PEM file of the CA certificates to trust instead of the public ones "
            "(private CA).",
        ),
    )

    def __init__(self, config: ConnectorSettings, *, http: httpx.AsyncClient | None = None):
        own = http is None
        if http is None:
            c: Any = config
            verify = tls_verification(
                verify=bool(c.verify_tls), ca_file=c.ca_file, where="webhook settings"
            )
            http = http_client(verify=verify, timeout=30.0)
        super().__init__(config, http=http)
        self._own_http = own
        self._options = _options(config)
        self._target = _display_url(self._options.url)

    @classmethod
    def validate_settings(
        cls, raw: Mapping[str, object], *, where: str = "connector settings"
    ) -> ConnectorSettings:
        """Validate ``raw``; URLs must be http(s) and the numbers in range."""
        config = super().validate_settings(raw, where=where)
        _options(config)
        return config

    def __repr__(self) -> str:
        return f"WebhookConnector(url={self._target!r})"

    # --- the contract ------------------------------------------------------------------

    async def check(self) -> CheckResult:
        """GET ``check_url``, or POST ``{"kind": "check"}`` to ``url``; 2xx passes."""
        if self._options.check_url is not None:
            url = self._options.check_url
            response, _body = await self._request("GET", url, None, what="check")
        else:
            url = self._options.url
            body = {"kind": "check", "at": datetime.now(UTC).isoformat(timespec="milliseconds")}
            response, _body = await self._request("POST", url, body, what="check")
        return CheckResult(f"{_display_url(url)} answered HTTP {response.status_code}")

    async def find_ticket(self, reference: str, *, source: str = "external_key") -> Ticket:
        """Tickets are virtual: a reference that is a plain id is a ticket with that id."""
        return virtual_ticket(reference, "webhook")

    async def create_ticket(
        self, session: SupportSession, fields: Mapping[str, str], *, key: str
    ) -> Ticket:
        """POST a ``ticket`` record; the answer's ``id`` (else one derived from ``key``)."""
        record = ticket_record(session, fields, key=key, ticket=None)
        _response, answer = await self._request(
            "POST", self._options.url, record, key=key, what="ticket"
        )
        ticket_id = _answer_str(answer, "id")
        if ticket_id is None:
            # Derived from the key, so that a repeated call names the same ticket.
            ticket_id = "webhook-" + hashlib.sha256(key.encode()).hexdigest()[:16]
        return Ticket(
            id=ticket_id, number=_answer_str(answer, "number"), url=_answer_str(answer, "url")
        )

    def writes_session_json(self) -> bool:
        """With ``include_session`` on the fast path: the session's JSON is written where
        the report is rendered, and copied into the body as it is."""
        return self._options.include_session and fastpaths.enabled()

    async def write_session_report(
        self, ticket: Ticket | None, delivery: SessionDelivery
    ) -> WriteResult:
        """POST a ``session_report`` record for ``ticket``."""
        # The fast path writes the session with orjson as it is, without converting it to
        # plain data first (the same JSON: tests/connectors/test_webhook.py).
        fast = fastpaths.enabled()
        record = session_report_record(
            ticket, delivery, include_session=self._options.include_session, native=fast
        )
        return await self._write(record, delivery.key, ticket, fast=fast)

    async def write_survey(self, ticket: Ticket | None, delivery: SurveyDelivery) -> WriteResult:
        """POST a ``survey`` record for ``ticket``."""
        return await self._write(survey_record(ticket, delivery), delivery.key, ticket)

    async def write_note(self, ticket: Ticket, note: NoteDelivery) -> WriteResult:
        """POST a ``note`` record for ``ticket``."""
        return await self._write(note_record(ticket, note), note.key, ticket)

    # --- HTTP ------------------------------------------------------------------------------

    async def _write(
        self, record: dict[str, Any], key: str, ticket: Ticket | None, *, fast: bool = False
    ) -> WriteResult:
        response, answer = await self._request(
            "POST",
            self._options.url,
            record,
            key=key,
            ticket=ticket,
            what=record["kind"],
            fast=fast,
        )
        return WriteResult(
            ref=_answer_str(answer, "id") or key,
            detail={"url": self._target, "status": str(response.status_code)},
        )

    async def _request(
        self,
        method: str,
        url: httpx.URL,
        body: Mapping[str, Any] | None,
        *,
        what: str,
        key: str | None = None,
        ticket: Ticket | None = None,
        fast: bool = False,
    ) -> tuple[httpx.Response, object]:
        """Send with in-call retries; the 2xx response and its JSON body (or None).

        ``fast``: ``body`` may hold :func:`~rsbridge.appliance.report_json.session_data`
        and is written by :func:`~rsbridge.appliance.report_json.compact_json`.
        """
        if not key and body is not None and what != "check":
            raise ConnectorPermanentError(f"webhook: a {what} write needs an idempotency key")
        options = self._options
        headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            if fast:
                content = compact_json(body)
            else:
                content = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
        if key:
            headers["Idempotency-Key"] = idempotency_header(key)
        if options.secret is not None:
            headers["Authorization"] = f"Bearer {options.secret.get_secret_value()}"
        where = f"webhook {_display_url(url)}: {what}" + (f" {key}" if key else "")

        for attempt in range(1, options.max_attempts + 1):
            hint: float | None = None
            try:
                async with asyncio.timeout(options.timeout):
                    response, raw = await self._send(method, url, content, headers)
            except (TimeoutError, httpx.TimeoutException):
                failure = f"no answer within {options.timeout:g} s"
            except httpx.UnsupportedProtocol:
                raise self._error(ConnectorPermanentError, f"{where}: unsupported URL") from None
            except httpx.TransportError as exc:
                problem = certificate_problem(exc)
                if problem is not None:  # retrying cannot help until a setting changes
                    raise self._error(
                        ConnectorPermanentError,
                        f"{where}: the TLS certificate {problem} "
                        "(verify_tls = false is for a test receiver only)",
                    ) from None
                failure = f"could not be reached ({type(exc).__name__}: {exc})"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return response, _json_or_none(raw)
                if status in (401, 403):
                    raise self._error(
                        ConnectorAuthError,
                        f"{where}: the receiver refused the credentials (HTTP {status}); "
                        "check the secret setting",
                    )
                if status in RETRYABLE_STATUSES or status >= 500:
                    failure = f"HTTP {status}"
                    hint = retry_after_seconds(response.headers.get("Retry-After"))
                elif status == 404 and ticket is not None:
                    raise self._error(
                        TicketNotFoundError,
                        f"{where}: the receiver has no ticket {ticket.id!r} (HTTP 404)",
                    )
                else:
                    raise self._error(
                        ConnectorPermanentError,
                        f"{where}: refused with HTTP {status}: {_excerpt(raw)}",
                    )

            if attempt == options.max_attempts:
                raise self._error(
                    ConnectorRetryableError,
                    f"{where}: {failure} (gave up after {attempt} attempts)",
                    retry_after=hint,
                )
            if hint is not None and hint > options.max_retry_wait:
                raise self._error(
                    ConnectorRetryableError,
                    f"{where}: {failure}, asked to retry after {hint:g} s",
                    retry_after=hint,
                )
            delay = backoff(attempt - 1, base=options.backoff_seconds, cap=options.max_retry_wait)
            await asyncio.sleep(hint if hint is not None else delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _send(
        self, method: str, url: httpx.URL, content: bytes | None, headers: dict[str, str]
    ) -> tuple[httpx.Response, bytes]:
        """One request; the response and at most ``_BODY_LIMIT`` bytes of its body."""
        request = self.http.build_request(
            method, url, content=content, headers=headers, timeout=self._options.timeout
        )
        # Never follow redirects, even on a shared client that would: a 303 turns the POST
        # into a GET and drops the body, a cross-host one would carry the bearer token along.
        response = await self.http.send(request, stream=True, follow_redirects=False)
        try:
            raw = bytearray()
            async for chunk in response.aiter_bytes():
                raw += chunk
                if len(raw) >= _BODY_LIMIT:
                    break
            return response, bytes(raw[:_BODY_LIMIT])
        finally:
            await response.aclose()

    def _error(
        self, cls: type[ConnectorError], message: str, *, retry_after: float | None = None
    ) -> ConnectorError:
        """An error whose message cannot contain the secret, even if a peer echoed it."""
        secret = self._options.secret
        if secret is not None:
            message = message.replace(secret.get_secret_value(), "***")
        return cls(message, retry_after=retry_after)


def _json_or_none(raw: bytes) -> object:
    try:
        value: object = json.loads(raw)
    except ValueError:
        return None
    return value


def _answer_str(answer: object, name: str) -> str | None:
    """``answer[name]`` as text, if the answer is a JSON object with a string or number."""
    if not isinstance(answer, dict):
        return None
    value = answer.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value) or None


def _excerpt(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        return "(empty body)"
    # One line of printable text: the body is the peer's, and ends up in logs.
    text = "".join(c if c.isprintable() else " " for c in text)
    text = " ".join(text.split())
    if len(text) > _EXCERPT_CHARS:
        text = text[:_EXCERPT_CHARS] + "…"
    return text
