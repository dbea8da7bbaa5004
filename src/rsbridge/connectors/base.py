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
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, create_model

from rsbridge.appliance.report_model import ExitSurvey, SupportSession, pickled_by_field_values
from rsbridge.deadline import DEFAULT_CALL_DEADLINE_SECONDS
from rsbridge.errors import ConfigurationError, ConnectorPermanentError, TicketNotFoundError
from rsbridge.metrics import instrument_http
from rsbridge.peer_http import http_client
from rsbridge.tls import is_loopback_host

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
    plain_http_ok: bool = False
    """For a ``url`` setting: ``http://`` carries nothing in clear text here (an HTTP
    proxy, which tunnels TLS with CONNECT), so it needs no ``allow_plain_http``."""


ALLOW_PLAIN_HTTP = "allow_plain_http"
"""The setting every connector with a ``url`` setting gets: ``true`` accepts plain
``http://`` URLs to hosts other than loopback."""


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
    queue: str | None = None
    """A queue the ticket itself names (``rep:<username>``, ``team:<team name>``, or a bare
    name: the appliance's team of that name, else that representative), for the ``queue``
    assignment when the request names none (Agiloft's mode 5: a field of the case holds a
    representative or team)."""
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
    session_json: bytes | None = None
    """The imported session as compact JSON, when the connector asked for it
    (:meth:`Connector.writes_session_json`): written with the rendering, in the render
    process, by :func:`~rsbridge.appliance.report_json.compact_json`. None otherwise, and
    when it could not be written so (the writer then converts the session itself)."""


# Renderings come back from the render processes as pickles (rsbridge.engine.render_pool).
pickled_by_field_values(RenderedPart)
pickled_by_field_values(RenderedReport)


@dataclass(frozen=True, slots=True)
class Association:
    """How a delivery's ticket was chosen, and which session references may be used.

    Every custom attribute and the external key can be set by a customer through a
    public start-session URL; the engine decides, per the integration's
    ``association.trust``, which of them count (docs/security.md). The default is the
    safe one: nothing trusted, no references.
    """

    source: str = ""
    """Where the ticket came from: a reference source (``custom:snow_task_id``,
    ``external_key``, ``rep_survey:task_number``), ``created`` or empty (no ticket)."""
    trusted: bool = False
    """The ticket was named by a reference rsbridge signed or a representative set, or
    rsbridge created it. Only then may a delivery apply what a customer must not be able
    to trigger on someone else's ticket: state changes, customer-visible comments,
    caller lookups."""
    references: Mapping[str, str] = field(default_factory=dict)
    """Accepted references by source (``external_key``, ``custom:<code_name>``): the
    only session values a connector may follow to other records (a call, a CI)."""

    def custom(self, code_name: str) -> str | None:
        """The accepted value of custom attribute ``code_name``, or None."""
        return self.references.get(f"custom:{code_name}")


UNTRUSTED = Association()
"""No ticket reference trusted, no session reference accepted."""


@dataclass(frozen=True, slots=True)
class SessionDelivery:
    """A session report to write into a ticket. ``key`` is its idempotency key."""

    key: str
    appliance_id: str
    integration: str
    session: SupportSession
    report: RenderedReport
    association: Association = UNTRUSTED


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
    association: Association = UNTRUSTED


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
    details: tuple[str, ...] = ()
    """What was verified or left unverified and why, one line each (``rsbridge check``
    prints them under the summary)."""


VIRTUAL_TICKET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#@+-]{0,127}")
"""What a connector without tickets of its own (jsonl, webhook) accepts as a ticket id:
letters, digits and a few separators, at most 128 characters: no spaces, line breaks or
markup, since the value comes from the session and lands in files and HTTP bodies."""


def virtual_ticket(reference: str, connector: str) -> Ticket:
    """The ticket a connector with virtual tickets makes of ``reference``.

    TicketNotFoundError (the association tries its next source) for an empty or
    unsafe reference.
    """
    ref = reference.strip()
    if not ref:
        raise TicketNotFoundError(f"{connector}: empty ticket reference")
    if not VIRTUAL_TICKET_ID.fullmatch(ref):
        raise TicketNotFoundError(
            f"{connector}: {ref[:40]!r} is not a ticket id (letters, digits and . _ : / # @ + -,"
            " at most 128 characters)"
        )
    return Ticket(id=ref)


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
    check_create_fields: Mapping[str, str] = MappingProxyType({})
    """The association's ``create_fields`` when it auto-creates tickets; set by the
    connection test so that a connector's :meth:`check` can verify the target fields."""

    def __init__(self, config: ConnectorSettings, *, http: httpx.AsyncClient | None = None):
        self.config = config
        self._own_http = http is None
        self.http = http or http_client(deadline=self.call_deadline_seconds, timeout=30.0)
        instrument_http(self.http, peer=self.name)

    @classmethod
    def settings_model(cls) -> type[ConnectorSettings]:
        """The pydantic model of this connector's settings, built from ``settings``.

        A connector with a ``url`` setting also gets ``allow_plain_http`` (a bool, false
        by default), unless it declares a setting of that name itself.
        """
        fields: dict[str, Any] = {}
        declared = {s.name for s in cls.settings}
        if ALLOW_PLAIN_HTTP not in declared and any(s.type == "url" for s in cls.settings):
            fields[ALLOW_PLAIN_HTTP] = (
                bool,
                Field(default=False, description="Accept plain http:// URLs to other hosts."),
            )
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

        A ``url`` setting must be ``https://`` unless its host is loopback, the setting
        is ``plain_http_ok`` or ``allow_plain_http`` is true: over plain HTTP the
        credentials and every session report would cross the network in clear text.
        Secret values are never echoed back in the message.
        """
        try:
            config = cls.settings_model().model_validate(dict(raw))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(settings)'}: {err['msg']}"
                for err in exc.errors(include_input=False)
            )
            raise ConfigurationError(f"{where} ({cls.name}): {problems}") from None
        plain = cls.plain_http_urls(config)
        if plain and not getattr(config, ALLOW_PLAIN_HTTP, False):
            problems = "; ".join(f"{name}: plain http:// to {host}" for name, host in plain)
            raise ConfigurationError(
                f"{where} ({cls.name}): {problems} would send credentials and session data "
                f"in clear text; use https://, or set {ALLOW_PLAIN_HTTP} = true for a "
                "network you trust (http:// to a loopback address is always accepted)"
            )
        return config

    @classmethod
    def plain_http_urls(cls, config: ConnectorSettings) -> list[tuple[str, str]]:
        """``(setting, host)`` for each ``url`` setting that is ``http://`` to a host
        other than loopback (settings marked ``plain_http_ok`` left out).

        The host is shown without user info, path or query, which may hold credentials.
        """
        found: list[tuple[str, str]] = []
        for setting in cls.settings:
            value = getattr(config, setting.name, None)
            if setting.type != "url" or setting.plain_http_ok or not isinstance(value, str):
                continue
            try:
                parts = urllib.parse.urlsplit(value.strip())
                host = parts.hostname or ""
                port = parts.port
            except ValueError:
                continue  # not a URL at all: the connector's own checks say so
            if host and parts.scheme.lower() == "http" and not is_loopback_host(host):
                shown = f"[{host}]" if ":" in host else host
                found.append((setting.name, shown if port is None else f"{shown}:{port}"))
        return found

    async def aclose(self) -> None:
        """Close what this instance owns (its HTTP client if it made one)."""
        if self._own_http:
            await self.http.aclose()

    @abc.abstractmethod
    async def check(self) -> CheckResult:
        """The connection test: reach the system, authenticate, check permissions."""

    @abc.abstractmethod
    async def find_ticket(self, reference: str, *, source: str = "external_key") -> Ticket:
        """The ticket whose id or number is ``reference``; TicketNotFoundError if none.

        ``source`` says where the reference came from (``external_key``,
        ``custom:<code_name>``, ``rep_survey:<question>``): a source that names a kind of
        record (ServiceNow's ``snow_call_id`` is a call) must find a record of that
        kind, else TicketNotFoundError says so. ``reference`` is customer data: it is a
        value to look up, never a query, a path or markup.
        """

    async def find_session_ticket(
        self,
        reference: str,
        *,
        source: str,
        session: SupportSession,
        references: Mapping[str, str],
    ) -> Ticket:
        """:meth:`find_ticket`, when the engine looks for the ticket of ``session``
        (``references``: the session's accepted references, as
        :attr:`Association.references`). A connector may read what the session's import
        will need in the same call; the default is :meth:`find_ticket`."""
        return await self.find_ticket(reference, source=source)

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

    def ticket_link(self, ticket_id: str, detail: Mapping[str, str]) -> str | None:
        """The URL that opens ticket ``ticket_id`` in the ticketing system's own UI (the
        console links to it), or None when the system has no documented form for one.
        ``detail`` is what the ledger keeps of the ticket (``number``, ``kind``...).
        The id is the system's, but goes into the URL quoted all the same."""
        return None

    def report_templates(self) -> frozenset[str] | None:
        """The report templates this connector's session reports read (``chat.txt``,
        ``report.html``...): the engine renders only those. None (the default): all.

        The whole report (``report.txt``, ``report.html``) holds every part of its format,
        which is then rendered too. A part rendered in neither format is absent from
        ``delivery.report.parts``; a format not rendered is an empty string.
        """
        return None

    def writes_session_json(self) -> bool:
        """Whether this connector's session reports carry the session as JSON written by
        :func:`~rsbridge.appliance.report_json.compact_json`: the engine then has it
        written with the rendering (``delivery.report.session_json``), in a render process
        where there is one, instead of in the event loop's thread. False by default."""
        return False

    def created_tickets_trusted(self) -> bool:
        """Whether a ticket this connector creates for a session counts as trusted.

        True by default: rsbridge made the ticket for this session. A connector whose
        creation sets people from what the customer typed (a caller looked up by an
        e-mail address from the portal) says False: the customer chose that person, so
        customer-visible comments and state changes must not reach them.
        """
        return True

    def live_session_attributes(self, ticket: Ticket) -> dict[str, str]:
        """Custom attributes to write back to a live session that now has ``ticket``.

        The default sets the external key to the ticket's number (or id), which the
        default association (``external_key``) reads at the end of the session.
        """
        return {"external_key": ticket.number or ticket.id}

    async def ticket_context(self, reference: str) -> TicketContext:
        """The ticket ``reference`` names, with what actions need to know of it."""
        raise ConnectorPermanentError(f"the {self.title} connector does not support actions")

    async def record_session_key(
        self, ticket: Ticket, short_key: str, key_url: str, expires: datetime
    ) -> bool:
        """Write a key generated for ``ticket`` into its own fields (Agiloft's session key
        and URL fields). False: this connector keeps keys in notes only (the default)."""
        return False

    def sends_mail(self) -> bool:
        """Whether the actions e-mail session keys through this connector's system (which
        keeps them with the ticket) rather than through SMTP. False by default."""
        return False

    async def send_mail(
        self, ticket: Ticket, to: str, subject: str, text: str, *, marker: str | None = None
    ) -> str:
        """E-mail ``text`` to the one address ``to`` through the system, recorded with
        ``ticket``; the system's id of the e-mail. ``to`` may come from a customer: an
        address that is not one plain address is refused (ConnectorPermanentError).
        ``marker`` (letters and digits) is kept with the e-mail for :meth:`find_mail`."""
        raise ConnectorPermanentError(f"the {self.title} connector does not send e-mail")

    async def find_mail(self, ticket: Ticket, marker: str) -> str | None:
        """The id of an e-mail :meth:`send_mail` sent with ``marker`` on ``ticket``, if the
        system holds one: an attempt whose answer was lost may have sent it. None when
        there is none or the connector cannot tell."""
        return None

    async def rep_username(self, user: str) -> str | None:
        """The appliance username mapped to ``user`` of the ticketing system, or None."""
        raise ConnectorPermanentError(f"the {self.title} connector does not map users")

    async def find_configuration_item(self, reference: str) -> ConfigurationItem:
        """The configuration item ``reference`` names (id or name)."""
        raise ConnectorPermanentError(f"the {self.title} connector has no configuration items")

    def custom_links(self, actions_url: str | None) -> list[CustomLink]:
        """Rep-console custom links for this system (``actions_url``: rsbridge's own)."""
        return []
