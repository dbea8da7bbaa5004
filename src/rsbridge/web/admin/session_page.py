"""A session's page: its events, its jobs with every attempt and error, the tickets it
landed on (links into the ticketing system), and on request its report as an integration
renders it.

The report is fetched from the appliance once per request (the engine's appliance client)
and rendered with the integration's renderer and templates, the very call the worker
makes. Everything in it is the customer's and the representative's data: the text is
shown in ``<pre>`` (escaped), the HTML only inside ``<iframe sandbox srcdoc>`` without
``allow-scripts``, so it can neither run script nor reach the console's origin.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.base import RenderedPart
from rsbridge.engine.store.base import Attempt, EventFilter, Job, JobFilter, LedgerEntry
from rsbridge.errors import RsbridgeError
from rsbridge.web.admin.site import AdminSite, Viewer

__all__ = ["Rendered", "TicketLink", "session_routes"]

MAX_EVENTS = 200
MAX_JOBS = 200
"""A session has a handful of events and jobs; these bound a pathological one."""


@dataclass(frozen=True, slots=True)
class TicketLink:
    """A ledger entry shown with the ticket it landed on."""

    entry: LedgerEntry
    text: str
    """The ticket number when the ledger knows it, else its id."""
    url: str | None


@dataclass(frozen=True, slots=True)
class Rendered:
    """The report as one integration renders it, or why it could not be."""

    integration: str
    text: str = ""
    html: str = ""
    problem: str | None = None


def session_routes(site: AdminSite) -> list[BaseRoute]:
    """``GET /admin/sessions/{appliance_id}/{lsid}`` (``?render=<integration>``)."""

    @site.page()
    async def session(request: Request, viewer: Viewer) -> Response:
        appliance_id = request.path_params["appliance_id"]
        lsid = request.path_params["lsid"]
        store = site.engine.store
        events = await store.list_events(
            EventFilter(appliance_id=appliance_id, lsid=lsid, limit=MAX_EVENTS)
        )
        jobs = [
            j
            for j in await store.list_jobs(JobFilter(lsid=lsid, limit=MAX_JOBS))
            if j.appliance_id == appliance_id
        ]
        ledger = await store.ledger_for_session(appliance_id, lsid)
        if not events and not jobs and not ledger:
            return site.refuse(request, viewer, 404, "The store holds nothing of this session.")
        attempts: dict[int, list[Attempt]] = {j.id: await store.attempts(j.id) for j in jobs}
        integrations = sorted({j.integration for j in jobs} | {e.key.integration for e in ledger})
        wanted = request.query_params.get("render", "")
        rendered = None
        if wanted:
            rendered = await _render(site, appliance_id, lsid, wanted)
        return site.render(
            request,
            "session.html",
            viewer,
            appliance_id=appliance_id,
            lsid=lsid,
            events=events,
            jobs=jobs,
            attempts=attempts,
            tickets=[_ticket_link(site, e) for e in ledger],
            integrations=integrations,
            renderable=[n for n in integrations if n in site.engine.renderers],
            rendered=rendered,
            job_state=_job_state,
        )

    return [Route("/sessions/{appliance_id}/{lsid}", session, methods=["GET"])]


def _job_state(job: Job) -> str:
    """A job's status as an operator reads it (a skipped session is not ``done``)."""
    if job.status.value == "done" and (job.last_error or "").startswith("skipped:"):
        return "skipped"
    return job.status.value


def _ticket_link(site: AdminSite, entry: LedgerEntry) -> TicketLink:
    text = entry.detail.get("number") or entry.ticket_id
    connector = site.engine.connectors.get(entry.key.integration)
    url = None
    if entry.ticket_id and connector is not None:
        url = connector.ticket_link(entry.ticket_id, entry.detail)
    # Only web links: a connector's URL is built from its settings, but a link is a link.
    if url is not None and not url.startswith(("https://", "http://")):
        url = None
    return TicketLink(entry, text, url)


async def _render(site: AdminSite, appliance_id: str, lsid: str, integration: str) -> Rendered:
    engine = site.engine
    renderer = engine.renderers.get(integration)
    connector = engine.connectors.get(integration)
    client = engine.appliances.get(appliance_id)
    if renderer is None or connector is None:
        return Rendered(integration, problem="No active integration of that name.")
    if client is None:
        return Rendered(integration, problem="This appliance is not in the configuration.")
    report: SupportSession | None = None
    try:
        # Read to the end (one session): the answer's stream is then closed.
        async for found in client.support_sessions(lsid=lsid):
            report = report or found
    except RsbridgeError as exc:
        return Rendered(integration, problem=f"The appliance did not give the report: {exc}")
    if report is None:
        return Rendered(integration, problem="The appliance has no report of this session.")
    try:
        result = renderer.render(report, connector.report_templates())
    except (RsbridgeError, ValueError) as exc:
        return Rendered(integration, problem=f"The templates failed: {exc}")
    full = result.full
    if not (full.text or full.html):  # the connector reads parts only
        full = RenderedPart(
            "\n\n".join(p.text for p in result.parts.values() if p.text),
            "\n".join(p.html for p in result.parts.values() if p.html),
        )
    return Rendered(integration, full.text, full.html)
