"""Requests and results of the actions, shared by the HTTP API and the CLI.

Requests are pydantic models (unknown fields refused, values checked) so that a request
from a UI action and the same options from the command line are validated alike.
Results are dataclasses whose ``to_json()`` is the HTTP answer body, documented field by
field in docs/actions.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from rsbridge.appliance.scripting import JumpMethod
from rsbridge.connectors.base import ConfigurationItem, CustomLink, Ticket

AssignmentMode = Literal["technician", "assigned_user", "assigned_team", "general", "queue"]
JumpKind = Literal["jump_item", "push_local", "push_remote", "rdp", "vnc", "shell", "vpro"]

Name = Annotated[str, Field(min_length=1, max_length=200)]
RequestId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
"""A caller's id for one request: the same id again repeats nothing (see docs/actions.md)."""


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class SessionKeyRequest(_Request):
    """Generate a session key for a ticket."""

    integration: Name
    ticket: Name
    user: Name | None = None
    """The caller's user in the ticketing system (``technician`` assignment)."""
    assignment: AssignmentMode | None = None
    queue: Annotated[str, Field(pattern=r"^(rep|team):.+$", max_length=200)] | None = None
    email: bool | None = None
    email_to: Annotated[str, Field(max_length=254)] | None = None
    note: bool | None = None
    request_id: RequestId | None = None


class JumpRequest(_Request):
    """Jump to a configuration item (of a ticket, or named)."""

    integration: Name
    ticket: Name | None = None
    ci: Name | None = None
    kind: JumpKind = "jump_item"
    method: JumpMethod | None = None
    jumpoint: Name | None = None
    console: Literal["rep", "web"] | None = None
    output: Literal["url", "brcs"] | None = None
    username: Name | None = None
    protocol: Literal["ssh", "telnet"] | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None


class SupportNowRequest(_Request):
    """A self-service user asks for a session on their ticket."""

    integration: Name
    ticket: Name
    issue: Name | None = None
    start_type: Literal["chat", "full"] | None = None
    customer_name: Annotated[str, Field(max_length=100)] | None = None
    details: Annotated[str, Field(max_length=2000)] | None = None
    note: bool | None = None
    request_id: RequestId | None = None
    requester_email: Annotated[str, Field(max_length=254)] | None = None
    """The self-service user asking (as the portal authenticated them): the ticket's
    caller must have this e-mail address, or the request is refused."""


class AutoCreateRequest(_Request):
    """Make the ticket of a live session: the auto-create page's form, or a script's JSON."""

    integration: Name
    lsid: Annotated[str, Field(min_length=1, max_length=64)]
    username: Annotated[str, Field(max_length=200)] | None = None
    """The representative (logged; bound into the confirmation)."""
    expires: Annotated[str, Field(pattern=r"^[0-9]{1,12}$")] | None = None
    confirm: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    """The page's confirmation; without it the request needs a bearer token."""


def ticket_json(ticket: Ticket) -> dict[str, str | None]:
    """A ticket in answers."""
    return {"id": ticket.id, "number": ticket.number, "url": ticket.url}


def ci_json(ci: ConfigurationItem) -> dict[str, str | None]:
    """A configuration item in answers."""
    return {"id": ci.id, "name": ci.name, "host": ci.host}


class PullRequest(_Request):
    """Pull the sessions that ended since the last pull (the first: the last 24 hours)."""

    integration: Name


@dataclass(frozen=True, slots=True)
class Brcs:
    """A BeyondTrust Representative Console Script to save and open."""

    content: str
    extension: str
    filename: str

    def to_json(self) -> dict[str, str]:
        """Its answer form."""
        return {"content": self.content, "extension": self.extension, "filename": self.filename}


@dataclass(frozen=True, slots=True)
class EffectOutcome:
    """What became of a side effect (work note, e-mail): done, or why not."""

    done: bool
    detail: str | None = None
    """The note's record, the recipient, or the error."""

    def to_json(self, done_key: str) -> dict[str, object]:
        """Its answer form: ``{done_key: bool, ...}``."""
        if self.done:
            return {done_key: True, "ref": self.detail}
        return {done_key: False, "error": self.detail}


@dataclass(frozen=True, slots=True)
class SessionKeyResult:
    """A generated session key, or the console URL that opens the console's key dialog."""

    source: str
    ticket: Ticket
    short_key: str | None = None
    key_url: str | None = None
    expires: datetime | None = None
    queue: str | None = None
    queue_available: bool | None = None
    mail_subject: str | None = None
    mail_body: str | None = None
    console_url: str | None = None
    brcs: Brcs | None = None
    note: EffectOutcome | None = None
    email: EffectOutcome | None = None
    email_to: str | None = None
    repeated: bool = False
    ticket_fields: EffectOutcome | None = None
    """The key written into the ticket's own fields (connectors that keep it there)."""

    def to_json(self) -> dict[str, object]:
        """The answer body."""
        return {
            "source": self.source,
            "ticket": ticket_json(self.ticket),
            "short_key": self.short_key,
            "key_url": self.key_url,
            "expires": self.expires.isoformat() if self.expires else None,
            "queue": self.queue,
            "queue_available": self.queue_available,
            "mail_subject": self.mail_subject,
            "mail_body": self.mail_body,
            "console_url": self.console_url,
            "brcs": self.brcs.to_json() if self.brcs else None,
            "note": self.note.to_json("written") if self.note else None,
            "email": ({**self.email.to_json("sent"), "to": self.email_to} if self.email else None),
            "repeated": self.repeated,
            "ticket_fields": self.ticket_fields.to_json("written") if self.ticket_fields else None,
        }


@dataclass(frozen=True, slots=True)
class JumpResult:
    """How to start a Jump: a console URL or a BRCS file."""

    kind: str
    console: str
    configuration_item: ConfigurationItem
    ticket: Ticket | None = None
    url: str | None = None
    brcs: Brcs | None = None

    def to_json(self) -> dict[str, object]:
        """The answer body."""
        return {
            "kind": self.kind,
            "console": self.console,
            "configuration_item": ci_json(self.configuration_item),
            "ticket": ticket_json(self.ticket) if self.ticket else None,
            "url": self.url,
            "brcs": self.brcs.to_json() if self.brcs else None,
        }


@dataclass(frozen=True, slots=True)
class IssueInfo:
    """An issue customers can choose (an appliance support issue, by code name)."""

    code_name: str
    description: str | None
    id: str
    team: str
    team_id: str

    def to_json(self) -> dict[str, str | None]:
        """Its answer form."""
        return {
            "code_name": self.code_name,
            "description": self.description,
            "id": self.id,
            "team": self.team,
            "team_id": self.team_id,
        }


@dataclass(frozen=True, slots=True)
class IssuesResult:
    """The issues offered to self-service users, loaded from the appliance."""

    integration: str
    issues: list[IssueInfo]
    appliance_issue_count: int
    missing: list[str] = field(default_factory=list)
    """Configured ``self_service_issues`` the appliance does not have."""

    def to_json(self) -> dict[str, object]:
        """The answer body."""
        return {
            "integration": self.integration,
            "count": len(self.issues),
            "issues": [i.to_json() for i in self.issues],
            "appliance_issue_count": self.appliance_issue_count,
            "missing": self.missing,
        }


@dataclass(frozen=True, slots=True)
class SupportNowResult:
    """The URL that starts the customer's session, already associated with the ticket."""

    ticket: Ticket
    url: str
    start_type: str
    issue: IssueInfo
    note: EffectOutcome | None = None

    def to_json(self) -> dict[str, object]:
        """The answer body."""
        return {
            "ticket": ticket_json(self.ticket),
            "url": self.url,
            "start_type": self.start_type,
            "issue": self.issue.to_json(),
            "note": self.note.to_json("written") if self.note else None,
        }


@dataclass(frozen=True, slots=True)
class LinksResult:
    """Rep-console custom links for an integration."""

    integration: str
    links: list[CustomLink]

    def to_json(self) -> dict[str, object]:
        """The answer body."""
        return {
            "integration": self.integration,
            "links": [{"name": link.name, "url": link.url} for link in self.links],
        }


@dataclass(frozen=True, slots=True)
class AutoCreateResult:
    """The ticket of a live session: found or created, and written back to the session."""

    integration: str
    lsid: str
    ticket: Ticket

    def to_json(self) -> dict[str, object]:
        """The answer body."""
        return {
            "integration": self.integration,
            "lsid": self.lsid,
            "ticket": ticket_json(self.ticket),
        }


@dataclass(frozen=True, slots=True)
class AutoCreateOffer:
    """A live session the auto-create link may make a ticket for, and how to confirm it.

    ``confirm`` authorises one ``POST /actions/auto-create`` for this integration, session
    and representative until ``expires`` (UNIX seconds); None without a link secret.
    """

    integration: str
    lsid: str
    username: str | None
    started: datetime | None
    expires: int
    confirm: str | None

    def to_json(self) -> dict[str, object]:
        """The answer body (``format=json``)."""
        return {
            "integration": self.integration,
            "lsid": self.lsid,
            "username": self.username,
            "started": self.started.isoformat() if self.started else None,
            "expires": self.expires,
            "confirm": self.confirm,
        }


@dataclass(frozen=True, slots=True)
class PullResult:
    """What a pull found on the appliance and queued for import."""

    integration: str
    since: datetime
    first_run: bool
    sessions_listed: int
    sessions_queued: int
    surveys_queued: int
    appliance_calls: int

    def to_json(self) -> dict[str, object]:
        """The answer body."""
        return {
            "integration": self.integration,
            "since": self.since.isoformat(),
            "first_run": self.first_run,
            "sessions_listed": self.sessions_listed,
            "sessions_queued": self.sessions_queued,
            "surveys_queued": self.surveys_queued,
            "appliance_calls": self.appliance_calls,
        }
