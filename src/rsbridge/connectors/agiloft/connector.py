"""The Agiloft connector: sessions into the BeyondTrust Session Details table, actions.

* Tickets are support cases, named by their record id (``42``).
* A session is one record of the session details table, written with one ``EWUpsert``
  matched on the session id (the LSID): details, the chat transcript and the rendered HTML
  report, linked to its case and to the Agiloft user behind its representative. A replay
  rewrites the same record. ``attach_report`` adds the report as a file in the same call.
* A survey goes into the same record's survey column (read first, so a second survey of
  the same kind is added, not lost: two calls).
* Notes (session keys generated, ...) are appended to the case's notes column, found
  there first by a marker.
* Actions: the case's status (closed statuses refuse keys), assigned person (as a
  representative: the user's BeyondTrust username, else their login), assigned team, the
  representative-or-team field (assignment mode 5), customer, and the Jump Client search
  string; a generated key and its URL are written into the case's fields.

Agiloft pauses about a second after every call (``WSDelay``): representatives' user
lookups are cached for :data:`USER_CACHE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import httpx

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.agiloft.client import (
    AgiloftClient,
    ColumnMissingError,
    FileUpload,
    search_value,
)
from rsbridge.connectors.agiloft.records import kb_time, session_values
from rsbridge.connectors.agiloft.settings import SETTINGS, parse_options
from rsbridge.connectors.agiloft.tables import TABLES
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
from rsbridge.connectors.text import digest_key, safe_filename
from rsbridge.connectors.transport import peer_client
from rsbridge.errors import (
    CheckFailedError,
    ConfigurationError,
    ConnectorPermanentError,
    ConnectorRetryableError,
    TicketNotFoundError,
)

USER_CACHE_SECONDS = 600.0
CASE_CONTEXT = (
    "status",
    "summary",
    "customer_name",
    "customer_email",
    "assigned_person",
    "assigned_team",
    "representative",
    "jump_criteria",
)


class AgiloftConnector(Connector):
    """Writes sessions into an Agiloft KB; serves the actions' case lookups."""

    name = "agiloft"
    title = "Agiloft"
    settings: ClassVar[Sequence[Setting]] = SETTINGS
    default_ticket_from: ClassVar[tuple[str, ...]] = ("external_key",)

    def __init__(self, config: ConnectorSettings, *, http: httpx.AsyncClient | None = None):
        c: Any = config
        needs = {
            "password": ("login", "password"),
            "client_credentials": ("client_id", "client_secret"),
        }
        missing = [n for n in needs[str(c.auth)] if getattr(c, n) in (None, "")]
        if missing:
            raise ConfigurationError(
                f"agiloft: auth = {c.auth!r} needs the settings {', '.join(missing)}"
            )
        self.options = parse_options(config)
        own = http is None
        if http is None:
            http = peer_client(c, connector="agiloft")
        super().__init__(config, http=http)
        self._own_http = own
        oauth = (str(c.client_id), c.client_secret) if c.auth == "client_credentials" else None
        self.client = AgiloftClient(
            str(c.kb_url),
            str(c.kb),
            str(c.login or c.client_id),
            c.password,
            self.http,
            timeout=float(c.timeout_seconds),
            language=str(c.language or "en"),
            oauth=oauth,
        )
        self.names = self.options.names
        self._users: dict[str, tuple[float, str | None]] = {}
        self._user_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def aclose(self) -> None:
        """End the token, then release what this instance owns."""
        await self.client.logout()
        await super().aclose()

    def _col(self, table: str, logical: str) -> str:
        return self.names.column(table, logical)

    def _table(self, logical: str) -> str:
        return self.names.table(logical)

    # --- check ---------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        """Log in and check every table and column the connector reads or writes."""
        problems: list[str] = []
        for table in TABLES:
            name = self._table(table.logical)
            columns = [self._col(table.logical, c.logical) for c in table.columns]
            try:
                missing = await self.client.missing_columns(name, columns)
            except ColumnMissingError:
                problems.append(f"table {name} is missing")
                continue
            problems += [f"column {name}.{column} is missing" for column in missing]
        if problems:
            raise CheckFailedError(
                f"{self.client.where}: {len(problems)} problems found",
                [
                    *problems,
                    "fix: create them (docs/agiloft.md, `rsbridge agiloft setup`) or set the "
                    "tables and fields settings",
                ],
            )
        return CheckResult(f"KB {self.client.kb} on {self.client.transport.host}")

    # --- tickets -------------------------------------------------------------------------

    def _ticket(self, case_id: str) -> Ticket:
        return Ticket(id=case_id, number=case_id, kind=self._table("case"))

    async def _case(self, reference: str, source: str) -> tuple[Ticket, dict[str, Any]]:
        ref = reference.strip()
        if not ref.isdigit() or len(ref) > 12:
            raise TicketNotFoundError(f"{source} {ref[:40]!r} is not an Agiloft case id")
        fields = [self._col("case", name) for name in CASE_CONTEXT]
        found = await self.client.search(
            self._table("case"),
            f"id={search_value(ref)}",
            ["id", *fields],
            limit=1,
            what=f"find case {ref}",
        )
        if not found:
            raise TicketNotFoundError(f"Agiloft has no case {ref}")
        return self._ticket(str(found[0].get("id") or ref)), found[0]

    async def find_ticket(self, reference: str, *, source: str = "external_key") -> Ticket:
        """A support case by record id."""
        ticket, _values = await self._case(reference, source)
        return ticket

    async def create_ticket(
        self, session: SupportSession, fields: Mapping[str, str], *, key: str
    ) -> Ticket:
        """A case for the session, once per ``key``: found by the case's import key column,
        else made with an EWUpsert matched on it (two creations at once make one case)."""
        import_key = self._col("case", "import_key")
        found = await self.client.search(
            self._table("case"),
            f"{import_key}={search_value(digest_key(key))}",
            ["id"],
            limit=1,
            what="find the created case",
        )
        if found and str(found[0].get("id") or "").isdigit():
            # Made before (a retry, or the join and the link at once): left as the
            # technicians have it since, not written again.
            return self._ticket(str(found[0]["id"]))
        customer = session.primary_customer.name if session.primary_customer else ""
        values = {
            self._col("case", "summary"): f"Remote Support session with {customer or 'a customer'}",
            **fields,
            import_key: digest_key(key),
        }
        case_id = await self.client.upsert(
            self._table("case"), import_key, values, what="create a case"
        )
        return self._ticket(case_id)

    # --- writes --------------------------------------------------------------------------

    def _unsupported_portal(self, session: SupportSession) -> WriteResult | None:
        portals = self.options.portals
        site = session.public_site
        if portals and (site is None or site.name.casefold() not in portals):
            name = site.name if site else "(none)"
            return WriteResult("", {"skipped": f"portal {name!r} is not in supported_portals"})
        return None

    def report_templates(self) -> frozenset[str]:
        """The session record holds the chat part's text and the whole HTML report (also
        its attachment): the text of the other parts is not rendered."""
        return frozenset({"chat.txt", "report.html"})

    async def write_session_report(
        self, ticket: Ticket | None, delivery: SessionDelivery
    ) -> WriteResult:
        """The session record, in one EWUpsert matched on the session id (plus the report
        as a file with ``attach_report``)."""
        skipped = self._unsupported_portal(delivery.session)
        if skipped is not None:
            return skipped
        session = delivery.session
        rep = session.representatives[0].username if session.representatives else None
        primary = next((r.username for r in session.representatives if r.primary), rep)
        technician, why = await self._technician(primary)
        chat = delivery.report.parts.get("chat")
        logical = session_values(
            session,
            appliance_id=delivery.appliance_id,
            case_id=ticket.id if ticket is not None else None,
            technician=technician,
            chat=chat.text.strip() if chat else "",
            report_html=delivery.report.full.html,
        )
        values = {self._col("sessions", k): v for k, v in logical.items() if v is not None}
        files: list[FileUpload] = []
        if self.options.attach:
            files.append(
                FileUpload(
                    self._col("sessions", "session_files"),
                    f"session-{safe_filename(session.lsid)}.html",
                    delivery.report.full.html.encode(),
                    "text/html; charset=utf-8",
                )
            )
            # Replace, not add, on a replay.
            values[f"{self._col('sessions', 'session_files')}$overwrite"] = "1"
        record = await self.client.upsert(
            self._table("sessions"),
            self._col("sessions", "session_id"),
            values,
            files=files,
            what=f"import session {session.lsid}",
        )
        detail = {"record": record}
        if why:
            detail["technician"] = why
        return WriteResult(record, detail)

    async def _technician(self, rep: str | None) -> tuple[str | None, str]:
        """The employee login to link the session to, or None and why not. A lookup that
        fails for good (a column missing, no access) does not stop the import."""
        if not rep:
            return None, ""
        try:
            login = await self._user_login(rep)
        except ConnectorRetryableError:
            raise
        except ConnectorPermanentError as exc:
            return None, f"representative {rep!r} not looked up: {exc.message}"
        if login is None:
            return None, f"no single Agiloft user for representative {rep!r}"
        return login, ""

    async def write_survey(self, ticket: Ticket | None, delivery: SurveyDelivery) -> WriteResult:
        """The survey's text in the session record's survey column, once."""
        skipped = self._unsupported_portal(delivery.session)
        if skipped is not None:
            return skipped
        session = delivery.session
        column = self._col(
            "sessions", "customer_survey" if delivery.kind == "customer" else "rep_survey"
        )
        session_id = self._col("sessions", "session_id")
        what = f"import {delivery.kind} survey of {session.lsid}"
        found = await self.client.search(
            self._table("sessions"),
            f"{session_id}={search_value(session.lsid)}",
            [column],
            limit=1,
            what=what,
        )
        current = str(found[0].get(column) or "") if found else ""
        marker = f"[rsbridge survey {digest_key(delivery.key)[:12]}]"
        if marker in current:
            return WriteResult(marker, {"already": "written"})
        text = f"{delivery.rendered.text.strip()}\n{marker}"
        values: dict[str, str] = {session_id: session.lsid, column: f"{current}\n\n{text}".strip()}
        if ticket is not None and not found:
            values[self._col("sessions", "support_case")] = f":{ticket.id}"
        record = await self.client.upsert(self._table("sessions"), session_id, values, what=what)
        return WriteResult(marker, {"record": record})

    async def write_note(self, ticket: Ticket, note: NoteDelivery) -> WriteResult:
        """The note appended to the case's notes column, unless its marker is there."""
        column = self._col("case", "notes")
        marker = f"[rsbridge ref {digest_key(note.key)[:16]}]"
        record = await self.client.read(self._table("case"), ticket.id, what="read the case notes")
        if record is None:
            raise TicketNotFoundError(f"Agiloft has no case {ticket.id}")
        current = str(record.get(column) or "")
        if marker in current:
            return WriteResult(marker, {"already": "written"})
        stamp = kb_time(datetime.now().astimezone())
        added = f"{stamp} rsbridge: {note.text.strip()} {marker}"
        await self.client.update(
            self._table("case"),
            ticket.id,
            {column: f"{current}\n\n{added}".strip()},
            what="add a note to the case",
        )
        return WriteResult(marker, {})

    async def record_session_key(
        self, ticket: Ticket, short_key: str, key_url: str, expires: datetime
    ) -> bool:
        """The key and its URL into the case's session key and URL fields."""
        if not self.options.write_key:
            return False
        await self.client.update(
            self._table("case"),
            ticket.id,
            {
                self._col("case", "session_key"): short_key,
                self._col("case", "session_url"): key_url,
            },
            what="write the session key into the case",
        )
        return True

    # --- users ---------------------------------------------------------------------------

    async def _user(self, query: str) -> dict[str, Any] | None:
        """The one employee ``query`` finds; None when none or several (an ambiguous
        match must not send a session or a key to the wrong person)."""
        people = self._table("people")
        login, username = self._col("people", "login"), self._col("people", "username")
        found = await self.client.search(
            people, query, [login, username], limit=2, what="find a user"
        )
        return found[0] if len(found) == 1 else None

    async def _user_login(self, rep_username: str) -> str | None:
        """The Agiloft login of the representative ``rep_username`` (their BeyondTrust
        Username column, else the same login), cached; None when there is none. Sessions
        of one representative imported at once share one lookup."""
        lock = self._user_locks.get(rep_username)
        if lock is None:
            lock = self._user_locks[rep_username] = asyncio.Lock()
        async with lock:
            return await self._look_up_login(rep_username)

    async def _look_up_login(self, rep_username: str) -> str | None:
        now = time.monotonic()
        cached = self._users.get(rep_username)
        if cached is not None and now - cached[0] < USER_CACHE_SECONDS:
            return cached[1]
        login, username = self._col("people", "login"), self._col("people", "username")
        value = search_value(rep_username)
        # The BeyondTrust Username column first; the same login only when no one has it.
        found = await self._user(f"{username}={value}")
        if found is None:
            found = await self._user(f"{login}={value} && {username}=null")
        result = str(found.get(login) or "") or None if found else None
        self._users[rep_username] = (now, result)
        return result

    async def rep_username(self, user: str) -> str | None:
        """The BeyondTrust username of the Agiloft user ``user`` (login): their BeyondTrust
        Username column, else the login itself."""
        login, username = self._col("people", "login"), self._col("people", "username")
        found = await self._user(f"{login}={search_value(user)}")
        if found is None:
            return None
        return str(found.get(username) or "").strip() or str(found.get(login) or "") or None

    async def _assigned_rep(self, full_name: str) -> str | None:
        login, username = self._col("people", "login"), self._col("people", "username")
        found = await self._user(f"{self._col('people', 'full_name')}={search_value(full_name)}")
        if found is None:
            return None
        return str(found.get(username) or "").strip() or str(found.get(login) or "") or None

    # --- actions -------------------------------------------------------------------------

    async def ticket_context(self, reference: str) -> TicketContext:
        """The case with its status, assignees, queue field, customer and Jump string."""
        ticket, values = await self._case(reference, "ticket")

        def get(name: str) -> str | None:
            value = values.get(self._col("case", name))
            if isinstance(value, list):
                value = value[0] if value else None
            text = str(value).strip() if value is not None else ""
            return text or None

        state = get("status")
        person = get("assigned_person")
        criteria = get("jump_criteria")
        queue = get("representative")  # rep:<name>, team:<name> or a bare name
        return TicketContext(
            ticket=ticket,
            state=state,
            closed=state is None or state.casefold() in self.options.closed,
            assigned_rep=await self._assigned_rep(person) if person else None,
            assigned_team=get("assigned_team"),
            caller_name=get("customer_name"),
            caller_email=get("customer_email"),
            configuration_item=(ConfigurationItem(ticket.id, criteria) if criteria else None),
            queue=queue,
            session_attributes={"external_key": ticket.id},
        )

    async def find_configuration_item(self, reference: str) -> ConfigurationItem:
        """A Jump Client search string as given (Agiloft keeps no CMDB for Jump)."""
        ref = reference.strip()
        if not ref:
            raise TicketNotFoundError("an empty Jump Client search string")
        return ConfigurationItem(ref, ref)

    def custom_links(self, actions_url: str | None) -> list[CustomLink]:
        """The case, from the representative console (Agiloft's record hotlink)."""
        base = self.client.kb_url
        kb = self.client.kb
        table = self._table("case")
        return [
            CustomLink(
                "Agiloft support case",
                f"{base}/gui2/login.jsp?keyID=0&KB={kb}&state=Main&table={table}"
                "&record=%SESSION.CUSTOM.EXTERNAL_KEY%",
            )
        ]


__all__ = ["AgiloftConnector"]
