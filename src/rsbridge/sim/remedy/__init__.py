"""A simulated BMC Remedy / Helix ITSM AR System server: JWT login and the entry API.

::

    from rsbridge.sim.serve import serve_in_thread
    from rsbridge.sim.remedy import SimRemedyState, create_app, seed_demo

    state = SimRemedyState()
    demo = seed_demo(state)
    with serve_in_thread(create_app(state)) as base_url:
        ...  # POST {base_url}/api/jwt/login with demo.integration

See docs/simulator.md ("The simulated AR System server") for the behaviour.
"""

from rsbridge.sim.remedy.definition_file import (
    load_definition,
    parse_definition,
    read_definition,
)
from rsbridge.sim.remedy.errors import ARError
from rsbridge.sim.remedy.forms import FieldDef, FormDef, load_forms
from rsbridge.sim.remedy.seed import DemoSeed, itsm_forms, seed_demo, seed_forms
from rsbridge.sim.remedy.server import create_app
from rsbridge.sim.remedy.state import Filter, LoggedRequest, SimRemedyState

__all__ = [
    "ARError",
    "DemoSeed",
    "FieldDef",
    "Filter",
    "FormDef",
    "LoggedRequest",
    "SimRemedyState",
    "create_app",
    "itsm_forms",
    "load_definition",
    "load_forms",
    "parse_definition",
    "read_definition",
    "seed_demo",
    "seed_forms",
]
