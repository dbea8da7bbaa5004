"""Console URLs, BRCS files and session-start URLs for the appliance.

Three things a technician or a customer opens in a browser or a console, never called
by rsbridge itself:

* :func:`console_url` -- a client scripting API URL
  (``https://<site>/api/client_script?type=rep&operation=generate&action=...``) that
  makes the representative console run one command, or the web rep console run
  ``start_jump_item_session``;
* :func:`brcs_file` -- a BeyondTrust Representative Console Script: ``BRCS1.0`` and up
  to ten commands, one per line, to save with the extension from
  :func:`brcs_extension`;
* :func:`start_session_url` -- a session generation API URL
  (``https://<site>/api/start_session?...``) that starts a click-to-chat or full
  customer session in a representative's queue, by session key, or for an issue.

Each client-script command is a frozen dataclass checked when it is built, so a value
over a documented limit raises :class:`~rsbridge.errors.ClientScriptError` before any
URL exists. Optional fields left at ``None`` are not sent, and the appliance applies its
own documented default. Custom attributes go through
:func:`~rsbridge.appliance.custom_fields.custom_field_params`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Literal, TypeVar
from urllib.parse import quote

from rsbridge.appliance.custom_fields import custom_field_params, preview
from rsbridge.appliance.host import check_host
from rsbridge.errors import ClientScriptError

MAX_BRCS_COMMANDS = 10
MAX_HOSTNAME_CHARS = 255
"""Limit of ``hostname``, ``public_portal_hostname`` and the ``client.*`` search fields."""
MAX_CUSTOMER_CHARS = 100
"""Limit of ``customer.name``, ``customer.company`` and ``customer.company_code``."""

BRCS_HEADER = "BRCS1.0"

_UNRESERVED = "-._~"
_DISPLAY_SIZE = re.compile(r"primary_display|all_displays|[1-9][0-9]{0,4}x[1-9][0-9]{0,4}")
_SHORT_KEY = re.compile(r"[0-9]{7}")
_COMPANY_SITE = re.compile(r"[A-Za-z0-9_-]+")
_CONSOLES = {"rep": ("rep", "generate"), "web": ("web_console", "execute")}

_E = TypeVar("_E", bound=StrEnum)


class JumpMethod(StrEnum):
    """``jump.method`` of ``start_jump_item_session``."""

    PUSH = "push"
    LOCAL_PUSH = "local_push"
    PINNED = "pinned"
    RDP = "rdp"
    VNC = "vnc"
    SHELLJUMP = "shelljump"


class DisplaySize(StrEnum):
    """Named ``display_size`` values of an RDP session; ``"<width>x<height>"`` also works."""

    PRIMARY_DISPLAY = "primary_display"
    ALL_DISPLAYS = "all_displays"


class RdpQuality(StrEnum):
    """``quality`` of an RDP session (appliance default: ``performance``)."""

    LOW = "low"
    PERFORMANCE = "performance"
    PERFORMANCE_QUALITY = "performance_quality"
    QUALITY = "quality"


class ShellProtocol(StrEnum):
    """``protocol`` of a Shell Jump session (appliance default: ``ssh``)."""

    SSH = "ssh"
    TELNET = "telnet"


class Terminal(StrEnum):
    """``terminal`` type of a Shell Jump session (appliance default: ``xterm``)."""

    XTERM = "xterm"
    VT100 = "vt100"


def _encode(pairs: Iterable[tuple[str, str]]) -> str:
    # RFC 3986 section 2.1, which the BRCS format mandates: everything outside the
    # unreserved set is percent-encoded (a space is %20, never "+"). URLs use the same
    # form so one encoder serves both and the docs' examples match byte for byte.
    return "&".join(f"{quote(k, safe=_UNRESERVED)}={quote(v, safe=_UNRESERVED)}" for k, v in pairs)


def _host(site: str) -> str:
    return check_host(site, ClientScriptError, "site")


def _require(name: str, value: str | None) -> None:
    if not value:
        raise ClientScriptError(f"{name} is required and must not be empty.")


def _check_length(name: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise ClientScriptError(
            f"{name} is {len(value):,} characters long; the appliance accepts at most {limit:,}."
        )


def _check_port(port: int | None) -> None:
    if port is not None and not 1 <= port <= 65535:
        raise ClientScriptError(f"port is {port}; use a TCP port from 1 to 65535.")


def _choice(enum: type[_E], name: str, value: str | None) -> _E | None:
    # Values often come from configuration files as plain strings; turn them into the
    # enum here so a typo is reported with the allowed values, not sent to the console.
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(enum)
        raise ClientScriptError(f"{name} is {preview(value)}; use one of: {allowed}.") from None


def _str(value: int | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, kw_only=True)
class ClientScriptCommand(ABC):
    """A client scripting API command; the fields below are common to all of them.

    ``external_key`` and ``custom_fields`` (code name to value, no ``session.custom.``
    prefix) become the new session's custom attributes.
    """

    action: ClassVar[str]
    external_key: str | None = None
    custom_fields: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        custom_field_params(self.custom_fields, external_key=self.external_key)

    def params(self) -> list[tuple[str, str]]:
        """``action``, then the command's parameters in order, custom attributes last."""
        return [
            ("action", self.action),
            *((name, value) for name, value in self._options() if value is not None),
            *custom_field_params(self.custom_fields, external_key=self.external_key),
        ]

    @abstractmethod
    def _options(self) -> list[tuple[str, str | None]]:
        """The command's own parameters; those set to ``None`` are not sent."""


@dataclass(frozen=True, kw_only=True)
class GenerateSessionKey(ClientScriptCommand):
    """Open the console's Generate Session Key dialog."""

    action: ClassVar[str] = "generate_session_key"
    public_portal_hostname: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_length("public_portal_hostname", self.public_portal_hostname, MAX_HOSTNAME_CHARS)

    def _options(self) -> list[tuple[str, str | None]]:
        return [("public_portal_hostname", self.public_portal_hostname)]


@dataclass(frozen=True, kw_only=True)
class PushAndStartLocal(ClientScriptCommand):
    """Push a customer client to a host on the representative's network and start."""

    action: ClassVar[str] = "push_and_start_local"
    hostname: str

    def __post_init__(self) -> None:
        super().__post_init__()
        _require("hostname", self.hostname)
        _check_length("hostname", self.hostname, MAX_HOSTNAME_CHARS)

    def _options(self) -> list[tuple[str, str | None]]:
        return [("hostname", self.hostname)]


@dataclass(frozen=True, kw_only=True)
class PushAndStartRemote(ClientScriptCommand):
    """Push a customer client through a Jumpoint and start (the console asks which
    Jumpoint when ``jumpoint`` is not given and there are several)."""

    action: ClassVar[str] = "push_and_start_remote"
    target: str
    jumpoint: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _require("target", self.target)

    def _options(self) -> list[tuple[str, str | None]]:
        return [("target", self.target), ("jumpoint", self.jumpoint)]


@dataclass(frozen=True, kw_only=True)
class StartJumpItemSession(ClientScriptCommand):
    """Start a session with the Jump Item that matches the search.

    ``search_string`` is required unless one of the ``client_*`` fields (sent as
    ``client.comments``, ``client.hostname``, ...) is given; the appliance matches them
    partially and case-insensitively. The only command the web rep console runs.
    """

    action: ClassVar[str] = "start_jump_item_session"
    search_string: str | None = None
    client_comments: str | None = None
    client_hostname: str | None = None
    client_private_ip: str | None = None
    client_public_ip: str | None = None
    client_tag: str | None = None
    method: JumpMethod | None = None
    credential_id: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        client_fields = self._client_fields()
        for name, value in client_fields:
            _check_length(name, value, MAX_HOSTNAME_CHARS)
        if not self.search_string and not any(value for _, value in client_fields):
            raise ClientScriptError(
                "start_jump_item_session needs search_string or at least one of "
                + ", ".join(name for name, _ in client_fields)
                + "."
            )
        object.__setattr__(self, "method", _choice(JumpMethod, "jump.method", self.method))

    def _client_fields(self) -> list[tuple[str, str | None]]:
        return [
            ("client.comments", self.client_comments),
            ("client.hostname", self.client_hostname),
            ("client.private_ip", self.client_private_ip),
            ("client.public_ip", self.client_public_ip),
            ("client.tag", self.client_tag),
        ]

    def _options(self) -> list[tuple[str, str | None]]:
        return [
            ("search_string", self.search_string),
            *self._client_fields(),
            ("jump.method", self.method),
            ("credential_id", _str(self.credential_id)),
        ]


@dataclass(frozen=True, kw_only=True)
class StartRdpSession(ClientScriptCommand):
    """Start a Remote Desktop Protocol session through a Jumpoint.

    ``display_size`` is a :class:`DisplaySize` or ``"<width>x<height>"``; ``console``
    asks for the server's console session (``yes``/``no``).
    """

    action: ClassVar[str] = "start_rdp_session"
    target: str
    jumpoint: str | None = None
    username: str | None = None
    display_size: str | None = None
    quality: RdpQuality | None = None
    console: bool | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _require("target", self.target)
        if self.display_size is not None and not _DISPLAY_SIZE.fullmatch(self.display_size):
            raise ClientScriptError(
                f"display_size is {preview(self.display_size)}; use primary_display, "
                "all_displays or <width>x<height> such as 1280x1024."
            )
        object.__setattr__(self, "quality", _choice(RdpQuality, "quality", self.quality))

    def _options(self) -> list[tuple[str, str | None]]:
        console = None if self.console is None else ("yes" if self.console else "no")
        return [
            ("target", self.target),
            ("jumpoint", self.jumpoint),
            ("username", self.username),
            ("display_size", self.display_size),
            ("quality", self.quality),
            ("console", console),
        ]


@dataclass(frozen=True, kw_only=True)
class StartVncSession(ClientScriptCommand):
    """Start a VNC session through a Jumpoint (appliance default port: 5900)."""

    action: ClassVar[str] = "start_vnc_session"
    target: str
    jumpoint: str | None = None
    port: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _require("target", self.target)
        _check_port(self.port)

    def _options(self) -> list[tuple[str, str | None]]:
        return [("target", self.target), ("jumpoint", self.jumpoint), ("port", _str(self.port))]


@dataclass(frozen=True, kw_only=True)
class StartShellJumpSession(ClientScriptCommand):
    """Start an SSH or Telnet session through a Jumpoint (appliance default port: 22)."""

    action: ClassVar[str] = "start_shell_jump_session"
    target: str
    jumpoint: str | None = None
    username: str | None = None
    protocol: ShellProtocol | None = None
    port: int | None = None
    terminal: Terminal | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _require("target", self.target)
        _check_port(self.port)
        object.__setattr__(self, "protocol", _choice(ShellProtocol, "protocol", self.protocol))
        object.__setattr__(self, "terminal", _choice(Terminal, "terminal", self.terminal))

    def _options(self) -> list[tuple[str, str | None]]:
        return [
            ("target", self.target),
            ("jumpoint", self.jumpoint),
            ("username", self.username),
            ("protocol", self.protocol),
            ("port", _str(self.port)),
            ("terminal", self.terminal),
        ]


@dataclass(frozen=True, kw_only=True)
class StartVproSession(ClientScriptCommand):
    """Start an Intel vPro session through a vPro-enabled Jumpoint.

    ``target`` is the host name or private IP (the FQDN when Kerberos is used).
    """

    action: ClassVar[str] = "start_vpro_session"
    target: str
    jumpoint: str

    def __post_init__(self) -> None:
        super().__post_init__()
        _require("target", self.target)
        _require("jumpoint", self.jumpoint)

    def _options(self) -> list[tuple[str, str | None]]:
        return [("target", self.target), ("jumpoint", self.jumpoint)]


def console_url(
    site: str, command: ClientScriptCommand, *, console: Literal["rep", "web"] = "rep"
) -> str:
    """The client scripting API URL that runs ``command`` in a representative console.

    ``console="rep"`` targets the desktop representative console; ``"web"`` the web rep
    console, which only runs :class:`StartJumpItemSession`. Opening a URL for one console
    logs the user out of the other.
    """
    if console not in _CONSOLES:
        raise ClientScriptError(f"console is {console!r}; use 'rep' or 'web'.")
    if console == "web" and not isinstance(command, StartJumpItemSession):
        raise ClientScriptError(
            f"The web rep console only runs start_jump_item_session through the client "
            f"scripting API; build {command.action} for console='rep' instead."
        )
    client_type, operation = _CONSOLES[console]
    query = _encode([("type", client_type), ("operation", operation), *command.params()])
    return f"https://{_host(site)}/api/client_script?{query}"


def brcs_file(commands: Sequence[ClientScriptCommand]) -> str:
    """The text of a BRCS file that runs ``commands`` (1 to 10) in order.

    No trailing newline: the format's grammar puts newlines between commands only.
    """
    if not 1 <= len(commands) <= MAX_BRCS_COMMANDS:
        raise ClientScriptError(
            f"A BRCS file holds 1 to {MAX_BRCS_COMMANDS} commands; {len(commands)} given. "
            "Split the commands over several files."
        )
    return "\n".join([BRCS_HEADER, *(_encode(command.params()) for command in commands)])


def brcs_extension(company_site_name: str) -> str:
    """The file name extension (without the dot) the console registers for BRCS files.

    ``company_site_name`` is the name used to access the support site.
    """
    if not _COMPANY_SITE.fullmatch(company_site_name):
        raise ClientScriptError(
            f"company site name {preview(company_site_name)} is not valid in a file name "
            "extension; use letters, digits, '-' and '_' only."
        )
    return f"brcs-{company_site_name}"


@dataclass(frozen=True, kw_only=True)
class RepresentativeQueue:
    """Start the session in a representative's queue (``public_name`` is the
    representative's public display name, as the portal shows it)."""

    rep_id: int
    public_name: str

    def __post_init__(self) -> None:
        _require("name", self.public_name)

    def params(self) -> list[tuple[str, str]]:
        """Query parameters selecting this queue."""
        return [("id", str(self.rep_id)), ("name", self.public_name)]


@dataclass(frozen=True, kw_only=True)
class SessionKeyQueue:
    """Start the session that a generated session key (its 7-digit short key) belongs to."""

    short_key: str

    def __post_init__(self) -> None:
        if not _SHORT_KEY.fullmatch(self.short_key):
            raise ClientScriptError(
                f"short_key is {preview(self.short_key)}; a session key has exactly 7 digits."
            )

    def params(self) -> list[tuple[str, str]]:
        """Query parameters selecting this queue."""
        return [("short_key", self.short_key)]


@dataclass(frozen=True, kw_only=True)
class IssueQueue:
    """Start the session through the issue menu: give ``code_name`` or ``issue_id``.

    ``issue_id`` is a representative id when the portal lists representatives in the
    issue menu.
    """

    code_name: str | None = None
    issue_id: int | None = None

    def __post_init__(self) -> None:
        if (self.code_name is None) == (self.issue_id is None):
            raise ClientScriptError(
                "An issue queue needs exactly one of codeName (code_name) and id (issue_id)."
            )
        if self.code_name is not None:
            _require("codeName", self.code_name)

    def params(self) -> list[tuple[str, str]]:
        """Query parameters selecting this queue."""
        if self.code_name is not None:
            return [("issue_menu", "1"), ("codeName", self.code_name)]
        return [("issue_menu", "1"), ("id", str(self.issue_id))]


StartSessionQueue = RepresentativeQueue | SessionKeyQueue | IssueQueue


def start_session_url(
    site: str,
    queue: StartSessionQueue,
    *,
    click_to_chat: bool = False,
    customer_name: str | None = None,
    customer_company: str | None = None,
    customer_company_code: str | None = None,
    customer_details: str | None = None,
    external_key: str | None = None,
    custom_fields: Mapping[str, str] | None = None,
) -> str:
    """The session generation API URL that starts a customer session in ``queue``.

    A full customer client session unless ``click_to_chat`` (sent as ``c2cjs=1``). The
    customer fields pre-fill the front-end survey; ``customer_details`` is the
    problem description.
    """
    customer = [
        ("customer.name", customer_name),
        ("customer.company", customer_company),
        ("customer.company_code", customer_company_code),
    ]
    for name, value in customer:
        _check_length(name, value, MAX_CUSTOMER_CHARS)
    customer.append(("customer.details", customer_details))
    pairs = [
        *queue.params(),
        *([("c2cjs", "1")] if click_to_chat else []),
        *((name, value) for name, value in customer if value is not None),
        *custom_field_params(custom_fields or {}, external_key=external_key),
    ]
    return f"https://{_host(site)}/api/start_session?{_encode(pairs)}"
