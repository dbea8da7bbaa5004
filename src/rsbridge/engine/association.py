"""Which ticket a session belongs to, from the integration's association rules.

``ticket_from`` lists where to look, in order (the connector's default when the
integration does not set it):

* ``external_key``: the session's external key (set at key generation, e.g. a ticket
  number or id);
* ``custom:<code_name>``: a custom session attribute (e.g. ``custom:snow_task_id``);
* ``rep_survey:<question>``: a representative exit-survey answer (e.g. ``task_number``).

Each source that holds a value is tried with the connector's ``find_ticket``; a value
that names no ticket is noted and the next source is tried, so a stale custom attribute
does not hide a good external key. What was tried is kept for the log.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import AssociationConfig
from rsbridge.connectors.base import Connector, Ticket
from rsbridge.engine.store.base import LedgerEntry, LedgerKey
from rsbridge.errors import TicketNotFoundError

TICKET_EFFECT = "ticket"
"""The ledger effect that remembers a session's ticket (found, created or none)."""


def ticket_key(appliance_id: str, lsid: str, integration: str) -> LedgerKey:
    """The ledger key under which a session's ticket is remembered for an integration."""
    return LedgerKey(appliance_id, lsid, TICKET_EFFECT, integration, TICKET_EFFECT)


def ticket_detail(ticket: Ticket) -> dict[str, str]:
    """What the ledger keeps of a ticket besides its id."""
    pairs = (("number", ticket.number), ("url", ticket.url), ("kind", ticket.kind))
    return {k: v for k, v in pairs if v}


def ledger_ticket(entry: LedgerEntry) -> Ticket | None:
    """The ticket a ledger entry remembers (None: the session has none)."""
    if not entry.ticket_id:
        return None
    detail = entry.detail
    return Ticket(entry.ticket_id, detail.get("number"), detail.get("url"), detail.get("kind"))


def ticket_sources(rules: AssociationConfig, connector: type[Connector] | Connector) -> list[str]:
    """The sources to try: the integration's own, else the connector's default."""
    return list(
        rules.ticket_from if rules.ticket_from is not None else connector.default_ticket_from
    )


def references(session: SupportSession, sources: Sequence[str]) -> Iterator[tuple[str, str]]:
    """``(source, value)`` for each source that holds a non-empty value, in order."""
    for source in sources:
        kind, _, arg = source.partition(":")
        value: str | None = None
        if kind == "external_key":
            value = session.external_key
        elif kind == "custom":
            value = next((a.value for a in session.custom_attributes if a.code_name == arg), None)
        elif kind == "rep_survey":
            value = next((a for s in session.rep_surveys if (a := s.answer(arg)) is not None), None)
        if value and value.strip():
            yield source, value.strip()


@dataclass(slots=True)
class Resolution:
    """The ticket a session resolved to (None: no source named an existing ticket)."""

    ticket: Ticket | None
    tried: list[str] = field(default_factory=list)
    """What was tried and why it did not match, for the log."""

    def why(self) -> str:
        """One line saying why nothing matched."""
        return "; ".join(self.tried) if self.tried else "no association source holds a value"


async def resolve_ticket(
    session: SupportSession, rules: AssociationConfig, connector: Connector
) -> Resolution:
    """Try each source in order; the first reference the connector finds wins."""
    resolution = Resolution(None)
    for source, value in references(session, ticket_sources(rules, connector)):
        try:
            resolution.ticket = await connector.find_ticket(value)
            return resolution
        except TicketNotFoundError as exc:
            resolution.tried.append(f"{source} {value!r}: {exc.message}")
    return resolution
