"""The Salesforce connector: sessions as records related to Cases, comments, actions.

* Tickets are Cases: found by 15- or 18-character id (key prefix ``500``) or by
  ``CaseNumber``; created (auto-create) with ``RS_Import_Key__c`` (found first) so a repeated
  creation names the same Case. Closed means ``IsClosed``.
* A session becomes records (:mod:`~rsbridge.connectors.salesforce.records`) and Case
  comments or Chatter posts, in two API calls (:mod:`~rsbridge.connectors.salesforce.imports`).
* Actions: the Case's context (status, owner, contact, the BeyondTrust username of its
  owner), the representative behind a Salesforce user, the rep-console custom links.

The external key rsbridge puts on sessions (keys, write-backs) is the Case id, as the
vendor's integration does, so the custom links open the Case.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.base import (
    CheckResult,
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
from rsbridge.connectors.salesforce.client import Credentials, SalesforceClient, soql_quote
from rsbridge.connectors.salesforce.imports import Importer, session_key
from rsbridge.connectors.salesforce.records import KEY_FIELD, import_key
from rsbridge.connectors.salesforce.schema import DEFAULT_OBJECTS, Schema
from rsbridge.connectors.salesforce.settings import SETTINGS, parse_options
from rsbridge.connectors.transport import peer_client
from rsbridge.errors import ConfigurationError, ConnectorPermanentError, TicketNotFoundError

_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_CASE_NUMBER = re.compile(r"\d{1,30}")
_CASE_PREFIX = "500"
_USER_PREFIX = "005"
_CASE_FIELDS = "Id, CaseNumber, Status, IsClosed, OwnerId, Subject, Contact.Name, Contact.Email"
_NEEDS = {
    "client_credentials": ("client_secret",),
    "password": ("client_secret", "username", "password"),
    "jwt_bearer": ("username", "private_key"),
}


class SalesforceConnector(Connector):
    """Writes sessions into a Salesforce org; serves the actions' Case lookups."""

    name = "salesforce"
    title = "Salesforce"
    settings: ClassVar[Sequence[Setting]] = SETTINGS
    default_ticket_from: ClassVar[tuple[str, ...]] = ("external_key", "rep_survey:case_number")

    def __init__(self, config: ConnectorSettings, *, http: httpx.AsyncClient | None = None):
        c: Any = config
        if not re.fullmatch(r"\d{2,3}\.0", str(c.api_version)) or float(c.api_version) < 46:
            # sObject Collections upsert by external id, which the import uses, is 46.0+.
            raise ConfigurationError(
                f"salesforce: api_version {c.api_version!r}: use 46.0 or later, e.g. 60.0"
            )
        missing = [n for n in _NEEDS[str(c.auth)] if getattr(c, n) in (None, "")]
        if missing:
            raise ConfigurationError(
                f"salesforce: auth = {c.auth!r} needs the settings {', '.join(missing)}"
            )
        own = http is None
        if http is None:
            http = peer_client(c, connector="salesforce")
        super().__init__(config, http=http)
        self._own_http = own
        self.schema = Schema.build(c.objects or (), c.fields or ())
        self.options = parse_options(config)
        self.client = SalesforceClient(
            str(c.login_url),
            Credentials(
                c.auth,
                str(c.client_id),
                client_secret=c.client_secret,
                username=c.username,
                password=c.password,
                security_token=c.security_token,
                private_key=c.private_key,
                audience=str(c.jwt_audience),
            ),
            self.http,
            timeout=c.timeout_seconds,
            api_version=str(c.api_version),
        )
        self.importer = Importer(self.client, self.schema, self.options)

    # --- check ---------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        """Log in, read a Case, and check every object and field the import writes."""
        await self.client.query("SELECT Id FROM Case LIMIT 1", what="read a Case")
        problems: list[str] = []
        objects = [o for o in DEFAULT_OBJECTS if self.options.records or o.standard]
        for obj in objects:
            api = self.schema.object(obj.logical)
            try:
                described = await self.client.describe(api)
            except TicketNotFoundError:
                problems.append(f"object {api} is missing")
                continue
            fields = {
                str(f.get("name", "")).lower(): f
                for f in described.get("fields", [])
                if isinstance(f, dict)
            }
            for field in obj.fields:
                name = self.schema.field(obj.logical, field.logical)
                found = fields.get(name.lower())
                if found is None:
                    problems.append(f"field {api}.{name} is missing")
                elif not obj.standard and not (found.get("createable") or found.get("updateable")):
                    problems.append(f"field {api}.{name} is not writable by the integration user")
        if problems:
            raise ConnectorPermanentError(
                f"{self.client.where}: {'; '.join(problems)}. Deploy the package "
                "(`rsbridge salesforce package`) and assign its permission set RS_Integration "
                "to the integration user"
            )
        used, allowed = self.client.api_usage or (0, 0)
        usage = f", API usage {used}/{allowed} today" if allowed else ""
        return CheckResult(f"org {self.client.where.split(' ', 1)[1]}{usage}")

    # --- tickets -------------------------------------------------------------------------

    def ticket_link(self, ticket_id: str, detail: Mapping[str, str]) -> str | None:
        """The Case in Lightning: ``<instance URL>/lightning/r/Case/<id>/view`` (the
        vendor guide's Lightning link)."""
        return f"{self.client.instance_url}/lightning/r/Case/{quote(ticket_id, safe='')}/view"

    def _ticket(self, record: Mapping[str, Any]) -> Ticket:
        case_id = str(record["Id"])
        return Ticket(
            id=case_id,
            number=str(record.get("CaseNumber") or "") or None,
            url=f"{self.client.instance_url}/lightning/r/Case/{case_id}/view",
            kind="Case",
        )

    async def find_ticket(self, reference: str, *, source: str = "external_key") -> Ticket:
        """A Case by 15- or 18-character id or by CaseNumber (``1026`` finds
        ``00001026``)."""
        ref = reference.strip()
        if _ID.fullmatch(ref) and not ref.isdigit():
            if not ref.startswith(_CASE_PREFIX):
                raise TicketNotFoundError(f"{source} {ref!r} is a Salesforce id, not a Case's")
            record = await self.client.get("Case", ref, ("Id", "CaseNumber"))
            if record is None:
                raise TicketNotFoundError(f"Salesforce has no Case with id {ref}")
            return self._ticket(record)
        if not _CASE_NUMBER.fullmatch(ref):
            raise TicketNotFoundError(f"{ref!r} is neither a Case id nor a Case number")
        numbers = sorted({ref, ref.zfill(8)})
        listed = ", ".join(soql_quote(n) for n in numbers)
        found = await self.client.query(
            f"SELECT Id, CaseNumber FROM Case WHERE CaseNumber IN ({listed})",
            what="find a Case",
        )
        if not found:
            raise TicketNotFoundError(f"Salesforce has no Case numbered {ref}")
        return self._ticket(found[0])

    async def create_ticket(
        self, session: SupportSession, fields: Mapping[str, str], *, key: str
    ) -> Ticket:
        """A Case for the session, once per ``key``: found by ``RS_Import_Key__c``, else
        inserted with it (a Case an agent has changed since is not written again)."""
        case_key = import_key(key, "case")
        # The Case field the package adds (``case.key``, RS_Import_Key__c unless renamed).
        key_field = self.schema.field("case", KEY_FIELD)
        lookup = f"SELECT Id, CaseNumber FROM Case WHERE {key_field} = {soql_quote(case_key)}"
        found = await self.client.query(lookup, what="find the created Case")
        if not found:
            values: dict[str, Any] = {
                "Subject": _subject(session),
                "Origin": "Remote Support",
                **fields,
                key_field: case_key,
            }
            try:
                await self.client.create("Case", values)
            except ConnectorPermanentError as exc:
                if "DUPLICATE_VALUE" not in exc.message:
                    raise
                # Another process created it first: that one is the session's Case.
            found = await self.client.query(lookup, what="read the created Case")
        if not found:
            raise ConnectorPermanentError(f"{self.client.where}: the created Case is not there")
        return self._ticket(found[0])

    # --- writes --------------------------------------------------------------------------

    def _unsupported_portal(self, session: SupportSession) -> WriteResult | None:
        """The vendor's Supported Public Portals: sessions of other portals are skipped."""
        portals = self.options.portals
        site = session.public_site
        if portals and (site is None or site.name.casefold() not in portals):
            name = site.name if site else "(none)"
            return WriteResult("", {"skipped": f"portal {name!r} is not in supported_portals"})
        return None

    def report_templates(self) -> frozenset[str]:
        """The chat and notes comments read those parts' text; an attached report, the
        whole report in its format. Nothing else is rendered."""
        needs = {"chat.txt", "notes.txt"}
        if self.options.attach is not None:
            needs.add("report.html" if self.options.attach == "html" else "report.txt")
        return frozenset(needs)

    async def write_session_report(
        self, ticket: Ticket | None, delivery: SessionDelivery
    ) -> WriteResult:
        """The session's records and comments (see :mod:`.imports`), once only."""
        skipped = self._unsupported_portal(delivery.session)
        if skipped is not None:
            return skipped
        detail = await self.importer.write_session(ticket, delivery)
        key = session_key(delivery.appliance_id, delivery.integration, delivery.session.lsid)
        return WriteResult(key, detail)

    async def write_survey(self, ticket: Ticket | None, delivery: SurveyDelivery) -> WriteResult:
        """The survey's answers, a comment and the Case transition, once only."""
        skipped = self._unsupported_portal(delivery.session)
        if skipped is not None:
            return skipped
        detail = await self.importer.write_survey(ticket, delivery)
        return WriteResult(import_key(delivery.key), detail)

    async def write_note(self, ticket: Ticket, note: NoteDelivery) -> WriteResult:
        """A private Case comment, once per ``note.key`` (its last line carries a marker)."""
        marker = f"rsbridge ref {import_key(note.key)[:16]}"
        written = await self.importer.write_note(ticket, note.text, marker)
        return WriteResult(marker, {} if written else {"already": "written"})

    # --- actions -------------------------------------------------------------------------

    def live_session_attributes(self, ticket: Ticket) -> dict[str, str]:
        """The Case id as the external key (what the vendor's buttons and links use)."""
        return {"external_key": ticket.id}

    async def ticket_context(self, reference: str) -> TicketContext:
        """The Case with its status, owner's representative and contact."""
        ticket = await self.find_ticket(reference)
        found = await self.client.query(
            f"SELECT {_CASE_FIELDS} FROM Case WHERE Id = {soql_quote(ticket.id)}",
            what="read the Case",
        )
        if not found:
            raise TicketNotFoundError(f"Salesforce has no Case {reference!r}")
        case = found[0]
        contact: dict[str, Any] = case["Contact"] if isinstance(case.get("Contact"), dict) else {}
        owner = str(case.get("OwnerId") or "")
        return TicketContext(
            ticket=ticket,
            state=str(case.get("Status") or "") or None,
            closed=case.get("IsClosed") is not False,  # unreadable: closed (fail closed)
            assigned_rep=await self.rep_username(owner) if owner.startswith(_USER_PREFIX) else None,
            caller_name=str(contact.get("Name") or "") or None,
            caller_email=str(contact.get("Email") or "") or None,
            session_attributes={"external_key": ticket.id},
        )

    async def rep_username(self, user: str) -> str | None:
        """The appliance username of a Salesforce user (id or username): the BeyondTrust
        Username field, else the username before its ``@``."""
        field = self.options.user_field
        column = "Id" if _ID.fullmatch(user) and user.startswith(_USER_PREFIX) else "Username"
        found = await self.client.query(
            f"SELECT Username, {field} FROM User WHERE {column} = {soql_quote(user)} LIMIT 1",
            what="find a user",
        )
        if not found:
            return None
        record = found[0]
        mapped = str(record.get(field) or "").strip()
        return mapped or str(record.get("Username") or "").split("@")[0] or None

    def custom_links(self, actions_url: str | None) -> list[CustomLink]:
        """The vendor guide's rep-console links to the Case (Classic and Lightning)."""
        base = self.client.instance_url or self.client.login_url
        return [
            CustomLink("Salesforce Case", f"{base}/%SESSION.CUSTOM.EXTERNAL_KEY%"),
            CustomLink(
                "Salesforce Case (Lightning)",
                f"{base}/lightning/r/Case/%SESSION.CUSTOM.EXTERNAL_KEY%/view",
            ),
        ]


def _subject(session: SupportSession) -> str:
    who = session.primary_customer.name if session.primary_customer else "a customer"
    return f"Remote Support session with {who}"[:255]


__all__ = ["SalesforceConnector"]
