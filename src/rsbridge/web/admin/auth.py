"""Sign-ins: password checks (Argon2id), the sign-in book, lock-out after failures.

A sign-in is a random token in an ``HttpOnly``, ``SameSite=Strict`` cookie; only its
SHA-256 digest is kept, with the user, the expiry and the sign-in's CSRF token. The token
ends with a tag made from the user's password hash at sign-in: once the hash in the
configuration is replaced, the tag no longer matches and the sign-in is ended. Failed
attempts are counted per user name: after ``[admin] max_failed_sign_ins`` in a row (each
within ``lockout_minutes`` of the one before) the name is locked for ``lockout_minutes``,
whatever password comes next.

Both live in the engine's store (:meth:`~rsbridge.engine.store.base.Store.add_sign_in`
and the methods after it): a sign-in outlives a restart, and on a PostgreSQL store a
sign-in, a sign-out and every failure count on every node.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from rsbridge.config import AdminConfig, AdminUserConfig
from rsbridge.engine.store.base import ConsoleSignIn, Lockout, Store

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


def _tag(user: AdminUserConfig, nonce: str) -> str:
    """Binds a sign-in token to the user's password hash as configured now."""
    key = user.password_hash.get_secret_value().encode()
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class SignIn:
    """One signed-in browser."""

    user: str
    csrf: str
    started_at: float
    expires_at: float


class SignIns:
    """The sign-ins and failed attempts of this console, kept in the engine's store."""

    def __init__(self, admin: AdminConfig, store: Store) -> None:
        self._admin = admin
        self._store = store

    def _user(self, name: str) -> AdminUserConfig | None:
        return next((u for u in self._admin.users if u.name == name), None)

    async def start(self, user: str, *, now: float | None = None) -> tuple[str, SignIn]:
        """A new sign-in for ``user``: the cookie's token and the record kept of it.

        The user's failed attempts are forgotten: a success resets the count.
        """
        now = time.time() if now is None else now
        known = self._user(user)
        nonce = secrets.token_urlsafe(32)
        token = nonce if known is None else f"{nonce}.{_tag(known, nonce)}"
        sign_in = SignIn(
            user, secrets.token_urlsafe(32), now, now + self._admin.session_hours * 3600
        )
        await self._store.add_sign_in(
            ConsoleSignIn(digest(token), user, sign_in.csrf, sign_in.started_at, sign_in.expires_at)
        )
        return token, sign_in

    async def find(self, token: str | None, *, now: float | None = None) -> SignIn | None:
        """The live sign-in of cookie ``token``, if any (an expired one is removed)."""
        if not token:
            return None
        found = await self._store.find_sign_in(digest(token), now=now)
        if found is None:
            return None
        known = self._user(found.user)
        if known is not None:
            nonce, _, tag = token.rpartition(".")
            if not hmac.compare_digest(tag.encode(), _tag(known, nonce).encode()):
                # Signed in with a password hash that has since been replaced.
                await self._store.end_sign_in(digest(token))
                return None
        # A user no longer configured is left to the caller (it ends the sign-in).
        return SignIn(found.user, found.csrf, found.started_at, found.expires_at)

    async def end(self, token: str | None) -> None:
        """Sign out the browser holding ``token``: the cookie no longer works anywhere."""
        if token:
            await self._store.end_sign_in(digest(token))

    async def failed(self, user: str, *, now: float | None = None) -> Lockout | None:
        """Count a failed sign-in of ``user`` (a known name or not); the lock-out, if this
        failure locked the name."""
        return await self._store.sign_in_failed(
            user,
            window=self._admin.lockout_minutes * 60,
            limit=self._admin.max_failed_sign_ins,
            now=now,
        )

    async def lockout(self, user: str, *, now: float | None = None) -> Lockout | None:
        """The lock-out of ``user`` if the name is locked now (this refusal is counted)."""
        return await self._store.check_lockout(user, now=now)

    async def locked_until(self, user: str, *, now: float | None = None) -> float | None:
        """When ``user``'s lock-out ends, if the name is locked now (see :meth:`lockout`)."""
        found = await self.lockout(user, now=now)
        return None if found is None else found.until
