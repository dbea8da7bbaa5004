"""The Agiloft connector's settings and the options parsed from them.

Each setting names, in its help, what it replaces of the vendor's "BeyondTrust Extension"
(its Configure dialog, global variables and the fields it asks for).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from rsbridge.connectors.agiloft.tables import Names
from rsbridge.connectors.base import ConnectorSettings, Setting

SETTINGS: Final[Sequence[Setting]] = (
    Setting(
        "kb_url",
        "url",
        "The Agiloft server, e.g. https://example.agiloft.com (the REST interface is under "
        "/ewws/).",
        required=True,
    ),
    Setting("kb", "str", "The knowledge base's name (case-sensitive).", required=True),
    Setting(
        "auth",
        "str",
        "`password` (EWLogin with login and password: access and refresh tokens) or "
        "`client_credentials` (an OAuth2 client bound to a service user, token at /ewws/otoken).",
        default="password",
        choices=("password", "client_credentials"),
    ),
    Setting(
        "login",
        "str",
        'The integration user (auth = password); its groups must be under "Groups allowed '
        'for REST".',
    ),
    Setting("password", "str", "Its password.", secret=True),
    Setting("client_id", "str", "The OAuth2 client's id (auth = client_credentials)."),
    Setting("client_secret", "str", "The OAuth2 client's secret.", secret=True),
    Setting("language", "str", "Language of the REST calls ($lang).", default="en"),
    Setting(
        "timeout_seconds",
        "float",
        "Longest time one call may take, answer included (Agiloft pauses about 1 s after "
        "each call: WSDelay).",
        default=60.0,
    ),
    Setting("proxy", "url", "HTTP(S) proxy for calls to Agiloft.", plain_http_ok=True),
    Setting("verify_tls", "bool", "Verify Agiloft's TLS certificate.", default=True),
    Setting(
        "ca_file", "path", "PEM file of the CA certificates to trust instead of the public ones."
    ),
    Setting(
        "tables",
        "list",
        "Table renames, `<table>=<name>` (tables: case, people, teams, sessions); names are "
        "case-sensitive logical table names.",
        default=[],
    ),
    Setting(
        "fields",
        "list",
        "Column renames, `<table>.<column>=<name>` (docs/agiloft.md lists the columns).",
        default=[],
    ),
    Setting(
        "closed_states",
        "list",
        "Case statuses in which no session key is made (a status that cannot be read counts "
        "as closed too).",
        default=["Resolved", "Closed"],
    ),
    Setting(
        "attach_report",
        "bool",
        "Also attach the HTML report to the session record as a file (in the same call; a "
        "replay replaces it).",
        default=False,
    ),
    Setting(
        "write_session_key",
        "bool",
        "Write a generated session key and its URL into the case's key and URL fields.",
        default=True,
    ),
    Setting(
        "supported_portals",
        "list",
        "Import only sessions of these public portals (names). Empty: every portal.",
        default=[],
    ),
)


@dataclass(frozen=True, slots=True)
class Options:
    """What the connector does, parsed once from the settings."""

    names: Names
    closed: frozenset[str]
    attach: bool
    write_key: bool
    portals: frozenset[str]


def parse_options(config: ConnectorSettings) -> Options:
    """The options of ``config``; ConfigurationError names a bad rename."""
    c: Any = config
    return Options(
        names=Names.build(c.tables or (), c.fields or ()),
        closed=frozenset(s.strip().casefold() for s in c.closed_states or () if s.strip()),
        attach=bool(c.attach_report),
        write_key=bool(c.write_session_key),
        portals=frozenset(p.strip().casefold() for p in c.supported_portals or () if p.strip()),
    )
