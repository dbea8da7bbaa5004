"""Demo data of the simulated org: users who can sign in, a connected app, accounts,
contacts and cases."""

from __future__ import annotations

from dataclasses import dataclass, field

from rsbridge.sim.salesforce.state import SimSalesforceState


@dataclass
class DemoSeed:
    """Credentials and ids of what :func:`seed_demo` created.

    ``admin`` and ``integration`` are ``(username, password, security_token)``; the
    password flow and SOAP login take ``password + security_token``. ``app`` is the
    connected app's ``(consumer key, consumer secret)``; client-credentials tokens run as
    the integration user. ``ids`` names records: ``admin``, ``integration``, ``acme``,
    ``globex``, ``ada``, ``grace``, ``case_printer``, ``case_vpn``, ``case_closed``.
    """

    admin: tuple[str, str, str]
    integration: tuple[str, str, str]
    app: tuple[str, str]
    ids: dict[str, str] = field(default_factory=dict)


ADMIN = ("admin@rsbridge.example", "Admin-Pass-1", "ADMINTOKEN0000000001")
INTEGRATION = ("integration@rsbridge.example", "Integration-Pass-1", "INTTOKEN000000000001")
APP = ("3MVG9rsbridgeSimulatedConsumerKey000000000000000000", "sim-consumer-secret-0001")


def seed_accounts(state: SimSalesforceState) -> DemoSeed:
    """The users and the connected app only."""
    with state.lock:
        admin = state.add_user(
            ADMIN[0], ADMIN[1], first_name="Org", last_name="Admin", security_token=ADMIN[2]
        )
        integration = state.add_user(
            INTEGRATION[0],
            INTEGRATION[1],
            first_name="Integration",
            last_name="User",
            security_token=INTEGRATION[2],
        )
        state.add_app(APP[0], APP[1], run_as=integration)
        return DemoSeed(ADMIN, INTEGRATION, APP, {"admin": admin, "integration": integration})


def seed_demo(state: SimSalesforceState) -> DemoSeed:
    """Users, the connected app, two accounts, two contacts and three cases."""
    with state.lock:
        demo = seed_accounts(state)
        owner = demo.ids["admin"]
        ids = demo.ids

        def make(name: str, key: str, values: dict[str, object]) -> str:
            ids[key] = str(state.create(name, values, user_id=owner)["Id"])
            return ids[key]

        make("Account", "acme", {"Name": "Acme Corporation", "Industry": "Technology"})
        make("Account", "globex", {"Name": "Globex", "Type": "Customer"})
        make(
            "Contact",
            "ada",
            {
                "FirstName": "Ada",
                "LastName": "Lovelace",
                "Email": "ada@acme.example",
                "AccountId": ids["acme"],
            },
        )
        make(
            "Contact",
            "grace",
            {
                "FirstName": "Grace",
                "LastName": "Hopper",
                "Email": "grace@globex.example",
                "AccountId": ids["globex"],
            },
        )
        make(
            "Case",
            "case_printer",
            {
                "Subject": "Printer on floor 3 jams",
                "Origin": "Phone",
                "Priority": "Low",
                "ContactId": ids["ada"],
                "AccountId": ids["acme"],
            },
        )
        make(
            "Case",
            "case_vpn",
            {
                "Subject": "VPN drops every hour",
                "Origin": "Web",
                "Priority": "High",
                "Status": "Working",
                "ContactId": ids["grace"],
                "AccountId": ids["globex"],
            },
        )
        make(
            "Case",
            "case_closed",
            {"Subject": "Password reset", "Origin": "Email", "Status": "Closed"},
        )
        return demo
