"""The admin console at ``/admin`` (docs/console.md): server-rendered pages over the
engine's store and services, for signed-in users of ``[admin] users``.

:func:`admin_routes` gives the engine's app its ``/admin`` mount; :class:`AdminSite`
(in :mod:`~rsbridge.web.admin.site`) is the frame every page is built on.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from rsbridge.web.admin.audit_page import audit_routes
from rsbridge.web.admin.checks import checks_routes
from rsbridge.web.admin.config_page import config_routes
from rsbridge.web.admin.dead import dead_routes
from rsbridge.web.admin.overview import overview_routes
from rsbridge.web.admin.pull import pull_routes
from rsbridge.web.admin.replay import replay_routes
from rsbridge.web.admin.session_page import session_routes
from rsbridge.web.admin.sessions import sessions_routes
from rsbridge.web.admin.signin import sign_in_routes
from rsbridge.web.admin.site import AdminSite, ConsoleEngine
from rsbridge.web.admin.templates_page import templates_routes

__all__ = ["AdminSite", "ConsoleEngine", "admin_routes"]


def admin_routes(engine: ConsoleEngine) -> list[BaseRoute]:
    """The ``/admin`` mount for ``engine``."""
    site = AdminSite(engine)
    static = StaticFiles(packages=[("rsbridge.web.admin", "static")])
    routes: list[BaseRoute] = [
        *sign_in_routes(site),
        *overview_routes(site),
        *audit_routes(site),
        *sessions_routes(site),
        *session_routes(site),
        *dead_routes(site),
        *replay_routes(site),
        *pull_routes(site),
        *checks_routes(site),
        *templates_routes(site),
        *config_routes(site),
        Mount("/static", app=static, name="static"),
    ]
    return [Mount("/admin", routes=routes)]
