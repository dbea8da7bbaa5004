"""EWLogin's JWT access tokens and refresh tokens, with their expiry on the state's clock.

An access token is a real HS256 JWT (``sub`` login, ``kb``, ``iat``, ``exp``, ``jti``) signed
with a per-server secret, so a client may read its ``exp``; the server also remembers each
live ``jti``, so EWLogout and a refresh end it. Lifetimes are in minutes, as EWLogin answers
them (``expiration_time_unit: "minute"``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from rsbridge.sim.agiloft import errors
from rsbridge.sim.agiloft.errors import AgiloftError

# Documented: 15 minutes by default, the KB variable token_expires_in, at most 60.
TOKEN_MINUTES = 15
MAX_TOKEN_MINUTES = 60
# Inferred: the help does not say how long a refresh token lives.
REFRESH_MINUTES = 8 * 60


@dataclass
class Grant:
    """One login: user, KB, when the access and refresh tokens expire, the refresh token."""

    login: str
    kb: str
    expires: float
    refresh: str
    refresh_expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenBook:
    """Live grants by ``jti`` and refresh token; callers hold the state's lock."""

    def __init__(self) -> None:
        self.secret = secrets.token_bytes(32)
        self.grants: dict[str, Grant] = {}
        self.by_refresh: dict[str, str] = {}
        self.minutes = TOKEN_MINUTES
        self.refresh_minutes = REFRESH_MINUTES

    def issue(self, login: str, kb: str, now: float) -> tuple[str, Grant]:
        """A new access token and its grant."""
        jti = secrets.token_hex(12)
        expires = now + self.minutes * 60
        claims = {"sub": login, "kb": kb, "iat": int(now), "exp": int(expires), "jti": jti}
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(self.secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        grant = Grant(
            login, kb, expires, secrets.token_urlsafe(32), now + self.refresh_minutes * 60
        )
        self.grants[jti] = grant
        self.by_refresh[grant.refresh] = jti
        return f"{head}.{body}.{_b64(signature)}", grant

    def jti(self, token: str) -> str:
        """The ``jti`` of a token this server signed; 401 "Wrong Authorization data"
        otherwise (expiry is not checked here)."""
        parts = token.split(".")
        if len(parts) != 3:
            raise AgiloftError(401, errors.WRONG_AUTHORIZATION)
        try:
            expected = hmac.new(
                self.secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256
            ).digest()
            if not hmac.compare_digest(expected, _unb64(parts[2])):
                raise ValueError("signature")
            claims: dict[str, Any] = json.loads(_unb64(parts[1]))
            return str(claims["jti"])
        except (ValueError, KeyError, TypeError):
            raise AgiloftError(401, errors.WRONG_AUTHORIZATION) from None

    def check(self, token: str, now: float) -> Grant:
        """The grant of a live token: 500 "No active session found for current token" once
        it was logged out or refreshed, 400 "Token is expired" after its expiry."""
        grant = self.grants.get(self.jti(token))
        if grant is None:
            raise AgiloftError(500, errors.NO_SESSION)
        if now >= grant.expires:
            raise AgiloftError(400, errors.EXPIRED)
        return grant

    def end(self, token: str) -> Grant:
        """Forget a token (EWLogout); the same 500 when it is not live."""
        jti = self.jti(token)
        grant = self.grants.pop(jti, None)
        if grant is None:
            raise AgiloftError(500, errors.NO_SESSION)
        self.by_refresh.pop(grant.refresh, None)
        return grant

    def renew(self, token: str, refresh: str, now: float) -> tuple[str, Grant]:
        """A new pair for a refresh token and the (possibly expired) access token it came
        with; both old tokens end. Inferred texts: "Wrong refresh token" (400) for a refresh
        token that is unknown or belongs to another access token."""
        jti = self.jti(token)
        if self.by_refresh.get(refresh) != jti:
            raise errors.bad("Wrong refresh token")
        grant = self.grants[jti]
        if now >= grant.refresh_expires:
            raise AgiloftError(401, errors.REFRESH_EXPIRED)
        del self.grants[jti]
        del self.by_refresh[refresh]
        return self.issue(grant.login, grant.kb, now)
