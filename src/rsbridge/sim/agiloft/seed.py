"""The tables the BeyondTrust Extension touches, and demo users, teams and support cases.

Table names follow Agiloft's usual logical names (``case`` for Support Cases,
``contacts.employees`` for the people who log in, ``teams``); the session table's name and
most field names are inferred, because the seed (000_167ac3327734489c.txt) names the
BeyondTrust Session Details table and the case fields without listing their column names,
except ``bomgar_jump_client_search_criteria``. Every name comes from :class:`TableNames` and
:func:`definitions`, so a test or the connector can load other ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rsbridge.sim.agiloft.state import SimAgiloftState

KB = "Demo"
INTEGRATION = ("rsbridge", "rsbridge-sim")
OAUTH_CLIENT = ("rsbridge-client", "rsbridge-client-secret")
"""An OAuth2 client bound to the integration user (client credentials grant)."""
TECHNICIAN = ("jdoe", "jdoe-sim")
# A user whose groups are not under "Groups allowed for REST".
NO_REST = ("guest", "guest-sim")
CASE_STATUS = ("New", "Open", "Pending", "Resolved", "Closed")
PRIORITY = ("Low", "Medium", "High", "Critical")


@dataclass(frozen=True)
class TableNames:
    """The logical table names (case-sensitive, as in the KB)."""

    case: str = "case"
    people: str = "contacts.employees"
    teams: str = "teams"
    sessions: str = "bomgar_session_details"


def definitions(names: TableNames | None = None) -> list[dict[str, Any]]:
    """The table definitions (:func:`~rsbridge.sim.agiloft.tables.load_tables` shape)."""
    n = names or TableNames()
    # fmt: off
    return [
        {
            "name": n.teams,
            "label": "Teams",
            "fields": [
                {"name": "name", "label": "Team Name", "required": True},
                {"name": "description", "label": "Description"},
            ],
        },
        {
            "name": n.people,
            "label": "Employees",
            "fields": [
                {"name": "_login", "label": "Login", "required": True},
                {"name": "full_name", "label": "Full Name", "required": True},
                {"name": "first_name", "label": "First Name"},
                {"name": "last_name", "label": "Last Name"},
                {"name": "email", "label": "Email"},
                {
                    "name": "teams",
                    "label": "Teams",
                    "type": "link",
                    "link_table": n.teams,
                    "link_field": "name",
                    "multi": True,
                },
                # The seed's "User Setup Requirements": technicians exist in both systems;
                # this holds the BeyondTrust username when it differs from the login.
                {"name": "bomgar_username", "label": "BeyondTrust Username"},
            ],
        },
        {
            "name": n.case,
            "label": "Support Case",
            "fields": [
                {"name": "summary", "label": "Summary", "required": True},
                {"name": "description", "label": "Description"},
                {
                    "name": "status",
                    "label": "Status",
                    "type": "choice",
                    "choices": list(CASE_STATUS),
                    "default": "New",
                    "required": True,
                },
                {
                    "name": "priority",
                    "label": "Priority",
                    "type": "choice",
                    "choices": list(PRIORITY),
                    "default": "Medium",
                },
                {"name": "customer_name", "label": "Customer Name"},
                {"name": "customer_email", "label": "Customer Email"},
                {
                    "name": "assigned_person",
                    "label": "Assigned Person",
                    "type": "link",
                    "link_table": n.people,
                    "link_field": "full_name",
                },
                {
                    "name": "assigned_team",
                    "label": "Assigned Team",
                    "type": "link",
                    "link_table": n.teams,
                    "link_field": "name",
                },
                {"name": "additional_notes", "label": "Additional Notes"},
                {"name": "attached_file", "label": "Attached File", "type": "file"},
                # The fields the extension asks for on the support table.
                {"name": "bomgar_session_key", "label": "BeyondTrust Session Key"},
                {"name": "bomgar_session_url", "label": "BeyondTrust Session URL"},
                {"name": "bomgar_representative", "label": "BeyondTrust Representative or Team"},
                {
                    "name": "bomgar_jump_client_search_criteria",
                    "label": "Bomgar_jump_client_search_criteria",
                },
            ],
        },
        {
            "name": n.sessions,
            "label": "BeyondTrust Session Details",
            "fields": [
                {"name": "session_id", "label": "Session ID", "required": True},
                {
                    "name": "support_case",
                    "label": "Support Case",
                    "type": "link",
                    "link_table": n.case,
                    "link_field": "id",
                },
                {"name": "external_key", "label": "External Key"},
                {"name": "start_time", "label": "Start Time", "type": "datetime"},
                {"name": "end_time", "label": "End Time", "type": "datetime"},
                {"name": "duration", "label": "Duration"},
                {
                    "name": "technician",
                    "label": "Technician",
                    "type": "link",
                    "link_table": n.people,
                    "link_field": "_login",
                },
                {"name": "primary_representative", "label": "Primary Representative"},
                {"name": "customer_name", "label": "Customer Name"},
                {"name": "customer_hostname", "label": "Customer Host Name"},
                {"name": "public_site", "label": "Public Site"},
                {"name": "chat_transcript", "label": "Chat Transcript"},
                {"name": "session_report", "label": "Session Report"},
                {"name": "session_files", "label": "Session Files", "type": "file"},
            ],
        },
    ]
    # fmt: on


@dataclass
class DemoSeed:
    """What :func:`seed_demo` made: the KB, the logins, the table names, record ids by
    name (``cases``: ``printer``, ``vpn``, ``laptop``; ``teams``; ``people``)."""

    kb: str = KB
    integration: tuple[str, str] = INTEGRATION
    oauth_client: tuple[str, str] = OAUTH_CLIENT
    technician: tuple[str, str] = TECHNICIAN
    no_rest: tuple[str, str] = NO_REST
    names: TableNames = field(default_factory=TableNames)
    ids: dict[str, int] = field(default_factory=dict)


def seed_tables(state: SimAgiloftState, names: TableNames | None = None) -> None:
    """Define the tables and the integration user (no records)."""
    state.load_tables(definitions(names))
    state.add_user(*INTEGRATION)
    state.add_oauth_client(*OAUTH_CLIENT, INTEGRATION[0])


def seed_demo(state: SimAgiloftState, names: TableNames | None = None) -> DemoSeed:
    """The tables, three users (one without REST access), two teams, their employee
    records and three support cases."""
    n = names or TableNames()
    seed_tables(state, n)
    state.add_user(*TECHNICIAN)
    state.add_user(*NO_REST, rest_allowed=False)
    demo = DemoSeed(kb=state.kb, names=n)
    for key, (name, description) in {
        "tier1": ("Tier 1 Support", "First line"),
        "network": ("Network Team", "Routers, VPN and Wi-Fi"),
    }.items():
        demo.ids[key] = state.create(n.teams, {"name": [name], "description": [description]})
    people = {
        INTEGRATION[0]: ("rsbridge Integration", "", [], ""),
        TECHNICIAN[0]: ("John Doe", "jdoe@example.com", [":Tier 1 Support"], "jdoe"),
        "asmith": ("Alice Smith", "asmith@example.com",
                   [":Tier 1 Support", ":Network Team"], "alice.smith"),
        NO_REST[0]: ("Guest User", "", [], ""),
    }  # fmt: skip
    for login, (full, email, teams, bt_user) in people.items():
        first, _, last = full.partition(" ")
        demo.ids[login] = state.create(
            n.people,
            {"_login": [login], "full_name": [full], "first_name": [first],
             "last_name": [last], "email": [email], "teams": teams,
             "bomgar_username": [bt_user]},
        )  # fmt: skip
    for key, (summary, status, person, team) in {
        "printer": ("Printer on floor 3 jams", "Open", ":John Doe", ":Tier 1 Support"),
        "vpn": ("VPN drops every hour", "New", "", ":Network Team"),
        "laptop": ("Laptop will not boot", "Resolved", ":Alice Smith", ""),
    }.items():
        demo.ids[key] = state.create(
            n.case,
            {"summary": [summary], "status": [status], "priority": ["High"],
             "customer_name": ["Allen Allbrook"], "customer_email": ["allen@example.com"],
             "assigned_person": [person], "assigned_team": [team]},
        )  # fmt: skip
    return demo
