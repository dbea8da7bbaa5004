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

Trust (``association.trust``, docs/security.md): a customer can set the external key and
every custom attribute through a public start-session URL, so each reference is judged
by its origin first (:class:`SessionTrust`): signed by rsbridge (``rsb_sig``, see
:mod:`rsbridge.engine.signing`), set by a representative, or anybody's. A reference the
policy does not accept is refused unread and the next source is tried; what was refused
and why is kept for the log too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rsbridge.appliance.custom_fields import EXTERNAL_KEY
from rsbridge.appliance.report_model import EventType, SupportSession
from rsbridge.config import AssociationConfig
from rsbridge.connectors.base import Association, Connector, Ticket
from rsbridge.engine.signing import SIGNATURE_ATTRIBUTE, Signer
from rsbridge.engine.store.base import LedgerEntry, LedgerKey
from rsbridge.errors import TicketNotFoundError

TICKET_EFFECT = "ticket"
"""The ledger effect that remembers a session's ticket (found, created or none)."""


def ticket_key(appliance_id: str, lsid: str, integration: str) -> LedgerKey:
    """The ledger key under which a session's ticket is remembered for an integration."""
    return LedgerKey(appliance_id, lsid, TICKET_EFFECT, integration, TICKET_EFFECT)


CREATED_SOURCE = "created"
"""The association source of a ticket rsbridge created for the session."""


def ticket_detail(ticket: Ticket, source: str = "", *, trusted: bool = False) -> dict[str, str]:
    """What the ledger keeps of a ticket besides its id (and how it was chosen)."""
    pairs = (
        ("number", ticket.number),
        ("url", ticket.url),
        ("kind", ticket.kind),
        ("source", source),
        ("trusted", "yes" if trusted else ""),
    )
    return {k: v for k, v in pairs if v}


def ledger_ticket(entry: LedgerEntry) -> Ticket | None:
    """The ticket a ledger entry remembers (None: the session has none)."""
    if not entry.ticket_id:
        return None
    detail = entry.detail
    return Ticket(entry.ticket_id, detail.get("number"), detail.get("url"), detail.get("kind"))


def ledger_association(entry: LedgerEntry, references: Mapping[str, str]) -> Association:
    """The association a ledger entry remembers, with this job's accepted references.

    An entry written before trust was recorded counts as untrusted: the safe reading.
    """
    if not entry.ticket_id:
        return Association(references=references)
    detail = entry.detail
    return Association(detail.get("source", ""), detail.get("trusted") == "yes", references)


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


# --- trust: who set a reference ---------------------------------------------------

Origin = Literal["signed", "representative", "grace", "customer"]
"""Where a reference may have come from, as far as the report and its signature show:

* ``signed``: rsbridge put it on the session (a valid ``rsb_sig`` vouches for it);
* ``representative``: only a representative can have set it (a rep exit-survey answer,
  an external key whose last change the report shows a representative made);
* ``grace``: unsigned, on a session that started before ``unsigned_grace_until``;
* ``customer``: anyone could have set it through a start-session URL.
"""

_ACCEPTED: dict[str, frozenset[Origin]] = {
    "signed": frozenset({"signed", "grace"}),
    "rep": frozenset({"signed", "representative", "grace"}),
    "any": frozenset({"signed", "representative", "grace", "customer"}),
}
_TRUSTED: frozenset[Origin] = frozenset({"signed", "representative"})


def rep_set_external_key(session: SupportSession) -> bool:
    """Whether the report shows that a representative set the current external key.

    The appliance logs an "External Key" event when the key is changed in a session;
    the last such event must be a representative's, and when it carries the value, that
    value must still be the session's.
    """
    changes = session.events_of(EventType.EXTERNAL_KEY)
    if not changes:
        return False
    last = changes[-1]
    if last.performed_by is None or last.performed_by.type != "representative":
        return False
    current = (session.external_key or "").strip()
    given = {v.strip() for v in last.data.values() if v.strip()}
    return bool(current) and (not given or current in given)


@dataclass(frozen=True, slots=True)
class SessionTrust:
    """The origin of each reference a session carries, judged once per session."""

    signed: frozenset[str]
    """Code names (``external_key`` included) that a valid signature vouches for."""
    rep_external_key: bool
    in_grace: bool

    def origin(self, source: str) -> Origin:
        """Where the value of ``source`` may have come from."""
        kind, _, arg = source.partition(":")
        if kind == "rep_survey":
            return "representative"
        name = EXTERNAL_KEY if kind == "external_key" else arg
        if name in self.signed:
            return "signed"
        if kind == "external_key" and self.rep_external_key:
            return "representative"
        return "grace" if self.in_grace else "customer"


def judge_session(
    session: SupportSession,
    rules: AssociationConfig,
    appliance_id: str,
    integration: str,
    signer: Signer | None,
) -> SessionTrust:
    """Judge the origin of every reference of ``session`` for one integration's rules."""
    values: dict[str, str | None] = {a.code_name: a.value for a in session.custom_attributes}
    values[EXTERNAL_KEY] = session.external_key
    signature = values.get(SIGNATURE_ATTRIBUTE)
    signed: frozenset[str] = frozenset()
    if signer is not None:
        signed = signer.verified(
            appliance_id, integration, signature, values, started=session.start_time
        )
    grace = rules.unsigned_grace_until
    start = session.start_time
    return SessionTrust(
        signed=signed,
        rep_external_key=rep_set_external_key(session),
        in_grace=grace is not None and start is not None and start < grace,
    )


def trusted_references(session: SupportSession, trust: SessionTrust) -> dict[str, str]:
    """The external key and custom attributes rsbridge signed or a representative set.

    Only these are followed to other records (a call, a CI): under ``trust = "any"`` or in
    the grace period a customer's value may name the ticket, never anything more.
    """
    candidates = [("external_key", session.external_key)] + [
        (f"custom:{a.code_name}", a.value)
        for a in session.custom_attributes
        if a.code_name != SIGNATURE_ATTRIBUTE
    ]
    return {
        source: value.strip()
        for source, value in candidates
        if value and value.strip() and trust.origin(source) in _TRUSTED
    }


@dataclass(slots=True)
class Resolution:
    """The ticket a session resolved to (None: no source named an existing ticket)."""

    ticket: Ticket | None
    tried: list[str] = field(default_factory=list)
    """What was tried and why it did not match, for the log."""
    source: str = ""
    """The source whose reference named the ticket."""
    trusted: bool = False
    """That reference was signed or set by a representative."""

    def why(self) -> str:
        """One line saying why nothing matched."""
        return "; ".join(self.tried) if self.tried else "no association source holds a value"


_REFUSAL = {
    "signed": "not signed by rsbridge",
    "rep": "neither signed by rsbridge nor set by a representative",
}


async def resolve_ticket(
    session: SupportSession,
    rules: AssociationConfig,
    connector: Connector,
    trust: SessionTrust,
) -> Resolution:
    """Try each source in order; the first accepted reference the connector finds wins.

    A reference whose origin the trust policy does not accept is not looked up at all
    (a customer's value must not even probe the ticketing system); the refusal is noted.
    """
    resolution = Resolution(None)
    accepted = _ACCEPTED[rules.trust]
    followed = trusted_references(session, trust)
    for source, value in references(session, ticket_sources(rules, connector)):
        origin = trust.origin(source)
        if origin not in accepted:
            resolution.tried.append(
                f"{source} {value!r} refused: {_REFUSAL[rules.trust]} "
                f'(association.trust = "{rules.trust}")'
            )
            continue
        try:
            resolution.ticket = await connector.find_session_ticket(
                value, source=source, session=session, references=followed
            )
        except TicketNotFoundError as exc:
            resolution.tried.append(f"{source} {value!r}: {exc.message}")
            continue
        resolution.source, resolution.trusted = source, origin in _TRUSTED
        return resolution
    return resolution
