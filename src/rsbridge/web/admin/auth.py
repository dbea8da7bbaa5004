"""Sign-ins: password checks (Argon2id), the sign-in book, lock-out after failures.

A sign-in is a random token in an ``HttpOnly``, ``SameSite=Strict`` cookie; only its
SHA-256 digest is kept, with the user, the expiry and the sign-in's CSRF token. Failed
attempts are counted per user name: after ``[admin] max_failed_sign_ins`` in a row the
name is locked for ``lockout_minutes``, whatever password comes next.

The book here lives in this process's memory.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from rsbridge.config import AdminConfig

SESSION_COOKIE = "rsbridge_admin"
SIGN_IN_CSRF_COOKIE = "rsbridge_admin_csrf"
"""The sign-in form's CSRF token (double-submit: cookie and form field must agree)."""

_HASHER = PasswordHasher()
# Checked against when the user name is unknown, so that a wrong name costs as long as a
# wrong password (no user enumeration by timing).
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` in PHC form, for ``[[admin.users]] password_hash``."""
    return _HASHER.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (None: an unknown user, never)."""
    try:
        _HASHER.verify(password_hash or _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return password_hash is not None


def digest(token: str) -> str:
    """What is kept of a sign-in token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SignIn:
    """One signed-in browser."""

    user: str
    csrf: str
    started_at: float
    expires_at: float


class SignIns:
    """The sign-ins and failed attempts of this console."""

    def __init__(self, admin: AdminConfig) -> None:
        self._admin = admin
        self._open: dict[str, SignIn] = {}
        self._failures: dict[str, list[float]] = {}

    async def start(self, user: str, *, now: float | None = None) -> tuple[str, SignIn]:
        """A new sign-in for ``user``: the cookie's token and the record kept of it."""
        now = time.time() if now is None else now
        token = secrets.token_urlsafe(32)
        sign_in = SignIn(
            user, secrets.token_urlsafe(32), now, now + self._admin.session_hours * 3600
        )
        self._open[digest(token)] = sign_in
        self._failures.pop(user, None)
        return token, sign_in

    async def find(self, token: str | None, *, now: float | None = None) -> SignIn | None:
        """The live sign-in of cookie ``token``, if any."""
        if not token:
            return None
        now = time.time() if now is None else now
        sign_in = self._open.get(digest(token))
        if sign_in is None or sign_in.expires_at <= now:
            return None
        return sign_in

    async def end(self, token: str | None) -> None:
        """Sign out the browser holding ``token``."""
        if token:
            self._open.pop(digest(token), None)

    async def failed(self, user: str, *, now: float | None = None) -> None:
        """Count a failed sign-in of ``user`` (a known name or not)."""
        now = time.time() if now is None else now
        self._failures.setdefault(user, []).append(now)

    async def locked_until(self, user: str, *, now: float | None = None) -> float | None:
        """When ``user``'s lock-out ends, if the name is locked now."""
        now = time.time() if now is None else now
        window = self._admin.lockout_minutes * 60
        recent = [t for t in self._failures.get(user, []) if t > now - window]
        self._failures[user] = recent
        if len(recent) < self._admin.max_failed_sign_ins:
            return None
        return recent[self._admin.max_failed_sign_ins - 1] + window
