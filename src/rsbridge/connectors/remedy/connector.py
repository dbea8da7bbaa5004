"""The Remedy connector: sessions into rsbridge's session forms and work info, actions.

* Tickets are incidents, changes and service requests, named by their number
  (``INC000000000430``, ``CRQ...``, ``REQ...``; the prefix says which, per
  ``number_prefixes``). :attr:`Ticket.id` is the number: work info and the session
  forms name a ticket by it.
* A session becomes entries of the session forms and work info entries
  (:mod:`~rsbridge.connectors.remedy.imports`), once only.
* Auto-create makes an incident through ``HPD:IncidentInterface_Create``, once per key:
  a marker in its Detailed Description is searched before it is created.
* Actions: the ticket's status (closed statuses refuse keys), assignee login (the
  representative), customer, and configuration item (a CMDB computer system, for
  Jump); the rep-console custom links (Mid-Tier, and the Smart Recorder link that makes
  an incident from a live session).
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.base import (
    CheckResult,
    ConfigurationItem,
    Connector,
    ConnectorSettings,
    CustomLink,
    NoteDelivery,
    SessionDelivery,
    Setting,
    SurveyDelivery,
    Ticket,
    TicketContext,
    WriteResult,
)
from rsbridge.connectors.remedy.client import (
    ANY_ENTRY,
    FormMissingError,
    RemedyClient,
    equals,
    field_ref,
)
from rsbridge.connectors.remedy.forms import SESSION_FORMS
from rsbridge.connectors.remedy.imports import WORK_LOGS, Importer
from rsbridge.connectors.remedy.records import row_key, session_key
from rsbridge.connectors.remedy.settings import SETTINGS, parse_options
from rsbridge.connectors.transport import peer_client
from rsbridge.errors import CheckFailedError, ConnectorPermanentError, TicketNotFoundError

_NUMBER = re.compile(r"([A-Za-z]{3})(\d{1,12})")
INCIDENT_NUMBER_ID = 1000000161
"""The ITSM field id of Incident Number (the Mid-Tier link searches by it)."""


@dataclass(frozen=True, slots=True)
class TicketForm:
    """Where one kind of ticket is read: form, number field, and the fields actions read."""

    form: str
    number: str
    context: tuple[str, ...]


TICKET_FORMS = {
    "incident": TicketForm(
        "HPD:IncidentInterface",
        "Incident Number",
        ("Status", "First Name", "Last Name", "Internet E-mail", "Assigned Group"),
    ),
    "change": TicketForm("CHG:Infrastructure Change", "Infrastructure Change ID", ("Status",)),
    "request": TicketForm("SRM:Request", "Request Number", ("Status", "First Name", "Last Name")),
}
CREATE_FORM = "HPD:IncidentInterface_Create"
BASE_INCIDENT_FORM = "HPD:Help Desk"
# sic: the ITSM incident field's real name, with an underscore on the create form
# (demisto's create_incident_request) and a space on the interface form (get_incident.json).
CREATE_DETAIL_FIELD = "Detailed_Decription"
DETAIL_FIELD = "Detailed Decription"
CREATE_NAME_FIELDS = ("First_Name", "Last_Name")


class RemedyConnector(Connector):
    """Writes sessions into an AR System server (Helix ITSM); serves the actions."""

    name = "remedy"
    title = "BMC Remedy"
    settings: ClassVar[Sequence[Setting]] = SETTINGS
    default_ticket_from: ClassVar[tuple[str, ...]] = ("external_key",)

    def __init__(self, config: ConnectorSettings, *, http: httpx.AsyncClient | None = None):
        c: Any = config
        self.options = parse_options(config)
        own = http is None
        if http is None:
            http = peer_client(c, connector="remedy")
        super().__init__(config, http=http)
        self._own_http = own
        self.client = RemedyClient(
            str(c.server_url),
            str(c.username),
            c.password,
            self.http,
            timeout=float(c.timeout_seconds),
            auth_string=c.auth_string or None,
        )
        self.importer = Importer(self.client, self.options)
        self._creating: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self.midtier_url = str(c.midtier_url or c.server_url).rstrip("/")
        self.ar_server = str(c.ar_server or httpx.URL(self.client.server_url).host)

    async def aclose(self) -> None:
        """Release the AR token, then what this instance owns."""
        await self.client.logout()
        await super().aclose()

    # --- check ---------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        """Log in, read an incident, and check every form and field the connector reads or
        writes: the session forms, the work info forms of the configured ticket kinds, the
        incident forms (actions and auto-create) and the CMDB computer form (Jump)."""
        await self.client.search(
            TICKET_FORMS["incident"].form,
            ANY_ENTRY,
            ("Incident Number",),
            limit=1,
            what="read an incident",
        )
        problems: list[str] = []
        wanted: dict[str, list[str]] = {}
        options = self.options
        kinds = set(options.prefixes.values())
        for kind in sorted(kinds):
            form = TICKET_FORMS[kind]
            fields = [form.number, *form.context]
            if kind == "incident":
                fields += [options.assignee_field, options.ci_field, DETAIL_FIELD, "Submitter"]
            wanted[form.form] = fields
        if "incident" in kinds:
            wanted[CREATE_FORM] = list(
                dict.fromkeys(
                    [*CREATE_NAME_FIELDS, "Description", CREATE_DETAIL_FIELD,
                     *options.create_fields]
                )
            )  # fmt: skip
            wanted[options.computer_form] = ["Name", "HostName"]
            wanted[BASE_INCIDENT_FORM] = ["Incident Number"]
        if options.sessions:
            for session_form in SESSION_FORMS:
                wanted[session_form.name] = [f.name for f in session_form.fields]
        if options.work_info:
            for kind, log in WORK_LOGS.items():
                if kind not in kinds:
                    continue
                fields = [log.id_field, log.parent, "Work Log Type", "Description"]
                fields += ["Detailed Description", "View Access", "Secure Work Log"]
                if options.source:
                    fields.append("Communication Source")
                if options.attach:
                    fields.append("z2AF Work Log01")
                wanted[log.form] = fields
        for form_name, fields in wanted.items():
            try:
                missing = await self.client.missing_fields(form_name, fields)
            except FormMissingError:
                problems.append(f"form {form_name} is missing")
                continue
            problems += [f"field {form_name} : {name} is missing" for name in missing]
        if problems:
            fix = (
                "import the session forms (`rsbridge remedy forms`, docs/remedy-forms.md), "
                "give the integration user access to every form named, and check the settings "
                "that name ITSM fields (assignee_field, ci_field, computer_form, create_fields)"
            )
            raise CheckFailedError(
                f"{self.client.where}: {len(problems)} problems found",
                [*problems, f"fix: {fix}"],
            )
        return CheckResult(f"AR server {self.client.transport.host}, user {self.client.username}")

    # --- tickets -------------------------------------------------------------------------

    def _kind(self, reference: str, source: str) -> tuple[str, str]:
        """The ticket kind and the full number of ``reference`` (``INC430`` is
        ``INC000000000430``); TicketNotFoundError when it is not a number we know."""
        ref = reference.strip()
        match = _NUMBER.fullmatch(ref)
        if match is None:
            raise TicketNotFoundError(
                f"{source} {ref[:40]!r} is not a Remedy ticket number (e.g. INC000000000430)"
            )
        prefix = match[1].upper()
        kind = self.options.prefixes.get(prefix)
        if kind is None:
            known = ", ".join(sorted(self.options.prefixes))
            raise TicketNotFoundError(f"{source} {ref!r}: prefix {prefix} is not one of {known}")
        return kind, f"{prefix}{match[2].zfill(12)}"

    def _ticket(self, kind: str, number: str) -> Ticket:
        return Ticket(id=number, number=number, url=self._ticket_url(kind, number), kind=kind)

    def ticket_link(self, ticket_id: str, detail: Mapping[str, str]) -> str | None:
        """The ticket's form on the Mid-Tier (``/arsys/forms/<server>/<form>/``, the form
        of the vendor guide's links), searched by its number; None for an id that is not
        a ticket number of a known kind."""
        kind = detail.get("kind", "incident")
        if kind not in TICKET_FORMS or not _NUMBER.fullmatch(ticket_id):
            return None
        return self._ticket_url(kind, ticket_id)

    def _ticket_url(self, kind: str, number: str) -> str:
        form = TICKET_FORMS[kind]
        base_form = "HPD:Help Desk" if kind == "incident" else form.form
        return (
            f"{self.midtier_url}/arsys/forms/{quote(self.ar_server, safe='')}/"
            f"{quote(base_form, safe='')}/?mode=search&"
            f"qual={quote(equals(form.number, number), safe='')}"
        )  # the number is validated (letters and digits): this qualification is rsbridge's

    async def _read(
        self, reference: str, source: str, extra: Sequence[str] = ()
    ) -> tuple[Ticket, dict[str, Any]]:
        kind, number = self._kind(reference, source)
        form = TICKET_FORMS[kind]
        fields = (form.number, *extra)
        try:
            found = await self.client.search(
                form.form, equals(form.number, number), fields, limit=1, what=f"find {number}"
            )
        except FormMissingError:
            # A site without this application (no SRM, say): a key naming such a ticket
            # names nothing here, and the next association source is tried.
            raise TicketNotFoundError(
                f"{source} {number}: this AR server has no form {form.form}"
            ) from None
        if not found and kind == "incident":
            found = await self._by_entry_id(number, fields)
        if not found:
            raise TicketNotFoundError(f"Remedy has no {kind} {number}")
        actual = str(found[0].get(form.number) or number)
        return self._ticket(kind, actual), found[0]

    async def _by_entry_id(self, entry_id: str, fields: Sequence[str]) -> list[dict[str, Any]]:
        """An incident named by its HPD:Help Desk entry id (field 1) rather than its
        number: two searches, only when the number found nothing."""
        base = await self.client.search(
            BASE_INCIDENT_FORM,
            equals("1", entry_id),
            (TICKET_FORMS["incident"].number,),
            limit=1,
            what=f"find entry {entry_id}",
        )
        number = str(base[0].get(TICKET_FORMS["incident"].number) or "") if base else ""
        if not number:
            return []
        form = TICKET_FORMS["incident"]
        return await self.client.search(
            form.form, equals(form.number, number), fields, limit=1, what=f"find {number}"
        )

    async def find_ticket(self, reference: str, *, source: str = "external_key") -> Ticket:
        """An incident, change or service request by its number (an incident also by its
        HPD:Help Desk entry id)."""
        ticket, _values = await self._read(reference, source)
        return ticket

    async def create_ticket(
        self, session: SupportSession, fields: Mapping[str, str], *, key: str
    ) -> Ticket:
        """An incident for the session, once per ``key``: found by the marker in its
        Detailed Description, else created through HPD:IncidentInterface_Create."""
        lock = self._creating.get(key)
        if lock is None:
            lock = self._creating[key] = asyncio.Lock()
        # One creation per key at a time in this process (the join job and the auto-create
        # link may ask together); the marker search finds what an earlier one made.
        async with lock:
            return await self._create_incident(session, fields, key)

    async def _create_incident(
        self, session: SupportSession, fields: Mapping[str, str], key: str
    ) -> Ticket:
        marker = f"rsbridge-ref-{row_key(key, 'incident')[:24]}"
        form = TICKET_FORMS["incident"]
        lookup = (
            f"{equals('Submitter', self.client.username)} AND "
            f'{field_ref(DETAIL_FIELD)} LIKE "%{marker}%"'
        )
        found = await self.client.search(
            form.form, lookup, (form.number,), limit=1, what="find the created incident"
        )
        if found:
            return self._ticket("incident", str(found[0].get(form.number) or ""))
        customer = session.primary_customer.name if session.primary_customer else ""
        first, _, last = (customer or "Remote Support customer").strip().partition(" ")
        values: dict[str, Any] = {
            "First_Name": first[:30] or "Remote",
            "Last_Name": (last or first)[:30] or "Support",
            "Description": f"Remote Support session with {customer or 'a customer'}"[:100],
            **self.options.create_fields,
            **fields,
            CREATE_DETAIL_FIELD: _details(session) + f"\n\n({marker})",
        }
        _id, created = await self.client.create_returning(
            CREATE_FORM, values, (form.number,), what="create an incident"
        )
        number = str(created.get(form.number) or "")
        if not number:
            raise ConnectorPermanentError(
                f"{self.client.where}: the created incident's number was not answered"
            )
        return self._ticket("incident", number)

    def created_tickets_trusted(self) -> bool:
        """An incident rsbridge creates names its customer from the name the customer
        typed (First_Name, Last_Name), unless ``create_fields`` pins both: trusted only
        then (otherwise a customer could put another person on it, who would receive its
        public work info)."""
        pinned = self.options.create_fields
        return all(pinned.get(name) for name in CREATE_NAME_FIELDS)

    # --- writes --------------------------------------------------------------------------

    def _unsupported_portal(self, session: SupportSession) -> WriteResult | None:
        portals = self.options.portals
        site = session.public_site
        if portals and (site is None or site.name.casefold() not in portals):
            name = site.name if site else "(none)"
            return WriteResult("", {"skipped": f"portal {name!r} is not in supported_portals"})
        return None

    async def write_session_report(
        self, ticket: Ticket | None, delivery: SessionDelivery
    ) -> WriteResult:
        """The session's entries and work info (see :mod:`.imports`), once only."""
        skipped = self._unsupported_portal(delivery.session)
        if skipped is not None:
            return skipped
        detail = await self.importer.write_session(ticket, delivery)
        key = session_key(delivery.appliance_id, delivery.integration, delivery.session.lsid)
        return WriteResult(key, detail)

    async def write_survey(self, ticket: Ticket | None, delivery: SurveyDelivery) -> WriteResult:
        """The survey's entry and work info, once only."""
        skipped = self._unsupported_portal(delivery.session)
        if skipped is not None:
            return skipped
        detail = await self.importer.write_survey(ticket, delivery)
        return WriteResult(row_key(delivery.key, "survey"), detail)

    async def write_note(self, ticket: Ticket, note: NoteDelivery) -> WriteResult:
        """An internal work info entry, once per ``note.key``."""
        detail = await self.importer.write_note(ticket, note.key, note.text)
        return WriteResult(row_key(note.key, "note"), detail)

    # --- actions -------------------------------------------------------------------------

    async def ticket_context(self, reference: str) -> TicketContext:
        """The ticket with its status, assignee login, group, customer and CI."""
        kind, _number = self._kind(reference, "ticket")
        extra = list(TICKET_FORMS[kind].context)
        if kind == "incident":
            extra += [self.options.assignee_field, self.options.ci_field]
        ticket, values = await self._read(reference, "ticket", extra)
        state = _text(values.get("Status"))
        # Fail closed: a status the user cannot read must not let a key be made.
        closed = state is None or state.casefold() in self.options.closed
        name = " ".join(
            p for p in (_text(values.get("First Name")), _text(values.get("Last Name"))) if p
        )
        ci = None
        ci_name = _text(values.get(self.options.ci_field)) if kind == "incident" else None
        if ci_name:
            ci = await self._computer(ci_name)
        return TicketContext(
            ticket=ticket,
            state=state,
            closed=closed,
            assigned_rep=_text(values.get(self.options.assignee_field)),
            assigned_team=_text(values.get("Assigned Group")),
            caller_name=name or None,
            caller_email=_text(values.get("Internet E-mail")),
            configuration_item=ci,
            session_attributes={"external_key": ticket.number or ticket.id},
        )

    async def rep_username(self, user: str) -> str | None:
        """A Remedy login is taken as the appliance username (the seed's user setup)."""
        login = user.strip()
        return login or None

    async def _computer(self, name: str) -> ConfigurationItem | None:
        found = await self.client.search(
            self.options.computer_form,
            equals("Name", name),
            ("Request ID", "Name", "HostName"),
            limit=1,
            what="find a computer system",
        )
        if not found:
            return None
        values = found[0]
        return ConfigurationItem(
            str(values.get("Request ID") or ""),
            str(values.get("Name") or name),
            _text(values.get("HostName")),
        )

    async def find_configuration_item(self, reference: str) -> ConfigurationItem:
        """A CMDB computer system by name."""
        ref = reference.strip()
        ci = await self._computer(ref) if ref else None
        if ci is None:
            raise TicketNotFoundError(f"Remedy has no computer system named {ref[:60]!r}")
        return ci

    def custom_links(self, actions_url: str | None) -> list[CustomLink]:
        """The seed's rep-console links: the incident in the Mid-Tier, and Smart IT's
        Smart Recorder creating an incident from the live session."""
        return [
            # The key is a field value (F<id>=), not part of a qualification: a customer
            # who set the external key cannot widen the search the link opens.
            CustomLink(
                "Remedy incident (Mid-Tier)",
                f"{self.midtier_url}/arsys/forms/{quote(self.ar_server, safe='')}/"
                f"{quote('HPD:Help Desk', safe='')}/?mode=search&F{INCIDENT_NUMBER_ID}="
                "%SESSION.CUSTOM.EXTERNAL_KEY%",
            ),
            # Inferred, not in the seed: Smart IT opens a ticket by its display id.
            CustomLink(
                "Remedy incident (Smart IT)",
                f"{self.midtier_url}/ux/smart-it/#/incident/displayid/"
                "%SESSION.CUSTOM.EXTERNAL_KEY%",
            ),
            CustomLink(
                "Create Incident via BMC Smart IT",
                f"{self.midtier_url}/ux/smart-it/#/create/smart-recorder?"
                "customer=%CUSTOMER.NAME%&desc=%SESSION.DETAILS%",
            ),
        ]


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _details(session: SupportSession) -> str:
    customer = session.primary_customer
    lines = [f"Created by rsbridge for Remote Support session {session.lsid}."]
    if customer is not None and customer.name:
        lines.append(f"Customer: {customer.name}")
    return "\n".join(lines)


__all__ = ["RemedyConnector"]
