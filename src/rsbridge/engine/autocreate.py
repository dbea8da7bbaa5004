"""Auto-create: a ticket for a live session that has none, written back to the session.

Two triggers share this code: the appliance's "someone joins a support session" event
(``association.create_on_join``, with the portal, custom-field and attended /
unattended filters) and the rep-console auto-create link of the actions API (on demand,
no filters). Either way:

1. a ticket already remembered for the session in the ledger, or one its association
   sources name, is used as it is: nothing is created twice;
2. otherwise the connector creates one (its ``create_ticket`` is once-only by the ledger
   key), and the ledger remembers it as the session's ticket, so the end-of-session import
   lands on it even if step 3 fails;
3. the connector's :meth:`~rsbridge.connectors.base.Connector.live_session_attributes`
   (ServiceNow: ``snow_task_id``) are written to the live session with
   ``set_session_attributes``, once (a ledger entry of its own).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from rsbridge.appliance.client import ApplianceClient
from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import AssociationConfig, IntegrationConfig
from rsbridge.connectors.base import Connector, Ticket
from rsbridge.engine.association import (
    CREATED_SOURCE,
    TICKET_EFFECT,
    judge_session,
    ledger_ticket,
    resolve_ticket,
    ticket_detail,
    ticket_key,
)
from rsbridge.engine.signing import SIGNATURE_ATTRIBUTE, Signer
from rsbridge.engine.store.base import LedgerEntry, LedgerKey, Store
from rsbridge.errors import SessionNotFoundError, SessionNotReadyError

log = logging.getLogger(__name__)

WRITEBACK_EFFECT = "session_attributes"
CREATED = "created"
"""Ledger detail of a ticket this module created (it is written back to the session)."""


def join_filter_refusal(session: SupportSession, rules: AssociationConfig) -> str | None:
    """Why the join-event filters exclude ``session`` from auto-create, or None.

    A session started from a Jump Item (it has a Jumpoint or a Jump Group) counts as
    unattended; any other as attended.
    """
    if rules.create_for_portals:
        site = session.public_site
        names = {n.casefold() for n in rules.create_for_portals}
        if site is None or not ({site.name.casefold(), (site.id or "").casefold()} & names):
            return f"its portal {site.name if site else '(none)'!r} is not in create_for_portals"
    missing = [c for c in rules.create_requires_custom_fields if not (session.custom(c) or "")]
    if missing:
        return f"required custom fields are empty: {', '.join(missing)}"
    unattended = session.jumpoint is not None or session.jump_group is not None
    if unattended and not rules.create_unattended:
        return "it is unattended and create_unattended is off"
    if not unattended and not rules.create_attended:
        return "it is attended and create_attended is off"
    return None


async def live_session(appliance: ApplianceClient, lsid: str) -> SupportSession:
    """The appliance's report of a session in progress (or ended)."""
    async for session in appliance.support_sessions(lsids=[lsid]):
        if session.lsid == lsid:
            return session
    raise SessionNotReadyError(f"the appliance has no report of session {lsid} yet")


async def create_for_live_session(
    *,
    store: Store,
    integration: IntegrationConfig,
    connector: Connector,
    appliance: ApplianceClient,
    lsid: str,
    appliance_id: str,
    signer: Signer | None,
    now: float | None = None,
    session: SupportSession | None = None,
) -> Ticket:
    """The session's ticket: remembered, associated, or created now; written back.

    ``session`` is the live report when the caller has it already (the worker fetches
    reports in batches); otherwise it is fetched. Association follows the integration's
    trust policy; the write-back is signed by ``signer`` (when signing is configured).
    """
    clock = now if now is not None else time.time()
    key = ticket_key(appliance_id, lsid, integration.name)
    entry = await store.ledger_get(key)
    ticket = ledger_ticket(entry) if entry is not None else None
    created = entry is not None and CREATED in entry.detail
    if ticket is None:
        if session is None:
            session = await live_session(appliance, lsid)
        rules = integration.association
        trust = judge_session(session, rules, appliance_id, integration.name, signer)
        resolution = await resolve_ticket(session, rules, connector, trust)
        ticket = resolution.ticket or await connector.create_ticket(
            session, rules.create_fields, key=str(key)
        )
        created = resolution.ticket is None
        detail = (
            ticket_detail(ticket, CREATED_SOURCE, trusted=connector.created_tickets_trusted())
            if created
            else ticket_detail(ticket, resolution.source, trusted=resolution.trusted)
        )
        if created:
            detail[CREATED] = "on_join_or_link"
            log.info(
                "session %s: created %s for integration %s (%s)",
                lsid,
                ticket.number or ticket.id,
                integration.name,
                resolution.why(),
            )
        entry = await store.ledger_put(LedgerEntry(key, ticket.id, ticket.id, clock, detail))
        # Another worker may have recorded the session's ticket first: theirs is the one.
        recorded = ledger_ticket(entry)
        if recorded is not None and recorded.id != ticket.id:
            ticket, created = recorded, CREATED in entry.detail
    # Only a ticket made here is new to the session; one it named already needs nothing.
    if created:
        await _write_back(
            store,
            appliance,
            connector,
            signer,
            appliance_id,
            lsid,
            integration.name,
            ticket,
            clock,
            session,
        )
    return ticket


async def _write_back(
    store: Store,
    appliance: ApplianceClient,
    connector: Connector,
    signer: Signer | None,
    appliance_id: str,
    lsid: str,
    integration: str,
    ticket: Ticket,
    now: float,
    session: SupportSession | None,
) -> None:
    key = LedgerKey(appliance_id, lsid, TICKET_EFFECT, integration, WRITEBACK_EFFECT)
    if await store.ledger_get(key) is not None:
        return
    attributes = dict(connector.live_session_attributes(ticket))
    try:
        if signer is not None:
            # Signed as of the session's start (the signature then counts for this
            # session, which began before the ticket existed); the session's signature
            # so far keeps its other entries (the key's own, another integration's).
            live = session if session is not None else await live_session(appliance, lsid)
            attributes = signer.signed(
                appliance_id,
                integration,
                attributes,
                now=live.start_time or datetime.fromtimestamp(now, UTC),
                keep=live.custom(SIGNATURE_ATTRIBUTE),
            )
        external_key = attributes.pop("external_key", None)
        await appliance.set_session_attributes(lsid, attributes, external_key=external_key)
    except SessionNotFoundError:
        # The session ended before we got here: the ledger still sends its import to
        # the ticket, so there is nothing to retry.
        log.info("session %s ended before its new ticket could be written back", lsid)
    written = sorted(connector.live_session_attributes(ticket))
    await store.ledger_put(LedgerEntry(key, ticket.id, ",".join(written), now))
