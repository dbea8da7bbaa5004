"""The connector contract: what every ticketing connector implements.

A connector is a class with a registry ``name``, its ``settings`` declared as
:class:`Setting` metadata (validation, docs and, later, the admin form come from these),
and async methods for what the engine asks of a ticketing system: check the connection,
find or create a ticket, write a session report, a survey, a note. Every write carries
an idempotency key (``delivery.key``) and must be an upsert by it: the engine may call a
write again after a crash between the write and its ledger entry, and the ticket must
still get the effect once.

Errors are classified: raise :class:`~rsbridge.errors.ConnectorRetryableError` for what
may pass (429, 5xx, timeouts), :class:`~rsbridge.errors.ConnectorPermanentError` (or
:class:`~rsbridge.errors.TicketNotFoundError`) for what will not, and
:class:`~rsbridge.errors.ConnectorAuthError` for refused credentials. Messages never
contain a secret setting's value.

Built-in connectors are registered the way third-party ones are, under the entry-point
group ``rsbridge.connectors`` (see :mod:`rsbridge.connectors.registry`). Their tests
inherit the shared contract suite in ``tests/connectors/contract.py``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, create_model

from rsbridge.appliance.report_model import ExitSurvey, SupportSession
from rsbridge.deadline import DEFAULT_CALL_DEADLINE_SECONDS, DeadlineClient
from rsbridge.errors import ConfigurationError, ConnectorPermanentError

SettingType = Literal["str", "int", "float", "bool", "url", "path", "list"]

_PYTHON_TYPES: dict[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "url": str,
    "path": str,  # a relative path is made relative to the configuration file's directory
    "list": list[str],
}


@dataclass(frozen=True, slots=True)
class Setting:
    """One connector setting: its name, type, default, and whether it is a secret.

    A secret is held as :class:`pydantic.SecretStr` after validation; read it with
    ``.get_secret_value()`` only where it is sent, never into a message.
    """

    name: str
    type: SettingType = "str"
    help: str = ""
    required: bool = False
    default: Any = None
    secret: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Ticket:
    """A ticket (or case, incident, record) in the connected system."""

    id: str
    """The system's own id (sys_id, case id, ...)."""
    number: str | None = None
    """The human number (INC0010001, 00001026, ...), when the system has one."""
    url: str | None = None
    kind: str | None = None
    """The record type, where the system has several (ServiceNow: the table)."""


@dataclass(frozen=True, slots=True)
class ConfigurationItem:
    """A configuration item (a computer) a technician can Jump to."""

    id: str
    name: str
    """The name a Jump Client search string matches (usually the host name)."""
    host: str | None = None
    """A host name or address to push to or connect to, when the system knows one."""


@dataclass(frozen=True, slots=True)
class TicketContext:
    """What technician and customer actions need to know of a ticket."""

    ticket: Ticket
    state: str | None = None
    closed: bool = False
    """The ticket is in a state the integration considers closed: no new session keys."""
    assigned_rep: str | None = None
    """The appliance username of the user the ticket is assigned to, when mapped."""
    assigned_team: str | None = None
    """The name of the group the ticket is assigned to."""
    caller_name: str | None = None
    caller_email: str | None = None
    configuration_item: ConfigurationItem | None = None
    session_attributes: Mapping[str, str] = field(default_factory=dict)
    """Custom session attributes that associate a session with this ticket (code name to
    value; ``external_key`` included), stamped on keys and start URLs made for it."""


@dataclass(frozen=True, slots=True)
class CustomLink:
    """A rep-console custom link an administrator adds on the appliance."""

    name: str
    url: str
    """May contain the appliance's macros, e.g. ``%SESSION.CUSTOM.SNOW_TASK_ID%``."""


@dataclass(frozen=True, slots=True)
class RenderedPart:
    """One rendered template: plain text and HTML."""

    text: str
    html: str


@dataclass(frozen=True, slots=True)
class RenderedReport:
    """A whole session report and each of its parts, rendered."""

    full: RenderedPart
    parts: Mapping[str, RenderedPart] = field(default_factory=dict)
    """By part name: ``chat``, ``notes``, ``system_info``, ``people``, ``recordings``,
    ``custom_attributes``, ``customer_survey``, ``rep_survey``."""


@dataclass(frozen=True, slots=True)
class SessionDelivery:
    """A session report to write into a ticket. ``key`` is its idempotency key."""

    key: str
    appliance_id: str
    integration: str
    session: SupportSession
    report: RenderedReport


@dataclass(frozen=True, slots=True)
class SurveyDelivery:
    """One exit survey to write into a ticket. ``key`` is its idempotency key."""

    key: str
    appliance_id: str
    integration: str
    kind: Literal["customer", "rep"]
    survey: ExitSurvey
    session: SupportSession
    rendered: RenderedPart


@dataclass(frozen=True, slots=True)
class NoteDelivery:
    """A free-text note (work note, comment) to add to a ticket."""

    key: str
    text: str
    html: str | None = None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write did: the record it created or updated in the ticketing system."""

    ref: str
    detail: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict of a connection test; failures are raised, not returned."""

    summary: str
    """One line saying what was reached, e.g. ``"instance dev1234, user rsbridge"``."""


class ConnectorSettings(BaseModel):
    """Base of the settings model generated from a connector's :class:`Setting` list."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Connector(abc.ABC):
    """One configured connection to a ticketing system.

    Subclasses set ``name``, ``title`` and ``settings`` and implement the abstract
    methods. The engine constructs one instance per integration with validated
    settings and, optionally, a shared ``httpx.AsyncClient``; :meth:`aclose` releases
    what the instance owns. The client made when none is given ends every call within
    ``call_deadline_seconds`` (see :mod:`rsbridge.deadline`); one passed in keeps its own
    timeouts.
    """

    name: ClassVar[str]
    """Registry name, used as ``connector = "..."`` in the configuration."""
    title: ClassVar[str]
    """Human name, for messages and docs."""
    settings: ClassVar[Sequence[Setting]] = ()
    default_ticket_from: ClassVar[tuple[str, ...]] = ("external_key",)
    """Association sources used when the integration does not set ``ticket_from``."""
    call_deadline_seconds: ClassVar[float] = DEFAULT_CALL_DEADLINE_SECONDS
    """Longest time one call of the default ``http`` client may take, answer included, so
    a slow or trickling peer cannot hold a worker (each step is also bounded by 30 s)."""

    def __init__(self, config: ConnectorSettings, *, http: httpx.AsyncClient | None = None):
        self.config = config
        self._own_http = http is None
        self.http = http or DeadlineClient(deadline=self.call_deadline_seconds, timeout=30.0)

    @classmethod
    def settings_model(cls) -> type[ConnectorSettings]:
        """The pydantic model of this connector's settings, built from ``settings``."""
        fields: dict[str, Any] = {}
        for setting in cls.settings:
            python_type: Any = SecretStr if setting.secret else _PYTHON_TYPES[setting.type]
            if setting.choices:
                python_type = Literal[setting.choices]
            if setting.required:
                fields[setting.name] = (python_type, Field(description=setting.help))
            else:
                fields[setting.name] = (
                    python_type | None,
                    Field(default=setting.default, description=setting.help),
                )
        return create_model(f"{cls.__name__}Settings", __base__=ConnectorSettings, **fields)

    @classmethod
    def validate_settings(
        cls, raw: Mapping[str, object], *, where: str = "connector settings"
    ) -> ConnectorSettings:
        """Validate ``raw`` against ``settings``; a ConfigurationError names each bad field.

        Secret values are never echoed back in the message.
        """
        try:
            return cls.settings_model().model_validate(dict(raw))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(settings)'}: {err['msg']}"
                for err in exc.errors(include_input=False)
            )
            raise ConfigurationError(f"{where} ({cls.name}): {problems}") from None

    async def aclose(self) -> None:
        """Close what this instance owns (its HTTP client if it made one)."""
        if self._own_http:
            await self.http.aclose()

    @abc.abstractmethod
    async def check(self) -> CheckResult:
        """The connection test: reach the system, authenticate, check permissions."""

    @abc.abstractmethod
    async def find_ticket(self, reference: str) -> Ticket:
        """The ticket whose id or number is ``reference``; TicketNotFoundError if none."""

    @abc.abstractmethod
    async def create_ticket(
        self, session: SupportSession, fields: Mapping[str, str], *, key: str
    ) -> Ticket:
        """Create a ticket for a session that has none; ``key`` makes it once-only."""

    @abc.abstractmethod
    async def write_session_report(
        self, ticket: Ticket | None, delivery: SessionDelivery
    ) -> WriteResult:
        """Write (upsert by ``delivery.key``) a session report into ``ticket``.

        ``ticket`` is None for a session imported unassociated (``on_unmatched =
        "import"``): the report is stored without a ticket, where the system allows it.
        """

    @abc.abstractmethod
    async def write_survey(self, ticket: Ticket | None, delivery: SurveyDelivery) -> WriteResult:
        """Write (upsert by ``delivery.key``) an exit survey into ``ticket`` (None: the
        session was imported unassociated)."""

    @abc.abstractmethod
    async def write_note(self, ticket: Ticket, note: NoteDelivery) -> WriteResult:
        """Add (upsert by ``note.key``) a note to ``ticket``."""

    # --- optional: live sessions and actions ----------------------------------------
    # Connectors that support technician and customer actions override these; the
    # defaults say clearly that this connector does not.

    def live_session_attributes(self, ticket: Ticket) -> dict[str, str]:
        """Custom attributes to write back to a live session that now has ``ticket``.

        The default sets the external key to the ticket's number (or id), which the
        default association (``external_key``) reads at the end of the session.
        """
        return {"external_key": ticket.number or ticket.id}

    async def ticket_context(self, reference: str) -> TicketContext:
        """The ticket ``reference`` names, with what actions need to know of it."""
        raise ConnectorPermanentError(f"the {self.title} connector does not support actions")

    async def rep_username(self, user: str) -> str | None:
        """The appliance username mapped to ``user`` of the ticketing system, or None."""
        raise ConnectorPermanentError(f"the {self.title} connector does not map users")

    async def find_configuration_item(self, reference: str) -> ConfigurationItem:
        """The configuration item ``reference`` names (id or name)."""
        raise ConnectorPermanentError(f"the {self.title} connector has no configuration items")

    def custom_links(self, actions_url: str | None) -> list[CustomLink]:
        """Rep-console custom links for this system (``actions_url``: rsbridge's own)."""
        return []
