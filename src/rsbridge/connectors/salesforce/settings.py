"""The Salesforce connector's settings and the options parsed from them.

Each setting names, in its help, the vendor's setting it replaces (the Salesforce guide's
appliance record and middleware plugin), so an installation can be carried over.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from rsbridge.connectors.base import ConnectorSettings, Setting
from rsbridge.connectors.salesforce.client import DEFAULT_API_VERSION
from rsbridge.connectors.salesforce.schema import RENAME_SETTINGS
from rsbridge.errors import ConfigurationError

SETTINGS: Final[Sequence[Setting]] = (
    Setting(
        "login_url",
        "url",
        "Where to log in: the org's My Domain URL (https://<domain>.my.salesforce.com; "
        "required for client credentials), or https://login.salesforce.com / "
        "https://test.salesforce.com.",
        required=True,
    ),
    Setting(
        "auth",
        "str",
        "`client_credentials` (recommended: a connected app with a run-as user), "
        "`jwt_bearer` (a certificate on the connected app) or `password` (username, password "
        "and security token; blocked in orgs made since Summer '23 unless allowed).",
        default="client_credentials",
        choices=("client_credentials", "jwt_bearer", "password"),
    ),
    Setting("client_id", "str", "The connected app's consumer key.", required=True),
    Setting("client_secret", "str", "The connected app's consumer secret.", secret=True),
    Setting("username", "str", "The integration user (jwt_bearer, password)."),
    Setting("password", "str", "The integration user's password (password).", secret=True),
    Setting(
        "security_token",
        "str",
        "The integration user's security token, appended to the password (password).",
        secret=True,
    ),
    Setting(
        "private_key",
        "str",
        "PEM private key of the certificate uploaded to the connected app (jwt_bearer).",
        secret=True,
    ),
    Setting(
        "jwt_audience",
        "str",
        "The JWT `aud`: https://login.salesforce.com, or https://test.salesforce.com for a "
        "sandbox.",
        default="https://login.salesforce.com",
    ),
    Setting("api_version", "str", "REST API version.", default=DEFAULT_API_VERSION),
    Setting(
        "timeout_seconds",
        "float",
        "Longest time one call may take, answer included.",
        default=30.0,
    ),
    Setting(
        "proxy",
        "url",
        "HTTP(S) proxy for calls to Salesforce.",
        plain_http_ok=True,
    ),
    Setting("verify_tls", "bool", "Verify Salesforce's TLS certificate.", default=True),
    Setting(
        "ca_file", "path", "PEM file of the CA certificates to trust instead of the public ones."
    ),
    Setting(
        "write_session_records",
        "bool",
        "Write the session and its children as records (the Case's Remote Support Sessions "
        "related list).",
        default=True,
    ),
    Setting(
        "comments",
        "str",
        "Where chat, notes and the session-end notice go on the Case: `case_comment`, "
        "`feed_item` (Chatter) or `none`.",
        default="case_comment",
        choices=("case_comment", "feed_item", "none"),
    ),
    Setting(
        "public_comments",
        "bool",
        "Make those comments visible to the customer (CaseComment IsPublished, FeedItem "
        "AllUsers); never on a Case a customer-set reference chose.",
        default=False,
    ),
    Setting("log_chat_transcript", "bool", "Add the chat transcript.", default=True),
    Setting("log_session_notes", "bool", "Add the session notes.", default=True),
    Setting("log_session_end", "bool", "Add a session-end notice.", default=True),
    Setting("log_surveys", "bool", "Add each exit survey as a comment too.", default=False),
    Setting(
        "attach_report",
        "bool",
        "Attach the rendered report to the Case as a file (ContentVersion).",
        default=False,
    ),
    Setting(
        "attachment_format",
        "str",
        "Format of the attached report.",
        default="html",
        choices=("html", "txt"),
    ),
    Setting(
        "supported_portals",
        "list",
        "Import only sessions of these public portals (names; the vendor's Supported Public "
        "Portals). Empty: every portal.",
        default=[],
    ),
    Setting(
        "recording_base_url",
        "url",
        "External Recording Base URL: the session's recording link becomes this URL with "
        "`lsid=<lsid>` appended.",
    ),
    Setting(
        "survey_state_rules",
        "list",
        "Case transitions from survey answers, `<kind>:<question>=<answer> -> <Status>` with "
        "kind `customer` or `rep` (what the vendor's Apex trigger does); applied once, only on "
        "a Case a trusted reference chose.",
        default=[],
    ),
    Setting(
        "user_match_field",
        "str",
        "The User field holding the representative's appliance username (the BeyondTrust "
        "Username field); the Salesforce username before its `@` is tried too.",
        default="RS_Username__c",
    ),
    *RENAME_SETTINGS,
)

_RULE = re.compile(r"^(customer|rep):([^=]+)=(.*?)\s*->\s*(.+)$")
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class StateRule:
    """A survey answer that moves the Case to ``status``."""

    kind: str
    question: str
    answer: str
    status: str


@dataclass(frozen=True, slots=True)
class Options:
    """What the import does, parsed once from the settings."""

    records: bool
    comments: str
    public: bool
    chat: bool
    notes: bool
    end: bool
    surveys: bool
    attach: str | None
    """The attached report's format (``html``, ``txt``), or None: no file."""
    portals: frozenset[str]
    recording_base_url: str | None
    rules: tuple[StateRule, ...]
    user_field: str


def parse_options(config: ConnectorSettings) -> Options:
    """The options of ``config``; ConfigurationError names a bad rule or field name."""
    c: Any = config
    rules = []
    for item in c.survey_state_rules or ():
        match = _RULE.match(str(item).strip())
        if match is None:
            raise ConfigurationError(
                f"salesforce survey_state_rules: {item!r} is not "
                "<customer|rep>:<question>=<answer> -> <Status>"
            )
        kind, question, answer, status = (part.strip() for part in match.groups())
        rules.append(StateRule(kind, question, answer, status))
    user_field = str(c.user_match_field or "")
    if not _FIELD_NAME.match(user_field):
        raise ConfigurationError(f"salesforce user_match_field: {user_field!r} is not a field name")
    return Options(
        records=bool(c.write_session_records),
        comments=str(c.comments),
        public=bool(c.public_comments),
        chat=bool(c.log_chat_transcript),
        notes=bool(c.log_session_notes),
        end=bool(c.log_session_end),
        surveys=bool(c.log_surveys),
        attach=str(c.attachment_format) if c.attach_report else None,
        portals=frozenset(p.strip().casefold() for p in c.supported_portals or () if p.strip()),
        recording_base_url=str(c.recording_base_url).rstrip("/") if c.recording_base_url else None,
        rules=tuple(rules),
        user_field=user_field,
    )
