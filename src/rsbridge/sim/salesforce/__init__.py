"""A simulated Salesforce org: OAuth and SOAP login, sObject REST, SOQL, composite, describe.

::

    from rsbridge.sim.serve import serve_in_thread
    from rsbridge.sim.salesforce import SimSalesforceState, create_app, seed_demo

    state = SimSalesforceState()
    demo = seed_demo(state)
    with serve_in_thread(create_app(state)) as base_url:
        ...  # POST {base_url}/services/oauth2/token with demo.app and demo.integration

See docs/simulator.md ("The simulated Salesforce org") for the behaviour.
"""

from rsbridge.sim.salesforce.errors import SalesforceError
from rsbridge.sim.salesforce.ids import checksum, make_id, to18
from rsbridge.sim.salesforce.schema import FieldDef, ObjectDef
from rsbridge.sim.salesforce.seed import DemoSeed, seed_accounts, seed_demo
from rsbridge.sim.salesforce.server import create_app
from rsbridge.sim.salesforce.state import LoggedRequest, SimSalesforceState, ValidationRule

__all__ = [
    "DemoSeed",
    "FieldDef",
    "LoggedRequest",
    "ObjectDef",
    "SalesforceError",
    "SimSalesforceState",
    "ValidationRule",
    "checksum",
    "create_app",
    "make_id",
    "seed_accounts",
    "seed_demo",
    "to18",
]
