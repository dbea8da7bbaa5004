"""The configuration of technician and customer actions (docs/actions.md):
``[integrations.actions]``, ``[actions]`` with its API clients, ``[smtp]`` for e-mailed
keys, ``[signing]`` for the references actions put on sessions (the association checks
them), and the resolution of their secrets before validation.

Import these names from :mod:`rsbridge.config`, which holds the whole file's model.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, SecretStr, field_validator, model_validator

from rsbridge.appliance.host import check_host
from rsbridge.config_base import ConfigModel, anchor_file, plain_name, resolve_secret
from rsbridge.errors import ConfigurationError

_QUEUE_SPEC = re.compile(r"^(rep|team):(.+)$")
MIN_TOKEN_CHARS = 16
"""Shortest bearer token or link secret accepted: guessing must be hopeless."""


class IntegrationActionsConfig(ConfigModel):
    """``[integrations.actions]``: technician and customer actions for one integration."""

    session_key_source: Literal["command_api", "rep_console", "web_console"] = "command_api"
    assignment: Literal["technician", "assigned_user", "assigned_team", "general", "queue"] = (
        "technician"
    )
    queue: str | None = None
    key_ttl_seconds: int | None = Field(None, ge=60, le=7 * 86400)
    log_session_key: bool = True
    email_key: bool = False
    log_customer_initiated: bool = True
    self_service_enabled: bool = False
    self_service_issues: list[str] = Field(default_factory=list)
    session_start_type: Literal["chat", "full"] = "chat"
    public_portal_hostname: str | None = None
    company_site_name: str | None = None
    jump_console: Literal["rep", "web"] = "rep"
    jump_output: Literal["url", "brcs"] = "url"
    jumpoint: str | None = None

    @field_validator("queue")
    @classmethod
    def _queue(cls, value: str | None) -> str | None:
        if value is not None and not _QUEUE_SPEC.match(value):
            raise ValueError(f"{value!r}: use rep:<appliance username> or team:<support team name>")
        return value

    @field_validator("public_portal_hostname")
    @classmethod
    def _portal(cls, value: str | None) -> str | None:
        if value is not None:
            check_host(value, ConfigurationError, "public_portal_hostname")
        return value

    @field_validator("company_site_name")
    @classmethod
    def _site(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise ValueError("only letters, digits, '-' and '_' (it becomes a file extension)")
        return value

    @model_validator(mode="after")
    def _queue_mode(self) -> IntegrationActionsConfig:
        if self.assignment == "queue" and self.queue is None:
            raise ValueError('assignment = "queue" needs queue = "rep:<name>" or "team:<name>"')
        return self


class SigningConfig(ConfigModel):
    """``[signing]``: the secret that signs the references rsbridge puts on sessions."""

    secret: SecretStr
    previous_secrets: list[SecretStr] = Field(default_factory=list)
    max_age_hours: float = Field(192.0, ge=1, le=24 * 31)
    """A signature counts for sessions that start within this many hours of it."""

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_SIGNING_SECRET_CHARS:
            raise ValueError(f"must be at least {MIN_SIGNING_SECRET_CHARS} characters")
        return value


MIN_SIGNING_SECRET_CHARS = 32
"""Shortest signing secret accepted (e.g. ``openssl rand -hex 32`` gives 64)."""


ActionRoute = Literal[
    "session_key",
    "jump",
    "issues",
    "support_now",
    "links",
    "auto_create",
    "pull",
    "metrics",
    "status",
]
ACTION_ROUTES: tuple[ActionRoute, ...] = get_args(ActionRoute)
"""The actions API's routes by name, as ``[[actions.clients]] routes`` lists them."""


def _long_enough(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) < MIN_TOKEN_CHARS:
        raise ValueError(f"must be at least {MIN_TOKEN_CHARS} characters")
    return value


class ActionsClientConfig(ConfigModel):
    """``[[actions.clients]]``: one caller of the actions API, and what its token opens."""

    name: str
    """Names the caller in logs (never the token)."""
    token: SecretStr
    integrations: list[str] = Field(min_length=1)
    routes: list[ActionRoute] = Field(min_length=1)
    user: str | None = Field(None, min_length=1, max_length=200)
    """Binds the token to one technician: requests act as this user and no other."""

    _name = field_validator("name")(plain_name)

    _token = field_validator("token")(_long_enough)


class ActionsConfig(ConfigModel):
    """``[actions]``: the HTTP actions API (session keys, Jump, get support now, links)."""

    enabled: bool = False
    tokens: list[SecretStr] = Field(default_factory=list)
    """Unscoped tokens: every route, every integration, the user on the caller's word."""
    clients: list[ActionsClientConfig] = Field(default_factory=list)
    public_url: str | None = None
    link_secret: SecretStr | None = None
    auto_create_max_session_hours: float = Field(12.0, gt=0, le=168)
    """The auto-create link works for sessions in progress that started at most this long ago."""

    @field_validator("tokens")
    @classmethod
    def _tokens(cls, value: list[SecretStr]) -> list[SecretStr]:
        for index, token in enumerate(value):
            if len(token.get_secret_value()) < MIN_TOKEN_CHARS:
                raise ValueError(f"token {index} is shorter than {MIN_TOKEN_CHARS} characters")
        return value

    @field_validator("link_secret")
    @classmethod
    def _link_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(f"must be at least {MIN_TOKEN_CHARS} characters")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", value):
            raise ValueError("an http:// or https:// URL without query or fragment")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _usable(self) -> ActionsConfig:
        if self.enabled and not self.tokens and not self.clients:
            raise ValueError("enabled = true needs at least one bearer token in tokens or clients")
        names = [c.name for c in self.clients]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"client name used more than once: {', '.join(twice)}")
        # One token, one caller: a shared one would open the union of two scopes.
        seen = {t.get_secret_value() for t in self.tokens}
        for index, client in enumerate(self.clients):
            secret = client.token.get_secret_value()
            if secret in seen:
                raise ValueError(f"clients[{index}] has the token of another caller")
            seen.add(secret)
        return self


class SmtpConfig(ConfigModel):
    """``[smtp]``: the mail server session keys are e-mailed through."""

    host: str
    port: int | None = Field(None, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_address: str
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    ca_file: Path | None = None

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        bad = not value or re.search(r"[\s/@\[\]]", value)
        if not bad and ":" in value:  # only an IPv6 address may hold a colon
            try:
                ipaddress.IPv6Address(value)
            except ValueError:
                bad = True
        if bad:
            raise ValueError("a host name or address only (the port goes in port)")
        return value

    @field_validator("from_address")
    @classmethod
    def _from(cls, value: str) -> str:
        if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", value):
            raise ValueError("an e-mail address such as rsbridge@example.com")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> SmtpConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        return self

    @property
    def effective_port(self) -> int:
        """``port``, or the usual one for ``security`` (25, 587 or 465)."""
        return self.port or {"none": 25, "starttls": 587, "tls": 465}[self.security]


def prepare_action_secrets(out: dict[str, Any], base: Path | None) -> None:
    """Resolve the secrets of ``[actions]``, ``[signing]`` and ``[smtp]`` in ``out``
    (copying what changes)."""
    actions = out.get("actions")
    if isinstance(actions, Mapping):
        actions = dict(actions)
        if isinstance(actions.get("tokens"), list):
            actions["tokens"] = [
                resolve_secret(anchor_file(token, base), where=f"actions.tokens[{index}]")
                for index, token in enumerate(actions["tokens"])
            ]
        if isinstance(actions.get("clients"), list):
            actions["clients"] = [
                {
                    **client,
                    "token": resolve_secret(
                        anchor_file(client["token"], base), where=f"actions.clients[{index}].token"
                    ),
                }
                if isinstance(client, Mapping) and "token" in client
                else client
                for index, client in enumerate(actions["clients"])
            ]
        if "link_secret" in actions:
            actions["link_secret"] = resolve_secret(
                anchor_file(actions["link_secret"], base), where="actions.link_secret"
            )
        out["actions"] = actions
    signing = out.get("signing")
    if isinstance(signing, Mapping):
        signing = dict(signing)
        if "secret" in signing:
            signing["secret"] = resolve_secret(
                anchor_file(signing["secret"], base), where="signing.secret"
            )
        if isinstance(signing.get("previous_secrets"), list):
            signing["previous_secrets"] = [
                resolve_secret(anchor_file(item, base), where=f"signing.previous_secrets[{i}]")
                for i, item in enumerate(signing["previous_secrets"])
            ]
        out["signing"] = signing
    smtp = out.get("smtp")
    if isinstance(smtp, Mapping) and "password" in smtp:
        out["smtp"] = {
            **smtp,
            "password": resolve_secret(anchor_file(smtp["password"], base), where="smtp.password"),
        }
