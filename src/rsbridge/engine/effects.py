"""Writing one job's effects on its ticket, once each: the ticket found or created, the
session report and the exit surveys (the worker's step 2 and 3, see :mod:`.worker`).

:class:`JobEffects` holds no state of its own between jobs: what it needs of a job comes from
the worker (the report, the ledger read with the claimed batch, the rendering started before
the job took its slot), and what it records goes to the store or, for the job's finish, back
to the worker (``last``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from rsbridge.appliance.client import ApplianceClient
from rsbridge.appliance.events import END, MEMBER_ADDED, SURVEY_EVENTS
from rsbridge.appliance.report_model import ExitSurvey, SupportSession
from rsbridge.config import Config, IntegrationConfig
from rsbridge.connectors.base import (
    Association,
    Connector,
    RenderedPart,
    RenderedReport,
    SessionDelivery,
    SurveyDelivery,
    Ticket,
)
from rsbridge.engine.association import (
    CREATED_SOURCE,
    TICKET_EFFECT,
    judge_session,
    ledger_association,
    ledger_ticket,
    resolve_ticket,
    ticket_detail,
    ticket_key,
    trusted_references,
)
from rsbridge.engine.autocreate import create_for_live_session, join_filter_refusal
from rsbridge.engine.ledger_check import (
    ALREADY_DELIVERED,
    JOIN_OFF,
    REPORT_EFFECT,
    imports_end,
    survey_detail,
    survey_effect,
)
from rsbridge.engine.render import Renderer
from rsbridge.engine.render_pool import RenderPool
from rsbridge.engine.signing import signer_for
from rsbridge.engine.store.base import Job, LedgerEntry, LedgerKey, Store
from rsbridge.errors import ConfigurationError, SessionNotReadyError

log = logging.getLogger(__name__)

__all__ = ["REPORT_EVENTS", "Ahead", "JobEffects", "Services", "Skip", "of_integration"]


@dataclass(frozen=True, slots=True)
class _Writing:
    """What writing one job's effects needs: the ticket, the report, the ledger read."""

    job: Job
    integration: IntegrationConfig
    connector: Connector
    ticket: Ticket | None
    association: Association
    session: SupportSession
    known: Mapping[LedgerKey, LedgerEntry]
    rendering: asyncio.Future[RenderedReport] | None


@dataclass(frozen=True, slots=True)
class Ahead:
    """What was read or started for a job before it took a worker slot."""

    ledger: Mapping[LedgerKey, LedgerEntry] | None = None
    """The ledger's entries for the job's session and integration, read with its claimed
    batch; None: read when the job runs."""
    rendering: asyncio.Future[RenderedReport] | None = None
    """The session report's rendering (a session end), awaited instead of rendering it."""


@dataclass
class Services:
    """What workers talk to, by appliance id and by integration name."""

    appliances: Mapping[str, ApplianceClient]
    connectors: Mapping[str, Connector]
    renderers: Mapping[str, Renderer]
    render_pool: RenderPool | None = None
    """Renders in child processes (``[engine] render_processes``); None: in-process."""

    async def render(self, integration: str, session: SupportSession) -> RenderedReport:
        """``integration``'s report of ``session``, as much of it as its connector writes
        (``report_templates()``, ``writes_session_json()``): in a child process when there
        is a pool, else here (:meth:`Renderer.render <rsbridge.engine.render.Renderer.render>`)."""
        connector = self.connectors[integration]
        templates = connector.report_templates()
        session_json = connector.writes_session_json()
        if self.render_pool is not None:
            return await self.render_pool.render(
                integration, session, templates, session_json=session_json
            )
        return self.renderers[integration].render(session, templates, session_json=session_json)

    async def render_survey(
        self,
        integration: str,
        session: SupportSession,
        kind: Literal["customer", "rep"],
        survey: ExitSurvey,
    ) -> RenderedPart:
        """One exit survey of ``session`` rendered for ``integration``, as :meth:`render`."""
        if self.render_pool is not None:
            return await self.render_pool.render_survey(integration, session, kind, survey)
        return self.renderers[integration].render_survey(session, kind, survey)


REPORT_EVENTS = frozenset({END, MEMBER_ADDED, *SURVEY_EVENTS})
"""Events whose processing needs the session's report (live, for a join)."""


def of_integration(
    entries: Collection[LedgerEntry], integration: str
) -> dict[LedgerKey, LedgerEntry]:
    """A session's ledger entries of one integration, by key."""
    return {e.key: e for e in entries if e.key.integration == integration}


class Skip(Exception):  # noqa: N818 (a control-flow signal, not an error)
    """The session has no ticket and the integration skips such sessions."""


class JobEffects:
    """Applies jobs' effects for a worker (:meth:`process`)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        services: Services,
        *,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.store = store
        self.services = services
        self._clock = clock
        self._signer = signer_for(config.signing)

    async def process(
        self,
        job: Job,
        session: SupportSession | None,
        *,
        asked_at: float | None = None,
        last: list[LedgerEntry] | None = None,
        ahead: Ahead | None = None,
    ) -> str | None:
        """Apply one job's effects; raises to fail, returns a note (or None) when done.

        ``asked_at``: when ``session`` was asked for (recorded with survey effects).
        ``last``: when given, the ledger entries of the job's ticket (found or created
        now) and of its last effect are appended to it instead of recorded, for the
        caller to record with the job's finish.
        ``ahead``: what was read or started for the job before (:class:`Ahead`).
        """
        integration = self.config.integration(job.integration)
        if integration is None or integration.disabled:
            raise ConfigurationError(
                f"integration {job.integration} is not configured or is disabled"
            )
        if job.lsid is None or job.event_type not in REPORT_EVENTS:
            return f"nothing to do for {job.event_type}"
        if job.event_type == MEMBER_ADDED:
            return await self._on_join(job, integration, session)
        if session is None or session.end_time is None:
            raise SessionNotReadyError(
                f"the appliance has no complete report for session {job.lsid} yet"
            )
        connector = self.services.connectors[integration.name]
        # One read for every effect of the job: while it runs, no other job of its
        # session and integration does (the store's ordering); a duplicate run after a
        # lost lease is caught by the connectors' upsert by key, as a crash is.
        ahead = ahead or Ahead()
        known = await self._known(job) if ahead.ledger is None else ahead.ledger
        ticket, association = await self._ticket(job, integration, connector, session, known, last)
        writing = _Writing(
            job, integration, connector, ticket, association, session, known, ahead.rendering
        )
        if job.event_type == END:
            imported = await self._import_session(writing, last)
            return None if imported else ALREADY_DELIVERED
        if imports_end(integration):
            # The store hands a survey out only once its session's end job has finished
            # (done or dead), or when there never was one: the appliance drops an event it
            # could not deliver in its retry duration. Waiting for the end import could
            # then last forever; the report is complete, so the survey brings the import
            # along, under the end's own ledger key (a late end event finds it done).
            await self._import_session(writing, None)
        kind: Literal["customer", "rep"] = (
            "customer" if SURVEY_EVENTS[job.event_type] == "customer" else "rep"
        )
        surveys = session.customer_surveys if kind == "customer" else session.rep_surveys
        if not surveys:
            raise SessionNotReadyError(f"the report of session {job.lsid} has no {kind} survey yet")
        written = 0
        for index, survey in enumerate(surveys):
            key = self._key(job, job.event_type, survey_effect(kind, index))
            if key in known:
                continue
            rendered = await self.services.render_survey(integration.name, session, kind, survey)
            result = await connector.write_survey(
                ticket,
                SurveyDelivery(
                    str(key),
                    job.appliance_id,
                    integration.name,
                    kind,
                    survey,
                    session,
                    rendered,
                    association,
                ),
            )
            detail = {**result.detail, **survey_detail(len(surveys), asked_at)}
            final = last if index == len(surveys) - 1 else None
            await self._record(key, ticket, result.ref, detail, final)
            written += 1
        return None if written else ALREADY_DELIVERED

    async def _import_session(self, w: _Writing, last: list[LedgerEntry] | None) -> bool:
        """Write the session report (the session end's effect) unless the ledger holds it;
        whether it was written now. ``last``: see :meth:`process`."""
        key = self._key(w.job, END, REPORT_EFFECT)
        if key in w.known:
            return False
        renderer = self.services.renderers[w.integration.name]
        if w.rendering is not None:
            rendered = await w.rendering
        else:
            rendered = await self.services.render(w.integration.name, w.session)
        delivery = SessionDelivery(
            str(key),
            w.job.appliance_id,
            w.integration.name,
            renderer.imported_session(w.session),
            rendered,
            w.association,
        )
        result = await w.connector.write_session_report(w.ticket, delivery)
        await self._record(key, w.ticket, result.ref, result.detail, last)
        return True

    def _key(self, job: Job, event: str, effect: str) -> LedgerKey:
        return LedgerKey(job.appliance_id, job.lsid or "", event, job.integration, effect)

    async def _known(self, job: Job) -> dict[LedgerKey, LedgerEntry]:
        """The effects the ledger holds for ``job``'s session and integration."""
        entries = await self.store.ledger_for_session(job.appliance_id, job.lsid or "")
        return of_integration(entries, job.integration)

    async def _record(
        self,
        key: LedgerKey,
        ticket: Ticket | None,
        ref: str,
        detail: Mapping[str, str],
        last: list[LedgerEntry] | None = None,
    ) -> None:
        """Record an effect just written; appended to ``last`` (see :meth:`process`)
        instead when given: the job's finish records it, as nothing else runs before."""
        ticket_id = ticket.id if ticket is not None else ""
        entry = LedgerEntry(key, ticket_id, ref, self._clock(), dict(detail))
        if last is not None:
            last.append(entry)
        else:
            await self.store.ledger_put(entry)

    async def _on_join(
        self, job: Job, integration: IntegrationConfig, session: SupportSession | None
    ) -> str | None:
        """Someone joined a live session: auto-create its ticket when the rules say so."""
        rules = integration.association
        if not rules.create_on_join:
            return JOIN_OFF
        if session is None:
            raise SessionNotReadyError(f"the appliance has no report of session {job.lsid} yet")
        known = await self.store.ledger_get(
            ticket_key(job.appliance_id, session.lsid, job.integration)
        )
        if known is None or not known.ticket_id:
            refusal = join_filter_refusal(session, rules)
            if refusal is not None:
                raise Skip(f"no ticket created for session {job.lsid}: {refusal}")
        # With a ticket known already this only finishes a write-back that failed before.
        ticket = await create_for_live_session(
            store=self.store,
            integration=integration,
            connector=self.services.connectors[integration.name],
            appliance=self.services.appliances[job.appliance_id],
            lsid=session.lsid,
            appliance_id=job.appliance_id,
            signer=self._signer,
            now=self._clock(),
            session=session,
        )
        return f"ticket {ticket.number or ticket.id}"

    async def _ticket(
        self,
        job: Job,
        integration: IntegrationConfig,
        connector: Connector,
        session: SupportSession,
        known: Mapping[LedgerKey, LedgerEntry],
        last: list[LedgerEntry] | None,
    ) -> tuple[Ticket | None, Association]:
        """The session's ticket: remembered in the ledger, found, created, or none.

        None means the session is imported unassociated (``on_unmatched = "import"``);
        a skipped session raises :class:`Skip`. The association says how far the
        ticket and the session's references are trusted (docs/security.md). A ticket
        found or created now is remembered by :meth:`_remember`.
        """
        rules = integration.association
        trust = judge_session(session, rules, job.appliance_id, job.integration, self._signer)
        references = trusted_references(session, trust)
        key = self._key(job, TICKET_EFFECT, TICKET_EFFECT)
        recorded = known.get(key)
        if recorded is not None:
            return ledger_ticket(recorded), ledger_association(recorded, references)
        resolution = await resolve_ticket(session, rules, connector, trust)
        ticket = resolution.ticket
        source, trusted = resolution.source, resolution.trusted
        if ticket is None and rules.on_unmatched == "create":
            ticket = await connector.create_ticket(session, rules.create_fields, key=str(key))
            source, trusted = CREATED_SOURCE, connector.created_tickets_trusted()
        elif ticket is None and rules.on_unmatched == "import":
            log.info("session %s is imported without a ticket (%s)", job.lsid, resolution.why())
            entry = await self._remember(
                LedgerEntry(key, "", "", self._clock(), {"unassociated": resolution.why()}), last
            )
            return ledger_ticket(entry), ledger_association(entry, references)
        elif ticket is None:
            raise Skip(
                f"session {job.lsid} matches no ticket and the integration skips such "
                f"sessions ({resolution.why()})"
            )
        elif resolution.tried:
            log.info("session %s: %s before %s matched", job.lsid, resolution.why(), source)
        detail = ticket_detail(ticket, source, trusted=trusted)
        entry = await self._remember(
            LedgerEntry(key, ticket.id, ticket.id, self._clock(), detail), last
        )
        return ledger_ticket(entry), ledger_association(entry, references)

    async def _remember(self, entry: LedgerEntry, last: list[LedgerEntry] | None) -> LedgerEntry:
        """The ticket's entry, recorded with the job's finish when ``last`` is given (see
        :meth:`process`), else now; the entry to use.

        With the finish, whatever the job's outcome: a retry uses the ticket without
        looking for it again. Its own commit bought nothing: a crash before the finish
        leaves a ticket the next attempt finds again by the same reference, or creates
        once only by the same key (the connectors' contract), and the report it writes
        there is the same upsert by key. It cost a commit per job while the job held its
        worker slot.
        """
        if last is not None:
            last.append(entry)
            return entry
        # Another worker may have recorded the ticket first: theirs is the one to use.
        return await self.store.ledger_put(entry)
