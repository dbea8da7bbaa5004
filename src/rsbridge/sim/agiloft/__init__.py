"""A simulated Agiloft knowledge base: the EW REST interface (``/ewws/EW...``).

::

    from rsbridge.sim.serve import serve_in_thread
    from rsbridge.sim.agiloft import SimAgiloftState, create_app, seed_demo

    state = SimAgiloftState(kb="Demo")  # clock=time.time, ws_delay=0.0
    demo = seed_demo(state)  # tables, users, teams, three support cases
    with serve_in_thread(create_app(state)) as base_url:
        ...  # POST {base_url}/ewws/EWLogin?$KB=Demo&$lang=en&$login=rsbridge&$password=...

Tables come from definitions (:func:`load_tables`, ``state.load_tables(...)``,
``state.define_table(...)``), so a connector can load the tables it generates.
``parse_lines`` reads the ``EWREST_`` answer style. See docs/simulator.md ("The simulated
Agiloft knowledge base") for the behaviour and what is verified or inferred.
"""

from rsbridge.sim.agiloft.errors import AgiloftError
from rsbridge.sim.agiloft.ewrest import parse_lines
from rsbridge.sim.agiloft.seed import DemoSeed, TableNames, definitions, seed_demo, seed_tables
from rsbridge.sim.agiloft.server import create_app
from rsbridge.sim.agiloft.state import LoggedRequest, SimAgiloftState, SimUser
from rsbridge.sim.agiloft.tables import (
    Attachment,
    FieldDef,
    Record,
    TableDef,
    TableDefinitionError,
    load_tables,
)

__all__ = [
    "AgiloftError",
    "Attachment",
    "DemoSeed",
    "FieldDef",
    "LoggedRequest",
    "Record",
    "SimAgiloftState",
    "SimUser",
    "TableDef",
    "TableDefinitionError",
    "TableNames",
    "create_app",
    "definitions",
    "load_tables",
    "parse_lines",
    "seed_demo",
    "seed_tables",
]
