"""The auto-create custom link's tokens and the session checks that bound it.

The link is a fixed URL template on the appliance: its ``token`` (:func:`link_token`) can
name the integration, never a session. So the link only opens a page, for a session the
appliance reports live and young (:func:`check_live`), and the page's button carries a
:func:`confirm_token` bound to the integration, the session, the representative and ten
minutes. Reference: docs/actions.md, "The auto-create link".
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC

from pydantic import SecretStr

from rsbridge.actions.problems import ActionError
from rsbridge.appliance.report_model import SupportSession

CONFIRM_SECONDS = 600
"""How long the auto-create link's confirmation (the page's button) stays valid."""

_LINK_CONTEXT = b"rsbridge auto-create link\0"
_CONFIRM_CONTEXT = b"rsbridge auto-create confirm\0"


def _sign(secret: SecretStr, message: bytes) -> str:
    return hmac.new(secret.get_secret_value().encode(), message, hashlib.sha256).hexdigest()


def link_token(secret: SecretStr | None, integration: str) -> str | None:
    """The link's token for ``integration``: an HMAC of its name; None without a secret."""
    return _sign(secret, _LINK_CONTEXT + integration.encode()) if secret is not None else None


def confirm_token(
    secret: SecretStr | None, integration: str, lsid: str, username: str | None, expires: int
) -> str | None:
    """The confirmation of one auto-create: an HMAC of everything it is bound to."""
    if secret is None:
        return None
    message = "\0".join((integration, lsid, username or "", str(expires)))
    return _sign(secret, _CONFIRM_CONTEXT + message.encode())


def same(sent: str, expected: str) -> bool:
    """Constant-time comparison of two tokens (as digests: lengths say nothing)."""
    return hmac.compare_digest(
        hashlib.sha256(sent.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def check_live(session: SupportSession, now: float, max_hours: float) -> None:
    """Refuse a session that has ended or started more than ``max_hours`` before ``now``."""
    lsid = session.lsid
    if session.ended:
        raise ActionError(
            f"session {lsid} has ended: the auto-create link works during a session only",
            status=409,
            code="session_ended",
        )
    started = session.start_time
    if started is None or now - started.timestamp() > max_hours * 3600:
        when = (
            f"started {started.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
            if started
            else "its start time is unknown"
        )
        raise ActionError(
            f"session {lsid} is too old for the auto-create link ({when}; the limit is "
            f"{max_hours:g} hours after the start, actions.auto_create_max_session_hours)",
            status=409,
            code="session_too_old",
        )
