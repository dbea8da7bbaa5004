"""HTTP calls to a ticketing system, failures classified the same way for every connector.

Each connector's REST client speaks its system's own dialect (envelopes, error arrays,
auth flows) but shares what happens below: one request through the shared
``httpx.AsyncClient``, counted, and every transport failure turned into the connector
error tree:

* no answer in time (or past the client's call deadline) → retryable;
* the proxy failed, the host could not be reached → retryable;
* a TLS certificate that does not verify → permanent (retrying cannot help until the
  certificate or the settings change), naming OpenSSL's reason;
* a URL that is not http(s) → permanent.

Messages start with ``"<System> <host>:"`` and never contain a secret: :meth:`scrub`
replaces every configured secret in an error's message, in case a peer echoed one.
"""

from __future__ import annotations

import email.utils
import math
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from rsbridge import __version__
from rsbridge.deadline import DeadlineClient
from rsbridge.errors import (
    ConfigurationError,
    ConnectorError,
    ConnectorPermanentError,
    ConnectorRetryableError,
)
from rsbridge.peer_http import http_client
from rsbridge.tls import certificate_problem, tls_verification

USER_AGENT = f"rsbridge/{__version__}"


def peer_client(config: Any, *, connector: str) -> DeadlineClient:
    """The HTTP client of a connector whose settings have ``timeout_seconds``, ``proxy``,
    ``verify_tls`` and ``ca_file``.

    The whole call is bounded (``timeout_seconds``), not only each read: a peer (or a
    proxy) that trickles its answer would otherwise hold the job for as long as it likes.
    """
    if not config.timeout_seconds > 0:
        raise ConfigurationError(f"{connector}: timeout_seconds must be more than 0")
    verify = tls_verification(
        verify=bool(config.verify_tls), ca_file=config.ca_file, where=f"{connector} settings"
    )
    return http_client(
        deadline=float(config.timeout_seconds),
        proxy=config.proxy or None,
        verify=verify,
        timeout=config.timeout_seconds,
    )


class PeerTransport:
    """Sends requests to one ticketing system (``system``, e.g. ``"ServiceNow"``)."""

    def __init__(
        self,
        system: str,
        base_url: str,
        http: httpx.AsyncClient,
        *,
        timeout: float,
        secrets: Callable[[], Iterable[str]] = lambda: (),
    ) -> None:
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.host = httpx.URL(self.base_url).host
        self.http = http
        self.timeout = timeout
        self._secrets = secrets
        self.calls = 0
        """HTTP requests sent (token requests included), for tests and benchmarks."""

    @property
    def where(self) -> str:
        """``"<System> <host>"``, the start of every message about this peer."""
        return f"{self.system} {self.host}"

    async def send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One request (``url`` absolute); transport failures raised as connector errors."""
        self.calls += 1
        try:
            return await self.http.request(
                method,
                url,
                content=content,
                params=params,
                headers={"User-Agent": USER_AGENT, **(headers or {})},
                timeout=self.timeout,
                follow_redirects=False,
            )
        except httpx.TimeoutException:
            raise ConnectorRetryableError(
                f"{self.where}: no answer within {self.timeout:g} s"
            ) from None
        except httpx.UnsupportedProtocol:
            raise ConnectorPermanentError(
                f"{self.where}: the URL must be http:// or https://"
            ) from None
        except httpx.ProxyError as exc:
            raise ConnectorRetryableError(
                f"{self.where}: the proxy refused or failed ({exc})"
            ) from None
        except httpx.TransportError as exc:
            problem = certificate_problem(exc)
            if problem is not None:
                raise ConnectorPermanentError(
                    f"{self.where}: the TLS certificate {problem} "
                    "(verify_tls = false is for a test instance only)"
                ) from None
            raise ConnectorRetryableError(
                f"{self.where} could not be reached ({type(exc).__name__}: {exc})"
            ) from None

    def token_answer(self, response: httpx.Response) -> dict[str, Any] | None:
        """The JSON body of an OAuth token answer that holds an ``access_token``, or None
        (a refusal: the caller says why). An endpoint that is rate limited, down, or
        answering a web page (maintenance, a hibernating instance) is a retryable error."""
        body = response_json(response)
        status = response.status_code
        if status == 429 or status >= 500 or (status == 200 and not isinstance(body, dict)):
            raise ConnectorRetryableError(
                f"{self.where}: the OAuth token endpoint is not answering "
                f"(HTTP {status}{', not JSON' if status == 200 else ''}); will retry",
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status != 200 or not isinstance(body, dict) or "access_token" not in body:
            return None
        return body

    def scrub(self, error: ConnectorError) -> ConnectorError:
        """``error`` with every configured secret in its message replaced by ``***``."""
        message = error.message
        for secret in self._secrets():
            if secret:
                message = message.replace(secret, "***")
        if message != error.message:
            return type(error)(message, retry_after=error.retry_after)
        return error


def response_json(response: httpx.Response) -> Any:
    """The answer's JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def looks_like_html(response: httpx.Response) -> bool:
    """The answer is a web page (a proxy, a login or maintenance page), not an API's."""
    kind = response.headers.get("Content-Type", "").lower()
    return "html" in kind or response.text.lstrip()[:15].lower().startswith(("<!doctype", "<html"))


def body_excerpt(response: httpx.Response) -> str:
    """The start of an answer's body on one line (for messages about unexpected answers)."""
    text = response.text.strip().replace("\n", " ")
    return (text[:200] + "...") if len(text) > 200 else text or f"HTTP {response.status_code}"


def secret_text(value: SecretStr | None) -> str:
    """A secret setting's value where it is sent (``""`` when unset)."""
    return value.get_secret_value() if value is not None else ""


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date).

    A fractional number of seconds is accepted; a date in the past gives 0. Returns
    ``None`` when the value is absent or unreadable.
    """
    if not value or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


@dataclass(frozen=True, slots=True)
class FormPart:
    """One part of a ``multipart/form-data`` body: a field, or a file when ``filename``."""

    name: str
    data: bytes
    content_type: str | None = None
    filename: str | None = None


def multipart_body(parts: Sequence[FormPart]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body of ``parts`` and its Content-Type.

    Built here (a few lines) rather than through httpx's ``files=``: :class:`PeerTransport`
    sends bytes, and the connectors need exact part names (AR's ``attach-<field>``) and
    order. Names are made safe for the quoted header parameter (no quotes, backslashes or
    control characters): a file name can come from session data.
    """
    boundary = "rsbridge-" + secrets.token_hex(12)
    out = bytearray()
    for part in parts:
        disposition = f'form-data; name="{_header_text(part.name)}"'
        if part.filename is not None:
            disposition += f'; filename="{_header_text(part.filename)}"'
        out.extend(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode())
        if part.content_type:
            out.extend(f"Content-Type: {part.content_type}\r\n".encode())
        out.extend(b"\r\n" + part.data + b"\r\n")
    out.extend(f"--{boundary}--\r\n".encode())
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def _header_text(value: str) -> str:
    return "".join("_" if ch in '"\\' or ch < " " or ch == "\x7f" else ch for ch in value)
