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

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from rsbridge import __version__
from rsbridge.deadline import DeadlineClient
from rsbridge.errors import (
    ConfigurationError,
    ConnectorError,
    ConnectorPermanentError,
    ConnectorRetryableError,
)
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
    return DeadlineClient(
        deadline=config.timeout_seconds,
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

    def scrub(self, error: ConnectorError) -> ConnectorError:
        """``error`` with every configured secret in its message replaced by ``***``."""
        message = error.message
        for secret in self._secrets():
            if secret:
                message = message.replace(secret, "***")
        if message != error.message:
            return type(error)(message, retry_after=error.retry_after)
        return error
