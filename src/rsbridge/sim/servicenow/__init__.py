"""A simulated ServiceNow instance: OAuth, Table, Attachment and Batch APIs over real HTTP.

::

    from rsbridge.sim.serve import serve_in_thread
    from rsbridge.sim.servicenow import SimServiceNowState, create_app, seed_demo

    state = SimServiceNowState(seed=1)
    demo = seed_demo(state)
    with serve_in_thread(create_app(state)) as base_url:
        ...  # Basic auth with demo.integration, or OAuth with demo.oauth_client

See docs/simulator.md ("The simulated ServiceNow instance") for the behaviour.
"""

from rsbridge.sim.servicenow.seed import DemoSeed, demo_state, seed_accounts, seed_demo
from rsbridge.sim.servicenow.server import create_app
from rsbridge.sim.servicenow.state import (
    ImportSummary,
    LoggedRequest,
    RateLimitRule,
    SimServiceNowError,
    SimServiceNowState,
    SimUser,
)
from rsbridge.sim.servicenow.tables import Column, TableDef
from rsbridge.sim.servicenow.unload import UnloadError

__all__ = [
    "Column",
    "DemoSeed",
    "ImportSummary",
    "LoggedRequest",
    "RateLimitRule",
    "SimServiceNowError",
    "SimServiceNowState",
    "SimUser",
    "TableDef",
    "UnloadError",
    "create_app",
    "demo_state",
    "seed_accounts",
    "seed_demo",
]
