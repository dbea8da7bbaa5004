"""Command API: queue ids, result models and the XML -> model readers.

Response shapes follow the real samples in shared/reference/beyondtrust-api.md §2;
``get_support_teams`` below ``<name>`` is inferred (no public sample exists), see
docs/appliance.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rsbridge.appliance.xml import Element, child_text, children, local_name, unix_time
from rsbridge.errors import ApplianceResponseError


class Queue:
    """Builders for ``queue_id`` values of generate_session_key / transfer_session."""

    GENERAL = "general"

    @staticmethod
    def rep(rep_id: int | str) -> str:
        """A representative's personal queue by user id."""
        return f"rep:{rep_id}"

    @staticmethod
    def team(team_id: int | str) -> str:
        """A support team's queue by team id."""
        return f"team:{team_id}"

    @staticmethod
    def rep_username(username: str) -> str:
        """A representative's queue by username (must match exactly one user)."""
        return f"rep_username:{username}"

    @staticmethod
    def issue(code_name: str) -> str:
        """The queue behind a portal issue, by the issue's code name."""
        return f"issue:{code_name}"


@dataclass(slots=True)
class SessionKey:
    """A generated session key (``<session_key>``)."""

    type: str
    expires: datetime
    queue: str
    queue_available: bool
    short_key: str
    key_url: str
    queue_id: str | None = None
    external_key: str | None = None
    mail_subject: str | None = None
    mail_body: str | None = None


@dataclass(slots=True)
class LoggedInRep:
    """One ``<rep>`` of get_logged_in_reps."""

    id: str
    public_display_name: str | None = None
    private_display_name: str | None = None
    type: str | None = None
    direct_link: str | None = None
    logged_in_since: str | None = None
    presentation_count: int = 0
    support_session_count: int = 0
    showing_on_rep_list: bool = False


@dataclass(slots=True)
class Issue:
    """A support issue of a team (usable as ``queue_id=issue:<code_name>``)."""

    id: str
    code_name: str
    description: str | None = None


@dataclass(slots=True)
class TeamMember:
    """A member of a support team (only with ``showmembers=1``)."""

    id: str
    username: str | None = None
    public_display_name: str | None = None
    private_display_name: str | None = None
    role: str | None = None


@dataclass(slots=True)
class SupportTeam:
    """One ``<support_team>`` of get_support_teams."""

    id: str
    name: str
    code_name: str | None = None
    issues: list[Issue] = field(default_factory=list)
    members: list[TeamMember] = field(default_factory=list)


@dataclass(slots=True)
class ApiInfo:
    """get_api_info: API version, company, server time and the account's permissions."""

    api_version: str
    company_name: str | None
    timestamp: datetime | None
    permissions: dict[str, str] = field(default_factory=dict)

    def can(self, permission: str, level: str = "full_access") -> bool:
        """Whether ``permission`` is granted (``1`` or the given access level)."""
        value = self.permissions.get(permission)
        return value == "1" or value == level


@dataclass(slots=True)
class HealthCheck:
    """check_health: appliance identity, version and failover role."""

    appliance_id: str | None
    hostname: str | None
    version: str | None
    success: bool
    failover_role: str | None = None
    error_message: str | None = None


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        raise ApplianceResponseError(f"expected a number, got {text!r}") from None


def _unix(text: str | None) -> datetime | None:
    return unix_time(text, ApplianceResponseError)


def read_session_key(root: Element) -> SessionKey:
    """Model of a ``<session_key>`` response."""
    queue = next((c for name, c in children(root) if name == "queue"), None)
    expires = _unix(child_text(root, "expires"))
    short_key, key_url = child_text(root, "short_key"), child_text(root, "key_url")
    if expires is None or short_key is None or key_url is None:
        raise ApplianceResponseError("session_key response lacks expires, short_key or key_url")
    return SessionKey(
        type=child_text(root, "type") or "support",
        expires=expires,
        queue=(queue.text or "") if queue is not None else "",
        queue_available=queue is not None and queue.get("available") == "1",
        queue_id=child_text(root, "queue_id"),
        external_key=child_text(root, "external_key"),
        short_key=short_key,
        key_url=key_url,
        mail_subject=child_text(root, "mail_subject"),
        mail_body=(child_text(root, "mail_body") or "").strip() or None,
    )


def read_logged_in_reps(root: Element) -> list[LoggedInRep]:
    """Models of the ``<rep>`` children of ``<logged_in_reps>``."""
    reps = []
    for name, el in children(root):
        if name != "rep":
            continue
        reps.append(
            LoggedInRep(
                id=el.get("id") or "",
                public_display_name=child_text(el, "public_display_name")
                or child_text(el, "display_name"),
                private_display_name=child_text(el, "private_display_name"),
                type=child_text(el, "type"),
                direct_link=child_text(el, "direct_link"),
                logged_in_since=child_text(el, "logged_in_since"),
                presentation_count=_int(child_text(el, "presentation_count")),
                support_session_count=_int(child_text(el, "support_session_count")),
                showing_on_rep_list=child_text(el, "showing_on_rep_list") == "1",
            )
        )
    return reps


def read_support_teams(root: Element) -> list[SupportTeam]:
    """Models of the ``<support_team>`` children of ``<support_teams>``."""
    teams = []
    for name, el in children(root):
        if name != "support_team":
            continue
        team = SupportTeam(
            id=el.get("id") or "",
            name=child_text(el, "name") or "",
            code_name=child_text(el, "code_name"),
        )
        for part_name, part in children(el):
            if part_name == "issues":
                team.issues = [
                    Issue(
                        id=i.get("id") or "",
                        code_name=child_text(i, "code_name") or "",
                        description=child_text(i, "description"),
                    )
                    for n, i in children(part)
                    if n == "issue"
                ]
            elif part_name == "members":
                team.members = [
                    TeamMember(
                        id=m.get("id") or "",
                        username=child_text(m, "username"),
                        public_display_name=child_text(m, "public_display_name"),
                        private_display_name=child_text(m, "private_display_name"),
                        role=child_text(m, "role"),
                    )
                    for n, m in children(part)
                    if n == "member"
                ]
        teams.append(team)
    return teams


def read_custom_attributes(root: Element) -> dict[str, str]:
    """``<custom_attributes>`` as code name -> value."""
    return {
        el.get("code_name") or "": el.text or ""
        for name, el in children(root)
        if name == "custom_attribute"
    }


def read_api_info(root: Element) -> ApiInfo:
    """Model of ``<api_information>``."""
    permissions: dict[str, str] = {}
    for name, el in children(root):
        if name == "permissions":
            permissions = {
                p.get("name") or "": p.text or "" for n, p in children(el) if n == "permission"
            }
    return ApiInfo(
        api_version=child_text(root, "api_version") or "",
        company_name=child_text(root, "company_name"),
        timestamp=_unix(child_text(root, "timestamp")),
        permissions=permissions,
    )


def read_health_check(root: Element) -> HealthCheck:
    """Model of ``<health_check>``."""
    appliance = next((c for name, c in children(root) if name == "appliance"), None)
    return HealthCheck(
        appliance_id=appliance.get("id") if appliance is not None else None,
        hostname=(appliance.text or None) if appliance is not None else None,
        version=child_text(root, "version"),
        success=child_text(root, "success") == "1",
        failover_role=child_text(root, "failover_role"),
        error_message=child_text(root, "error_message"),
    )


def read_success(root: Element) -> str:
    """Text of a ``<success>`` answer."""
    if local_name(root) != "success":
        raise ApplianceResponseError(f"expected <success>, got <{local_name(root)}>")
    return (root.text or "").strip()
