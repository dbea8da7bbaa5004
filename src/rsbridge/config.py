"""The configuration file: one TOML document validated with pydantic.

Reference, setting by setting: docs/configuration.md (a test checks that every field
here is documented there). Shape::

    [engine]            # where the store lives, where intake listens, worker tuning
    [[appliances]]      # one per B Series Appliance (id, host, OAuth account, token...)
    [[integrations]]    # one per connector configuration (name, connector, events...)
    [integrations.settings]   # the connector's own settings

A secret (``client_secret``, ``outbound_event_token`` and any connector setting declared
secret) is written as a string, as ``{ env = "NAME" }`` or as ``{ file = "/path" }``.
Secrets are held as :class:`pydantic.SecretStr`, so printing a configuration or an error
never shows them.

Every section's model is importable from here. The sections of technician and customer
actions (``[integrations.actions]``, ``[actions]``, ``[signing]``, ``[smtp]``) are written
in :mod:`rsbridge.config_actions`; what all sections are built from (the base model,
secrets, plain names) in :mod:`rsbridge.config_base`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rsbridge.appliance.events import CUSTOMER_SURVEY, END, IMPORTABLE_EVENTS
from rsbridge.appliance.host import check_host
from rsbridge.appliance.report_model import EventType
from rsbridge.config_actions import (
    ACTION_ROUTES,
    MIN_SIGNING_SECRET_CHARS,
    MIN_TOKEN_CHARS,
    ActionRoute,
    ActionsClientConfig,
    ActionsConfig,
    IntegrationActionsConfig,
    SigningConfig,
    SmtpConfig,
    prepare_action_secrets,
)
from rsbridge.config_admin import AdminConfig, AdminRole, AdminUserConfig
from rsbridge.config_base import ConfigModel, anchor_file, plain_name, resolve_secret
from rsbridge.connectors.base import ConnectorSettings
from rsbridge.connectors.registry import connector_class
from rsbridge.engine.store.urls import is_postgresql_url
from rsbridge.errors import ConfigurationError
from rsbridge.eventloop import EventLoopChoice, uvloop_installed
from rsbridge.tls import is_loopback_host

__all__ = [
    "ACTION_ROUTES",
    "MAX_UNSIGNED_GRACE",
    "MIN_LEDGER_RETENTION_DAYS",
    "MIN_SIGNING_SECRET_CHARS",
    "MIN_TOKEN_CHARS",
    "ActionRoute",
    "ActionsClientConfig",
    "ActionsConfig",
    "AdminConfig",
    "AdminRole",
    "AdminUserConfig",
    "ApplianceConfig",
    "AssociationConfig",
    "Config",
    "EngineConfig",
    "IPNetwork",
    "IntegrationActionsConfig",
    "IntegrationConfig",
    "Networks",
    "SigningConfig",
    "SmtpConfig",
    "load_config",
    "parse_config",
    "resolve_secret",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_ID = re.compile(r"^[A-Za-z0-9._]+$")


def _networks(value: object) -> object:
    if isinstance(value, str):
        # The vendor's form: one comma-separated string ("ALL", "10.0.0.1, 10.0.0.2").
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        return value
    out: list[IPNetwork] = []
    for item in value:
        text = str(item)
        if text.upper() == "ALL":
            out += [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
            continue
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or CIDR network") from None
    return out


Networks = Annotated[list[IPNetwork], BeforeValidator(_networks)]


MIN_LEDGER_RETENTION_DAYS = 30.0
"""Shortest ledger retention accepted: it must outlive the appliance's resend window."""


def _store_location(value: object) -> object:
    """A store URL stays text (checked, never echoed with its password); the rest a path."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if "://" not in text and text != "memory:":
        return Path(text)
    from rsbridge.engine.store import open_store  # the store's own check of its URLs

    try:
        open_store(text)
    except ConfigurationError as exc:
        raise ValueError(exc.message) from None
    return text


StoreLocation = Annotated[Path | str, BeforeValidator(_store_location)]
"""``[engine] store``: a SQLite file path, or a URL (``postgresql://...``, ``memory:``)."""


MAX_RENDER_PROCESSES = 64
"""The most ``[engine] render_processes`` may ask for."""


class EngineConfig(ConfigModel):
    """``[engine]``: the process itself."""

    store: StoreLocation = Path("rsbridge.db")
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(8180, ge=0, le=65535)
    trusted_proxies: Networks = Field(default_factory=list)
    max_event_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    header_timeout_seconds: float = Field(10.0, gt=0, le=600)
    body_timeout_seconds: float = Field(30.0, gt=0, le=3600)
    max_connections: int = Field(256, ge=1, le=100_000)
    workers: int = Field(8, ge=1, le=256)
    render_processes: int | Literal["auto"] = 0
    event_loop: EventLoopChoice = "auto"
    lease_seconds: float = Field(120.0, gt=0)
    shutdown_grace_seconds: float = Field(20.0, ge=0)
    report_batch_size: int = Field(100, ge=1, le=100)
    report_wait_seconds: float = Field(900.0, gt=0)
    report_gather_seconds: float = Field(0.1, ge=0, le=5)
    backoff_base_seconds: float = Field(5.0, gt=0)
    backoff_max_seconds: float = Field(900.0, gt=0)
    poll_lookback_hours: float = Field(24.0, gt=0)
    quota_wait_hours: float = Field(48.0, ge=0, le=24 * 14)
    clock_margin_seconds: float | None = Field(None, ge=0, le=300)
    # Retention (rsbridge.engine.retention; docs/configuration.md#retention).
    retention_days: float = Field(30.0, gt=0)
    dead_letter_retention_days: float | None = Field(None, gt=0)
    ledger_retention_days: float | None = Field(None, ge=MIN_LEDGER_RETENTION_DAYS)
    audit_retention_days: float = Field(365.0, gt=0)
    prune_interval_seconds: float = Field(3600.0, ge=0)

    @field_validator("render_processes", mode="before")
    @classmethod
    def _render_processes(cls, value: object) -> object:
        # One clear message rather than pydantic's two (int, then literal).
        if value == "auto" or (type(value) is int and 0 <= value <= MAX_RENDER_PROCESSES):
            return value
        raise ValueError(
            f'render_processes must be a whole number from 0 to {MAX_RENDER_PROCESSES} or "auto"'
        )

    @field_validator("event_loop")
    @classmethod
    def _event_loop(cls, value: EventLoopChoice) -> EventLoopChoice:
        if value == "uvloop" and not uvloop_installed():
            raise ValueError(
                "event_loop = 'uvloop' but uvloop is not installed here (it builds on Linux "
                "and macOS); 'auto' uses it where it is, asyncio's own loop elsewhere"
            )
        return value

    def render_process_count(self) -> int:
        """``render_processes``, with ``"auto"`` read as one per CPU this process may run
        on but the event loop's own (0 on one CPU, at most 64)."""
        if self.render_processes != "auto":
            return self.render_processes
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(0, min((cpus or 1) - 1, MAX_RENDER_PROCESSES))

    @model_validator(mode="after")
    def _backoff(self) -> EngineConfig:
        if self.backoff_max_seconds < self.backoff_base_seconds:
            raise ValueError("backoff_max_seconds must be at least backoff_base_seconds")
        return self

    @model_validator(mode="after")
    def _retention(self) -> EngineConfig:
        dead = self.dead_letter_retention_days
        if dead is not None and dead < self.retention_days:
            raise ValueError("dead_letter_retention_days must be at least retention_days")
        ledger = self.ledger_retention_days
        if ledger is not None and ledger < max(self.retention_days, dead or 0):
            # The ledger makes a re-sent or replayed event harmless: it must outlive them.
            raise ValueError(
                "ledger_retention_days must be at least retention_days and "
                "dead_letter_retention_days"
            )
        return self

    def clock_margin(self) -> float:
        """``clock_margin_seconds``, or its default: 1 s on a store several nodes share
        (their clocks stamp the times compared), none on SQLite (one clock)."""
        if self.clock_margin_seconds is not None:
            return self.clock_margin_seconds
        return 1.0 if is_postgresql_url(str(self.store)) else 0.0


class ApplianceConfig(ConfigModel):
    """``[[appliances]]``: one B Series Appliance and its API account."""

    id: str = "default"
    host: str
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    locale: str = "en-us"
    """Kept for the vendor setting's sake, not sent: no Reporting or Command API call that
    rsbridge makes documents a locale (docs/appliance.md#locale)."""
    allow_invalid_certificates: bool = False
    ca_file: Path | None = None
    use_plain_http: bool = False
    outbound_event_token: SecretStr | None = None
    accepted_addresses: Networks = Field(default_factory=lambda: _networks("ALL"))  # type: ignore[arg-type]
    call_deadline_seconds: float = Field(300.0, gt=0)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("only letters, digits, periods and underscores")
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        check_host(value, ConfigurationError, "host")
        return value

    @field_validator("client_secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        return value

    @field_validator("outbound_event_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not (0 < len(value.get_secret_value()) < 256):
            raise ValueError("must be 1 to 255 characters")
        return value

    @model_validator(mode="after")
    def _plain_http(self) -> ApplianceConfig:
        # OAuth over plain HTTP would send the client secret in clear text; the vendor
        # refuses it too. Loopback (the simulator, a local TLS-terminating proxy) is the
        # one place where it cannot leak.
        if self.use_plain_http and not _is_loopback(self.host):
            raise ValueError(
                "use_plain_http is refused with OAuth (the client secret would travel in "
                "clear text); it is allowed only for a loopback host"
            )
        return self


def _is_loopback(host: str) -> bool:
    # ``host`` passed check_host: ``name``, ``name:port``, ``[v6]`` or ``[v6]:port``.
    name = host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]
    return is_loopback_host(name)


class AssociationConfig(ConfigModel):
    """``[integrations.association]``: how a session finds its ticket."""

    ticket_from: list[str] | None = None
    """Where to look, in order; None: the connector's default (``external_key`` for most)."""
    on_unmatched: Literal["skip", "create", "import"] = "skip"
    create_fields: dict[str, str] = Field(default_factory=dict)
    create_on_join: bool = False
    create_for_portals: list[str] = Field(default_factory=list)
    create_requires_custom_fields: list[str] = Field(default_factory=list)
    create_attended: bool = True
    create_unattended: bool = False
    trust: Literal["signed", "rep", "any"] = "rep"
    """Which references may choose a ticket (docs/security.md): ``signed`` only what
    rsbridge signed, ``rep`` that and what a representative set, ``any`` everything."""
    unsigned_grace_until: datetime | None = None
    """Migration: sessions that started before this moment may use unsigned references."""

    @field_validator("ticket_from")
    @classmethod
    def _sources(cls, value: list[str] | None) -> list[str] | None:
        for source in value or ():
            kind, _, arg = source.partition(":")
            if kind == "external_key" and not arg:
                continue
            if kind in {"custom", "rep_survey"} and arg:
                continue
            raise ValueError(
                f"{source!r}: use external_key, custom:<code_name> or rep_survey:<question>"
            )
        return value

    @field_validator("unsigned_grace_until")
    @classmethod
    def _grace(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-12-01T00:00:00Z")
        if value - datetime.now(UTC) > MAX_UNSIGNED_GRACE:
            raise ValueError(
                f"at most {MAX_UNSIGNED_GRACE.days} days ahead: the grace is for sessions "
                "started before signing was turned on, not a way to turn trust off"
            )
        return value


MAX_UNSIGNED_GRACE = timedelta(days=31)
"""How far ahead ``association.unsigned_grace_until`` may lie."""

_EVENT_TYPES = {e.value for e in EventType}
_POLLING_EVENTS = (END, CUSTOMER_SURVEY)


class IntegrationConfig(ConfigModel):
    """``[[integrations]]``: one connector configuration fed by one appliance."""

    name: str
    connector: str
    appliance: str = "default"
    disabled: bool = False
    outbound_events: list[str] = Field(default_factory=lambda: list(IMPORTABLE_EVENTS))
    polling_events: list[str] = Field(default_factory=list)
    polling_interval_seconds: float = Field(300.0, ge=5)
    survey_lookback_hours: float = Field(24.0, ge=0)
    retry_limit: int = Field(5, ge=0, le=100)
    retry_outbound_events: list[str] = Field(default_factory=lambda: list(IMPORTABLE_EVENTS))
    retry_polling_events: list[str] = Field(default_factory=lambda: list(_POLLING_EVENTS))
    import_events: list[str] | None = None
    templates: Path | None = None
    association: AssociationConfig = Field(default_factory=AssociationConfig)
    actions: IntegrationActionsConfig = Field(default_factory=IntegrationActionsConfig)
    settings: dict[str, Any] = Field(default_factory=dict)

    _name = field_validator("name")(plain_name)

    @field_validator("outbound_events", "retry_outbound_events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(IMPORTABLE_EVENTS))
        if unknown:
            raise ValueError(
                f"unknown event types {unknown}; choose from {list(IMPORTABLE_EVENTS)}"
            )
        return value

    @field_validator("polling_events", "retry_polling_events")
    @classmethod
    def _polling(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(_POLLING_EVENTS))
        if unknown:
            raise ValueError(f"polling supports {list(_POLLING_EVENTS)}, not {unknown}")
        return value

    @field_validator("import_events")
    @classmethod
    def _import(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            unknown = sorted(set(value) - _EVENT_TYPES)
            if unknown:
                raise ValueError(f"unknown report event types {unknown}")
        return value

    @field_validator("settings")
    @classmethod
    def _declared_settings(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # A secret setting written inline would otherwise sit in this plain dict and show
        # in repr() and dumps; wrap it. A relative "path" setting is anchored to the
        # configuration file's directory (parse_config's base_dir context). An unknown
        # connector is reported later, with the integration's name, by connector_settings().
        try:
            declared = connector_class(str(info.data["connector"])).settings
        except (KeyError, ImportError, ConfigurationError):
            return value
        secret = {s.name for s in declared if s.secret}
        paths = {s.name for s in declared if s.type == "path"}
        base: Path | None = (info.context or {}).get("base_dir")
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in secret and isinstance(item, str):
                item = SecretStr(item)
            elif key in paths and base is not None and isinstance(item, str) and item:
                item = str(base / item)  # an absolute item stays as it is
            out[key] = item
        return out

    @property
    def polling(self) -> bool:
        """Whether this integration polls the appliance."""
        return bool(self.polling_events) and not self.disabled

    def connector_settings(self) -> ConnectorSettings:
        """The connector's settings, validated against its declaration."""
        try:
            cls = connector_class(self.connector)
        except ConfigurationError as exc:
            raise ConfigurationError(f"integration {self.name}: {exc.message}") from None
        except ImportError as exc:
            raise ConfigurationError(
                f"integration {self.name}: connector {self.connector!r} cannot be loaded: {exc}"
            ) from None
        raw = {
            key: resolve_secret(value, where=f"integration {self.name}: settings.{key}")
            for key, value in self.settings.items()
        }
        return cls.validate_settings(raw, where=f"integration {self.name}: settings")


class Config(ConfigModel):
    """The whole configuration file."""

    engine: EngineConfig = Field(default_factory=EngineConfig)
    appliances: list[ApplianceConfig] = Field(default_factory=list)
    integrations: list[IntegrationConfig] = Field(default_factory=list)
    actions: ActionsConfig = Field(default_factory=ActionsConfig)
    smtp: SmtpConfig | None = None
    signing: SigningConfig | None = None
    admin: AdminConfig = Field(default_factory=AdminConfig)

    @model_validator(mode="after")
    def _references(self) -> Config:
        ids = [a.id for a in self.appliances]
        names = [i.name for i in self.integrations]
        for label, values in (("appliance id", ids), ("integration name", names)):
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                raise ValueError(f"{label} used more than once: {', '.join(twice)}")
        for integration in self.integrations:
            if integration.appliance not in ids:
                raise ValueError(
                    f"integration {integration.name}: no appliance with id "
                    f"{integration.appliance!r} (known: {', '.join(ids) or 'none'})"
                )
        return self

    @model_validator(mode="after")
    def _client_integrations(self) -> Config:
        names = {i.name for i in self.integrations}
        for index, client in enumerate(self.actions.clients):
            for name in client.integrations:
                if name not in names:
                    raise ValueError(
                        f"actions.clients[{index}] ({client.name}): no integration named "
                        f"{name!r} (known: {', '.join(sorted(names)) or 'none'})"
                    )
        return self

    @model_validator(mode="after")
    def _mail_needs_smtp(self) -> Config:
        # A connector that sends the key e-mail itself (ServiceNow's key_mail = "instance")
        # needs no SMTP server.
        wanting = [
            i.name
            for i in self.integrations
            if i.actions.email_key and i.settings.get("key_mail") != "instance"
        ]
        if wanting and self.smtp is None:
            raise ValueError(
                f"integration {', '.join(wanting)}: actions.email_key needs an [smtp] section"
            )
        return self

    @model_validator(mode="after")
    def _actions_need_signing(self) -> Config:
        # Keys, Jump and Get Support Now put references on sessions; unsigned, the
        # association of every integration that does not trust "any" refuses them.
        strict = [i.name for i in self.integrations if i.association.trust != "any"]
        if self.actions.enabled and self.signing is None and strict:
            raise ValueError(
                "actions.enabled needs a [signing] secret: the references that keys, Jump "
                "and Get Support Now put on sessions would be unsigned, and integration "
                f"{', '.join(strict)} (association.trust) would refuse them"
            )
        return self

    @model_validator(mode="after")
    def _console_behind_tls(self) -> Config:
        # Passwords and session cookies must not cross a network in clear text: a
        # console on an outside listener needs a TLS-terminating proxy in front (its
        # requests then arrive from a trusted proxy with X-Forwarded-Proto: https).
        admin = self.admin
        if (
            admin.enabled
            and not admin.allow_insecure_remote
            and not is_loopback_host(self.engine.listen_host)
            and not self.engine.trusted_proxies
        ):
            raise ValueError(
                "admin.enabled on a non-loopback listener "
                f"({self.engine.listen_host}) needs TLS in front: list the TLS-terminating "
                "proxy in engine.trusted_proxies, or set admin.allow_insecure_remote = true"
            )
        return self

    def appliance(self, appliance_id: str) -> ApplianceConfig | None:
        """The appliance with ``appliance_id``, or None."""
        return next((a for a in self.appliances if a.id == appliance_id), None)

    def integration(self, name: str) -> IntegrationConfig | None:
        """The integration called ``name``, or None."""
        return next((i for i in self.integrations if i.name == name), None)

    def active_integrations(self, appliance_id: str | None = None) -> list[IntegrationConfig]:
        """Enabled integrations (of one appliance when given)."""
        return [
            i
            for i in self.integrations
            if not i.disabled and (appliance_id is None or i.appliance == appliance_id)
        ]


_SECRET_FIELDS = ("client_secret", "outbound_event_token")


def _prepare(data: Mapping[str, Any], base: Path | None) -> dict[str, Any]:
    """A copy of ``data`` with appliance secrets resolved and secret file paths anchored.

    Copies every level it changes: the caller's mapping must not end up holding secret
    values read from the environment or from files.
    """
    out = dict(data)
    appliances = out.get("appliances")
    if isinstance(appliances, list):
        out["appliances"] = []
        for index, appliance in enumerate(appliances):
            if isinstance(appliance, Mapping):
                appliance = dict(appliance)
                for key in _SECRET_FIELDS:
                    if key in appliance:
                        appliance[key] = resolve_secret(
                            anchor_file(appliance[key], base), where=f"appliances[{index}].{key}"
                        )
            out["appliances"].append(appliance)
    prepare_action_secrets(out, base)
    integrations = out.get("integrations")
    if isinstance(integrations, list):
        out["integrations"] = []
        for integration in integrations:
            settings = integration.get("settings") if isinstance(integration, Mapping) else None
            if isinstance(settings, Mapping):
                anchored = {k: anchor_file(v, base) for k, v in settings.items()}
                integration = {**integration, "settings": anchored}
            out["integrations"].append(integration)
    return out


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "(file)"
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def parse_config(data: Mapping[str, Any], *, base_dir: Path | None = None) -> Config:
    """Validate a configuration mapping; relative paths resolve against ``base_dir``."""
    try:
        config = Config.model_validate(_prepare(data, base_dir), context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigurationError("invalid configuration:\n" + _format_errors(exc)) from None
    for integration in config.integrations:
        integration.connector_settings()
    if base_dir is not None:
        config = _anchor_paths(config, base_dir)
    return config


def _anchor_paths(config: Config, base: Path) -> Config:
    store = config.engine.store
    engine = config.engine.model_copy(
        update={"store": base / store if isinstance(store, Path) else store}
    )
    integrations = [
        i.model_copy(update={"templates": base / i.templates}) if i.templates else i
        for i in config.integrations
    ]
    appliances = [
        a.model_copy(update={"ca_file": base / a.ca_file}) if a.ca_file else a
        for a in config.appliances
    ]
    smtp = config.smtp
    if smtp is not None and smtp.ca_file is not None:
        smtp = smtp.model_copy(update={"ca_file": base / smtp.ca_file})
    return config.model_copy(
        update={
            "engine": engine,
            "appliances": appliances,
            "integrations": integrations,
            "smtp": smtp,
        }
    )


def load_config(path: Path) -> Config:
    """Read and validate the TOML file at ``path``; ConfigurationError says what is wrong."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from None
    try:
        return parse_config(data, base_dir=path.resolve().parent)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{path}: {exc.message}") from None
