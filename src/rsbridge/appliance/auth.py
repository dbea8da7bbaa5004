"""OAuth2 client-credentials tokens for one appliance API account.

The appliance keeps at most 30 live tokens per API account and silently invalidates
the oldest when a 31st is issued, so a careless client can log out its own other
workers. :class:`TokenCache` therefore holds one token per account, shares it among
all concurrent callers (one request in flight at a time), reuses it until shortly
before it expires, and fetches a new one only when it is about to expire or the
appliance has refused it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from rsbridge.appliance.transport import map_transport_error, retry_after
from rsbridge.errors import (
    ApplianceAuthError,
    ApplianceRateLimitedError,
    ApplianceResponseError,
    ApplianceServerError,
)

#: Live tokens the appliance keeps per API account (it drops the oldest at the next).
MAX_LIVE_TOKENS = 30

#: Renew this long before the appliance's expiry (clock skew, request latency).
RENEW_MARGIN_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token and the monotonic time after which it must not be used."""

    value: str = field(repr=False)
    expires_at: float


class TokenCache:
    """Obtains and caches the bearer token of one API account."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._url = f"{base_url}/oauth2/token"
        self._client_id = client_id
        self._secret = client_secret
        self._clock = clock
        self._token: Token | None = None
        self._lock = asyncio.Lock()
        self.tokens_issued = 0

    async def get(self) -> str:
        """A valid token, fetching one only if the cached one is missing or near expiry."""
        async with self._lock:
            if self._token is None or self._clock() >= self._token.expires_at:
                self._token = await self._fetch()
            return self._token.value

    def invalidate(self, value: str) -> None:
        """Forget ``value`` (the appliance refused it) unless another caller already did."""
        if self._token is not None and self._token.value == value:
            self._token = None

    async def _fetch(self) -> Token:
        try:
            response = await self._http.post(
                self._url,
                auth=(self._client_id, self._secret),
                data={"grant_type": "client_credentials"},
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise map_transport_error(exc, self._url) from None
        status = response.status_code
        if status in (400, 401, 403):
            raise ApplianceAuthError(
                f"the appliance refused OAuth client id {self._client_id!r} (HTTP {status}); "
                "check the client id and secret of the API account in /login > Management > "
                "API Configuration (regenerating the secret invalidates the old one)"
            )
        if status == 429:
            raise ApplianceRateLimitedError(
                "the appliance rate-limited the token request",
                retry_after=retry_after(response),
            )
        if status >= 500:
            raise ApplianceServerError(f"token request failed with HTTP {status}")
        try:
            payload = response.json()
            value = str(payload["access_token"])
            lifetime = float(payload.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            ctype = response.headers.get("content-type", "")
            raise ApplianceResponseError(
                f"{self._url} did not answer with an OAuth token (HTTP {status}, "
                f"{ctype or 'no content type'}); is this the appliance's address?",
                # A 404 or an HTML page is not an appliance: retrying will not help.
                retryable=status == 200 and "json" in ctype,
            ) from None
        self.tokens_issued += 1
        margin = min(RENEW_MARGIN_SECONDS, lifetime / 10)
        return Token(value, self._clock() + lifetime - margin)
