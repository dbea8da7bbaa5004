"""What goes wrong in an action, as an HTTP status, a stable code and a clear message.

The HTTP API (:mod:`rsbridge.web.actions`) and the CLI (:mod:`rsbridge.cli.actions`)
both report through :func:`describe`, so a failure reads the same everywhere. The
messages follow the troubleshooting section of the vendor's ServiceNow guide: each one
names the failure the way the guide does ("Unknown host", "Requested support
representative is not available at this time", ...) and then says what to check.
Messages never contain a secret: the exceptions they are built from do not carry any.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rsbridge.errors import (
    ApplianceAuthError,
    ApplianceCommandError,
    ApplianceConnectionError,
    ApplianceError,
    ApplianceHostError,
    AppliancePermissionError,
    ApplianceRateLimitedError,
    ClientScriptError,
    ConfigurationError,
    ConnectorAuthError,
    ConnectorError,
    InvalidCustomFieldError,
    RepresentativeNotFoundError,
    RepresentativeUnavailableError,
    RsbridgeError,
    SessionNotFoundError,
    TicketNotFoundError,
)

_ATTRIBUTE_INVALID = re.compile(r"session attribute is invalid", re.I)
_PARAMETER = re.compile(r"parameter ['\"](?:session\.custom\.)?([^'\"]+)['\"]", re.I)


class ActionError(RsbridgeError):
    """An action refused for a reason the message explains; ``status`` is the HTTP status."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class MailError(RsbridgeError):
    """The SMTP server could not be reached or refused the message."""

    retryable = True


@dataclass(frozen=True, slots=True)
class Problem:
    """An action's failure as answered: HTTP status, stable code, message."""

    status: int
    code: str
    message: str
    retry_after: float | None = None

    def to_json(self) -> dict[str, object]:
        """The JSON body of an error answer."""
        return {"error": self.code, "message": self.message}


def not_found(integration: str, known: list[str]) -> ActionError:
    """The "appliance configuration not found" answer for an unknown integration name."""
    listed = ", ".join(known) or "none"
    return ActionError(
        f"appliance configuration not found: no enabled integration named {integration!r} "
        f"(enabled: {listed}); check the integration name the caller sends",
        status=404,
        code="appliance_configuration_not_found",
    )


def custom_field_name(text: str) -> str | None:
    """The custom field code name an appliance error text is about, if it names one."""
    found = _PARAMETER.search(text)
    return found.group(1) if found else None


def describe(exc: RsbridgeError) -> Problem:
    """The :class:`Problem` for any error an action raises."""
    if isinstance(exc, ActionError):
        return Problem(exc.status, exc.code, exc.message)
    if isinstance(exc, ApplianceError):
        return _appliance(exc)
    if isinstance(exc, TicketNotFoundError):
        return Problem(404, "ticket_not_found", exc.message)
    if isinstance(exc, ConnectorAuthError):
        return Problem(
            502, "connector_auth", f"the ticketing system refused our credentials: {exc.message}"
        )
    if isinstance(exc, ConnectorError):
        return Problem(
            503 if exc.retryable else 502,
            "connector_error",
            f"the ticketing system: {exc.message}",
            exc.retry_after,
        )
    if isinstance(exc, ClientScriptError):
        return Problem(422, "invalid_request", exc.message)
    if isinstance(exc, MailError):
        return Problem(502, "smtp_error", exc.message)
    if isinstance(exc, ConfigurationError):
        return Problem(500, "configuration_error", exc.message)
    return Problem(500, "error", exc.message)


def _appliance(exc: ApplianceError) -> Problem:
    if isinstance(exc, ApplianceHostError):
        return Problem(
            502,
            "unknown_host",
            f"Unknown host: {exc.message}. If the host name is right, a DNS problem or a "
            "network block (firewall, proxy rule) between rsbridge and the appliance is likely",
        )
    if isinstance(exc, ApplianceAuthError):
        return Problem(
            502,
            "appliance_auth",
            f"The appliance refused the OAuth client: {exc.message}. Check the appliance's "
            "client_id and client_secret; a client secret generated in /login > Management > "
            "API Configuration works only once the API account has been saved there",
        )
    if isinstance(exc, RepresentativeNotFoundError):
        return Problem(
            502,
            "representative_not_found",
            f"Error validating parameter 'queue_id': The representative could not be found "
            f"({exc.message}). The user is not mapped to a BeyondTrust representative: use "
            "the same usernames in both systems (e.g. one LDAP store) or map the user's "
            "BeyondTrust username in the ticketing system",
        )
    if isinstance(exc, RepresentativeUnavailableError):
        return Problem(
            502,
            "representative_unavailable",
            f"Requested support representative is not available at this time "
            f"({exc.message}). The representative must be logged in to the representative "
            'console; or use session_key_source = "rep_console", which opens the console',
        )
    if isinstance(exc, InvalidCustomFieldError) or (
        isinstance(exc, ApplianceCommandError) and _ATTRIBUTE_INVALID.search(exc.appliance_text)
    ):
        return _custom_field(exc)
    if isinstance(exc, SessionNotFoundError):
        return Problem(404, "session_not_found", exc.message)
    if isinstance(exc, AppliancePermissionError):
        return Problem(502, "appliance_permission", exc.message)
    if isinstance(exc, ApplianceRateLimitedError):
        return Problem(503, "appliance_rate_limited", exc.message, exc.retry_after)
    if isinstance(exc, ApplianceConnectionError):
        return Problem(502, "appliance_unreachable", exc.message)
    return Problem(502, "appliance_error", exc.message)


def _custom_field(exc: ApplianceError) -> Problem:
    text = exc.appliance_text if isinstance(exc, ApplianceCommandError) else exc.message
    name = custom_field_name(text) or "(unnamed)"
    if _ATTRIBUTE_INVALID.search(text):
        code, headline = (
            "session_attribute_invalid",
            f'Error validating parameter "{name}": The session attribute is invalid',
        )
    else:
        code, headline = "invalid_custom_field", "Invalid custom field code name"
    return Problem(
        502,
        code,
        f"{headline} ({exc.message}). The appliance has no custom field with code name "
        f"{name!r}: create it in /login > Configuration > Custom Fields (code name {name}), "
        "then try again",
    )
