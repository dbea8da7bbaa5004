"""Every exception rsbridge raises on purpose.

Each error says whether trying again later can succeed (``retryable``): the engine
retries retryable errors with backoff and parks the others. Messages say what to
check, and never contain a secret (client secrets and bearer tokens are not passed in).

::

    RsbridgeError
    ├── ConfigurationError                  invalid settings (permanent)
    ├── ApplianceError                      anything the appliance client reports
    │   ├── ApplianceConnectionError        refused, reset, timed out, TLS (retryable)
    │   │   └── ApplianceHostError          host name does not resolve (permanent)
    │   ├── ApplianceAuthError              bad OAuth client id or secret (permanent)
    │   ├── ApplianceRateLimitedError       429 / over the configured budget (retryable)
    │   ├── ApplianceServerError            5xx from the appliance (retryable)
    │   ├── ApplianceResponseError          malformed or unexpected response (retryable)
    │   │   └── ApplianceReportError        a report could not be read; ``item``: which session
    │   └── ApplianceCommandError           ``<error>`` answered with HTTP 200 (permanent)
    │       ├── AppliancePermissionError    API account lacks a permission
    │       ├── RepresentativeNotFoundError
    │       ├── RepresentativeUnavailableError
    │       ├── InvalidCustomFieldError
    │       └── SessionNotFoundError
    ├── ReportError                         a session report could not be read (permanent)
    │   ├── ReportSyntaxError               malformed XML, with line and column
    │   ├── ReportSecurityError             DTD / entity declarations refused
    │   └── ReportTooLargeError             over the configured size limits
    ├── ClientScriptError                   scripting / session-generation limits (permanent)
    ├── ConnectorError                      a ticketing system call failed
    │   ├── ConnectorRetryableError         429 / 5xx / timeout / unreachable (retryable)
    │   ├── ConnectorPermanentError         refused for good: 4xx, validation (permanent)
    │   │   ├── TicketNotFoundError         no ticket with that id or number
    │   │   └── CheckFailedError            a connection test's findings, one per line
    │   └── ConnectorAuthError              the system refused our credentials (permanent)
    ├── TemplateError                       a report template fails, with file and line
    ├── SessionNotReadyError                the report has no end time yet (retryable)
    └── StoreUnavailableError               the store's database is unreachable (retryable)
"""

from __future__ import annotations


class RsbridgeError(Exception):
    """Base of every rsbridge error."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable


class ConfigurationError(RsbridgeError, ValueError):
    """The configuration is invalid; fixing it is the only remedy."""


class ApplianceError(RsbridgeError):
    """A call to the appliance failed."""


class ApplianceConnectionError(ApplianceError):
    """The appliance could not be reached (refused, reset, timed out, TLS)."""

    retryable = True


class ApplianceHostError(ApplianceConnectionError):
    """The appliance host name does not resolve: a configuration mistake."""

    retryable = False


class ApplianceAuthError(ApplianceError):
    """The appliance refused the OAuth client id or secret."""


class ApplianceRateLimitedError(ApplianceError):
    """The appliance (or our own budget for it) says to slow down."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ApplianceServerError(ApplianceError):
    """The appliance answered with a 5xx status."""

    retryable = True


class ApplianceResponseError(ApplianceError):
    """The response could not be understood (malformed XML, unexpected element)."""

    retryable = True


class ApplianceReportError(ApplianceResponseError):
    """A report the appliance answered could not be read (a :class:`ReportError` inside).

    ``item`` is the key (lsid) of the session that broke it, when it is known; the other
    sessions of the same answer are then worth fetching again without it.
    """

    def __init__(
        self, message: str, *, retryable: bool | None = None, item: str | None = None
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.item = item


class ApplianceCommandError(ApplianceError):
    """The appliance answered ``<error>text</error>`` (usually with HTTP 200)."""

    def __init__(self, message: str, *, appliance_text: str = "", action: str = "") -> None:
        super().__init__(message)
        self.appliance_text = appliance_text
        self.action = action


class AppliancePermissionError(ApplianceCommandError):
    """The API account lacks the permission a call needs."""


class RepresentativeNotFoundError(ApplianceCommandError):
    """No representative matches the given id or username."""


class RepresentativeUnavailableError(ApplianceCommandError):
    """The representative exists but cannot take sessions now."""


class InvalidCustomFieldError(ApplianceCommandError):
    """A ``session.custom.*`` code name is not configured on the appliance."""


class SessionNotFoundError(ApplianceCommandError):
    """The session (lsid) does not exist or is no longer active."""


class ReportError(RsbridgeError):
    """A session report could not be read."""

    item: str | None = None
    """The key (lsid) of the item (session) being read when it failed, when known."""


class ReportSyntaxError(ReportError):
    """The report is not well-formed XML; ``line`` and ``column`` say where."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


class ReportSecurityError(ReportError):
    """The report declares a DTD or entities, which the appliance never sends."""


class ReportTooLargeError(ReportError):
    """The report (or one session in it) is larger than the configured limit."""


class ClientScriptError(RsbridgeError, ValueError):
    """A console URL, BRCS file or session-start URL would break a documented limit."""


class ConnectorError(RsbridgeError):
    """A ticketing connector could not do what was asked.

    ``retry_after`` (seconds) is the peer's own hint, e.g. from ``Retry-After``.
    """

    def __init__(
        self, message: str, *, retryable: bool | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.retry_after = retry_after


class ConnectorRetryableError(ConnectorError):
    """A passing failure (429, 5xx, timeout, unreachable): trying later can succeed."""

    retryable = True


class ConnectorQuotaError(ConnectorRetryableError):
    """The peer's request allowance is spent (Salesforce's daily API limit).

    It comes back by itself: the job waits (at least ``retry_after``) without using up its
    retries, for up to ``engine.quota_wait_hours``.
    """


class ConnectorPermanentError(ConnectorError):
    """The ticketing system refused the request for good (validation, 4xx)."""


class TicketNotFoundError(ConnectorPermanentError):
    """No ticket matches the id or number the session points at."""


class CheckFailedError(ConnectorPermanentError):
    """A connection test found problems: ``findings`` lists them, each with its fix.

    ``message`` is ``headline`` followed by the findings joined with ``"; "`` (what a
    reader of one line sees); ``rsbridge check`` prints one finding per line.
    """

    def __init__(self, headline: str, findings: list[str] | tuple[str, ...]) -> None:
        super().__init__(f"{headline}: {'; '.join(findings)}" if findings else headline)
        self.headline = headline
        self.findings = tuple(findings)


class ConnectorAuthError(ConnectorError):
    """The ticketing system refused the connector's credentials."""


class TemplateError(RsbridgeError):
    """A report template failed to load or render; the message names file and line."""

    def __init__(self, message: str, *, template: str | None = None, line: int | None = None):
        super().__init__(message)
        self.template = template
        self.line = line


class SessionNotReadyError(RsbridgeError):
    """The appliance has no complete report for the session yet (no end time)."""

    retryable = True


class StoreUnavailableError(RsbridgeError):
    """The store's database could not be reached or dropped the connection (a restart, a
    failover): a job that met it is retried, and the workers keep claiming."""

    retryable = True


def exception_chain(exc: BaseException, limit: int = 10) -> list[BaseException]:
    """``exc`` and its causes (``__cause__``, else ``__context__``), outermost first.

    httpx wraps the socket and ssl errors that tell a wrong host from a bad certificate;
    this finds them. Bounded, because a chain can loop.
    """
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < limit:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
