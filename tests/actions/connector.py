"""A ticketing connector with an in-memory ticket table, for the actions tests.

It implements the action side of the connector contract (ticket context, user mapping,
configuration items, notes upserted by key, ticket creation) the way a real connector
must, so that the actions layer is tested without depending on any one ticketing system.
Tables are module-level, by name (setting ``table``): the engine builds its own connector
instance in the server thread and the test looks at the same table.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.base import (
    CheckResult,
    ConfigurationItem,
    Connector,
    CustomLink,
    NoteDelivery,
    SessionDelivery,
    Setting,
    SurveyDelivery,
    Ticket,
    TicketContext,
    WriteResult,
)
from rsbridge.errors import TicketNotFoundError

NAME = "actiontest"


@dataclass
class Table:
    """Tickets, users and configuration items of one simulated ticketing system."""

    tickets: dict[str, TicketContext] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    """Ticketing user -> appliance username."""
    cis: dict[str, ConfigurationItem] = field(default_factory=dict)
    notes: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Note key -> (ticket id, text): one entry per key, as an upsert keeps it."""
    note_writes: int = 0
    created: dict[str, Ticket] = field(default_factory=dict)
    """Creation key -> ticket created for it (create_ticket is once-only by key)."""
    imported: list[str] = field(default_factory=list)
    """The lsids of the session reports written, in order (a replay appends again)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, context: TicketContext) -> TicketContext:
        """Add a ticket, findable by id and number."""
        self.tickets[context.ticket.id] = context
        if context.ticket.number:
            self.tickets[context.ticket.number] = context
        return context

    def notes_on(self, ticket_id: str) -> list[str]:
        """The texts of the notes on a ticket."""
        return [text for tid, text in self.notes.values() if tid == ticket_id]


TABLES: dict[str, Table] = {}


class ActionTestConnector(Connector):
    """The connector the actions tests register as ``actiontest``."""

    name = NAME
    title = "Action test"
    settings: ClassVar[list[Setting]] = [Setting("table", required=True, help="table name")]

    @property
    def table(self) -> Table:
        return TABLES[str(self.config.table)]  # type: ignore[attr-defined]

    async def check(self) -> CheckResult:
        return CheckResult("in-memory table")

    async def find_ticket(self, reference: str, *, source: str = "external_key") -> Ticket:
        context = self.table.tickets.get(reference)
        if context is None:
            raise TicketNotFoundError(f"no ticket {reference!r}")
        return context.ticket

    async def create_ticket(
        self, session: SupportSession, fields: Mapping[str, str], *, key: str
    ) -> Ticket:
        table = self.table
        with table.lock:
            if key in table.created:
                return table.created[key]
            number = f"INC{9000 + len(table.created):07d}"
            ticket = Ticket(f"sys-{number.lower()}", number, f"https://itsm.example.com/{number}")
            table.created[key] = ticket
            table.add(TicketContext(ticket, state="New"))
            return ticket

    async def write_session_report(
        self, ticket: Ticket | None, delivery: SessionDelivery
    ) -> WriteResult:
        with self.table.lock:
            self.table.imported.append(delivery.session.lsid)
        return WriteResult(delivery.key)

    async def write_survey(self, ticket: Ticket | None, delivery: SurveyDelivery) -> WriteResult:
        return WriteResult(delivery.key)

    async def write_note(self, ticket: Ticket, note: NoteDelivery) -> WriteResult:
        table = self.table
        with table.lock:
            table.note_writes += 1
            table.notes[note.key] = (ticket.id, note.text)
        return WriteResult(f"note-{abs(hash(note.key)) % 10**6}")

    async def ticket_context(self, reference: str) -> TicketContext:
        context = self.table.tickets.get(reference)
        if context is None:
            raise TicketNotFoundError(f"no ticket {reference!r} in the test table")
        return context

    async def rep_username(self, user: str) -> str | None:
        return self.table.users.get(user)

    async def find_configuration_item(self, reference: str) -> ConfigurationItem:
        ci = self.table.cis.get(reference)
        if ci is None:
            raise TicketNotFoundError(f"no configuration item {reference!r}")
        return ci

    def custom_links(self, actions_url: str | None) -> list[CustomLink]:
        return [
            CustomLink(
                "Test ticket", "https://itsm.example.com/ticket?id=%SESSION.CUSTOM.EXTERNAL_KEY%"
            )
        ]


def closed(context: TicketContext) -> TicketContext:
    """The same ticket, closed."""
    return replace(context, closed=True, state="Closed")
