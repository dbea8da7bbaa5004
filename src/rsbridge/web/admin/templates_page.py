"""Templates: preview a part of a session's report (or the whole report) as an
integration renders it, plain text and HTML side by side.

The report is fetched from the appliance once per preview, with the engine's appliance
client. The templates are read afresh for each preview (a new
:class:`~rsbridge.engine.render.Renderer` over the integration's override directory), so
an administrator editing a template sees the edit on the next preview; the engine's
workers keep the templates they compiled. A template that fails shows its file and line.
The HTML is shown only inside ``<iframe sandbox srcdoc>`` (no scripts, no same origin).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import IntegrationConfig
from rsbridge.engine.render import PARTS, REPORT, Renderer
from rsbridge.errors import RsbridgeError, TemplateError
from rsbridge.web.admin.site import AdminSite, Viewer

ALL = "all"
"""The ``part`` that previews the whole report."""
MAX_LSID = 200


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """A template that failed: its file (the override's path, or a default's name), its
    line when known, and the error."""

    file: str
    line: int | None
    message: str


@dataclass(frozen=True, slots=True)
class Side:
    """One format of a preview: the rendered text, or the template's problem."""

    text: str = ""
    problem: TemplateProblem | None = None


def problem_of(exc: TemplateError, override_dir: Path | None) -> TemplateProblem:
    """Where ``exc`` happened: the override file when there is one of that name."""
    name = exc.template or "?"
    if override_dir is not None and (override_dir / name).is_file():
        file = str(override_dir / name)
    elif override_dir is not None and Path(name) == override_dir:
        file = name
    else:
        file = f"{name} (default template)"
    return TemplateProblem(file, exc.line, exc.message)


def render_preview(
    integration: IntegrationConfig, session: SupportSession, part: str
) -> tuple[Side, Side]:
    """``part`` of ``session`` as text and as HTML, with the integration's templates."""
    override = integration.templates
    try:
        renderer = Renderer(override, import_events=integration.import_events)
    except TemplateError as exc:
        failed = Side(problem=problem_of(exc, override))
        return failed, failed

    def one(html: bool) -> Side:
        try:
            if part == ALL:
                # Only this format's templates: a broken HTML part leaves the text whole.
                full = renderer.render(session, [REPORT + (".html" if html else ".txt")]).full
                return Side(full.html if html else full.text)
            return Side(renderer.render_part(session, part, html=html))
        except TemplateError as exc:
            return Side(problem=problem_of(exc, override))

    return one(False), one(True)


def templates_routes(site: AdminSite) -> list[BaseRoute]:
    """``GET /admin/templates`` (the form, and the preview it asks for)."""
    engine = site.engine
    config = site.config

    @site.page()
    async def templates(request: Request, viewer: Viewer) -> Response:
        query = request.query_params
        name = query.get("integration", "").strip()
        lsid = query.get("lsid", "").strip()
        part = query.get("part", ALL).strip() or ALL
        active = [i.name for i in config.active_integrations()]
        problem: str | None = None
        preview: tuple[Side, Side] | None = None
        if name or lsid:
            integration = config.integration(name)
            client = engine.appliances.get(integration.appliance) if integration else None
            if integration is None or name not in active or client is None:
                problem = "Choose an enabled integration."
            elif not lsid or len(lsid) > MAX_LSID:
                problem = "Give the session's lsid."
            elif part not in (ALL, *PARTS):
                problem = "Choose a part of the report."
            else:
                try:
                    sessions = [s async for s in client.support_sessions(lsid=lsid)]
                except RsbridgeError as exc:
                    sessions = []
                    problem = f"The appliance could not give the report: {exc.message}"
                if not sessions and problem is None:
                    problem = "The appliance has no report for that session (yet)."
                if sessions:
                    # Blocking file reads and rendering: off the event loop.
                    preview = await asyncio.to_thread(
                        render_preview, integration, sessions[0], part
                    )
        return site.render(
            request,
            "templates.html",
            viewer,
            status_code=400 if problem else 200,
            problem=problem,
            integrations=active,
            parts=(ALL, *PARTS),
            chosen={"integration": name, "lsid": lsid, "part": part},
            preview=preview,
        )

    return [Route("/templates", templates, methods=["GET"])]
