"""The Remedy connector's settings and the options parsed from them.

Each setting names, in its help, the vendor plugin setting it replaces (the seed's "BMC
Remedy instance" section), in REST terms: the plugin spoke SOAP to the Mid-Tier's
``ARService``; rsbridge speaks the AR System REST API (AR 9.1 and later, Helix ITSM) to
the AR server's REST port.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from rsbridge.connectors.base import ConnectorSettings, Setting
from rsbridge.errors import ConfigurationError

DEFAULT_CLOSED = ("Resolved", "Closed", "Cancelled", "Completed", "Rejected")
"""Incident, change and request statuses in which no session key is made."""

DEFAULT_CREATE_FIELDS = (
    "Impact=4-Minor/Localized",
    "Urgency=4-Low",
    "Service_Type=User Service Restoration",
    "Reported Source=Other",
    "Status=Assigned",
)
"""Values every incident created through ``HPD:IncidentInterface_Create`` needs (BMC's
create example, itsm-apis.md 3.3); names and customer come from the session."""

SETTINGS: Final[Sequence[Setting]] = (
    Setting(
        "server_url",
        "url",
        "The AR server's REST endpoint, e.g. https://remedy.example.com:8008 (replaces "
        '"BMC Remedy Services URL", the Mid-Tier\'s ARService address).',
        required=True,
    ),
    Setting("username", "str", 'The API account ("BMC Remedy Username").', required=True),
    Setting("password", "str", 'Its password ("BMC Remedy Password").', secret=True),
    Setting(
        "auth_string",
        "str",
        "The authentication string some AR servers require at login (authString), e.g. a "
        "Windows domain.",
    ),
    Setting(
        "ar_server",
        "str",
        'The AR server\'s name ("BMC Remedy AR Server"): used in the Mid-Tier link to an '
        "incident; the REST API itself does not need it.",
    ),
    Setting(
        "midtier_url",
        "url",
        "The Mid-Tier (and Smart IT) base URL, e.g. https://midtier.example.com:8080, for the "
        "rep-console links. Default: server_url's host.",
    ),
    Setting(
        "timeout_seconds",
        "float",
        "Longest time one call may take, answer included.",
        default=30.0,
    ),
    Setting("proxy", "url", "HTTP(S) proxy for calls to the AR server.", plain_http_ok=True),
    Setting(
        "verify_tls",
        "bool",
        "Verify the AR server's TLS certificate (the vendor's \"Allow Invalid Certificates\", "
        "inverted).",
        default=True,
    ),
    Setting(
        "ca_file", "path", "PEM file of the CA certificates to trust instead of the public ones."
    ),
    Setting(
        "storage",
        "str",
        '"Session Reports Storage": `sessions` (the BeyondTrust Sessions forms, shown on '
        "the incident), `work_info` (work info entries), or `both`.",
        default="both",
        choices=("sessions", "work_info", "both"),
    ),
    Setting(
        "work_info_source",
        "str",
        '"Work Info Source" of the entries (e.g. Email, Phone, Web, Other): the '
        "Communication Source field.",
        default="Other",
    ),
    Setting(
        "work_info_type",
        "str",
        '"Work Info Type" of the entries, as AR displays it (e.g. General Information, '
        "Customer Communication, Working Log).",
        default="General Information",
    ),
    Setting(
        "work_info_public",
        "bool",
        '"Publish as Public Notes": View Access Public (never on a ticket a customer-set '
        "reference chose).",
        default=False,
    ),
    Setting("work_info_locked", "bool", '"Lock Log": Secure Work Log Yes.', default=False),
    Setting(
        "log_chat_transcript",
        "bool",
        "Put the chat transcript in the session's work info entry.",
        default=True,
    ),
    Setting("log_session_notes", "bool", "Put the session notes in it.", default=True),
    Setting("log_session_end", "bool", "End it with a session-end notice.", default=True),
    Setting("log_surveys", "bool", "A work info entry with each exit survey.", default=True),
    Setting(
        "attach_report",
        "bool",
        "Attach the rendered report to the session's first work info entry (multipart).",
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
        "number_prefixes",
        "list",
        "Ticket-number prefixes an external key may use, `<prefix>=<kind>` with kind "
        "incident, change or request.",
        default=["INC=incident", "CRQ=change", "REQ=request"],
    ),
    Setting(
        "closed_states",
        "list",
        "Ticket statuses in which no session key is made (a status that cannot be read "
        "counts as closed too).",
        default=list(DEFAULT_CLOSED),
    ),
    Setting(
        "assignee_field",
        "str",
        "Incident field holding the assignee's login, which is taken as the appliance "
        "username of the representative (the seed's user mapping).",
        default="Assignee Login ID",
    ),
    Setting(
        "ci_field",
        "str",
        "Incident field naming its configuration item (Jump looks it up in the CMDB).",
        default="HPD_CI",
    ),
    Setting(
        "computer_form",
        "str",
        "CMDB form of computer systems (name and host name).",
        default="BMC.CORE:BMC_ComputerSystem",
    ),
    Setting(
        "create_fields",
        "list",
        "Auto-create: `<field>=<value>` of HPD:IncidentInterface_Create (static values; "
        "[association] create_fields overrides them). Pin First_Name and Last_Name to a "
        "People record (a generic customer) for created incidents to count as trusted; "
        "otherwise the customer's typed name is used and the incident gets internal work "
        "info only.",
        default=list(DEFAULT_CREATE_FIELDS),
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
    """What the import does, parsed once from the settings."""

    storage: str
    source: str
    work_type: str
    public: bool
    locked: bool
    chat: bool
    notes: bool
    end: bool
    surveys: bool
    attach: str | None
    """The attached report's format (``html``, ``txt``), or None: no file."""
    prefixes: Mapping[str, str]
    """Upper-case number prefix to ticket kind (``INC`` -> ``incident``)."""
    closed: frozenset[str]
    assignee_field: str
    ci_field: str
    computer_form: str
    create_fields: Mapping[str, str]
    portals: frozenset[str]

    @property
    def sessions(self) -> bool:
        """Write the session forms."""
        return self.storage in ("sessions", "both")

    @property
    def work_info(self) -> bool:
        """Write work info entries."""
        return self.storage in ("work_info", "both")


KINDS = ("incident", "change", "request")


def pairs(items: Sequence[str] | None, setting: str) -> dict[str, str]:
    """``name=value`` items as a dictionary; ConfigurationError names a bad item."""
    found: dict[str, str] = {}
    for item in items or ():
        name, sep, value = str(item).partition("=")
        if not sep or not name.strip():
            raise ConfigurationError(f"remedy {setting}: {item!r} is not <name>=<value>")
        found[name.strip()] = value.strip()
    return found


def parse_options(config: ConnectorSettings) -> Options:
    """The options of ``config``; ConfigurationError names a bad value."""
    c: Any = config
    prefixes = {k.upper(): v for k, v in pairs(c.number_prefixes, "number_prefixes").items()}
    for prefix, kind in prefixes.items():
        if kind not in KINDS or not prefix.isalpha():
            raise ConfigurationError(
                f"remedy number_prefixes: {prefix}={kind}: use letters = one of {', '.join(KINDS)}"
            )
    for name in ("assignee_field", "ci_field", "computer_form", "work_info_type"):
        value = str(getattr(c, name) or "")
        if not value.strip() or "'" in value or '"' in value:
            raise ConfigurationError(f"remedy {name}: {value!r} is not a field or form name")
    return Options(
        storage=str(c.storage),
        source=str(c.work_info_source or ""),
        work_type=str(c.work_info_type),
        public=bool(c.work_info_public),
        locked=bool(c.work_info_locked),
        chat=bool(c.log_chat_transcript),
        notes=bool(c.log_session_notes),
        end=bool(c.log_session_end),
        surveys=bool(c.log_surveys),
        attach=str(c.attachment_format) if c.attach_report else None,
        prefixes=prefixes,
        closed=frozenset(s.strip().casefold() for s in c.closed_states or () if s.strip()),
        assignee_field=str(c.assignee_field),
        ci_field=str(c.ci_field),
        computer_form=str(c.computer_form),
        create_fields=pairs(c.create_fields, "create_fields"),
        portals=frozenset(p.strip().casefold() for p in c.supported_portals or () if p.strip()),
    )
