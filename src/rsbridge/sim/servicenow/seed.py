"""Demo data for the simulated instance: accounts, groups, CIs and a few tickets.

The technicians' user names are the appliance simulator's rep usernames (``admin``,
``jsmith``, ``mjones``, ``bwilson``), so a session a rep runs on the simulated
appliance maps to a ServiceNow user. Record times start at 2024-12-02 08:00 UTC (the
appliance scenario generator's default start). Everything else, sys_ids included,
comes from the state's seeded generator: the same seed gives the same data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rsbridge.sim.servicenow.state import SimServiceNowState

SEED_START = 1_733_126_400.0  # 2024-12-02 08:00:00 UTC

ADMIN_USER, ADMIN_PASSWORD = "admin", "admin"
INTEGRATION_USER, INTEGRATION_PASSWORD = "rsbridge", "rsbridge-demo"
VIEWER_USER, VIEWER_PASSWORD = "viewer", "viewer-demo"
TECHNICIAN_PASSWORD = "technician-demo"  # noqa: S105  # printed demo credentials
OAUTH_CLIENT_ID = "5f1c7e2a9b3d4c6e8a0f1b2c3d4e5f60"
OAUTH_CLIENT_SECRET = "rsbridge-demo-secret"  # noqa: S105
#: Roles of the integration user: incidents and other tasks (itil), and the REST role
#: some instances require for API access.
INTEGRATION_ROLES = ("itil", "rest_service")


@dataclass
class DemoSeed:
    """Credentials of the seeded accounts and the sys_ids of the seeded records.

    ``ids`` maps user names, group names, CI names and ticket numbers
    (``INC0010001``) to sys_ids.
    """

    admin: tuple[str, str] = (ADMIN_USER, ADMIN_PASSWORD)
    integration: tuple[str, str] = (INTEGRATION_USER, INTEGRATION_PASSWORD)
    viewer: tuple[str, str] = (VIEWER_USER, VIEWER_PASSWORD)
    oauth_client: tuple[str, str] = (OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET)
    ids: dict[str, str] = field(default_factory=dict)


def seed_accounts(state: SimServiceNowState) -> DemoSeed:
    """Only the accounts: ``admin``, the integration user ``rsbridge``, the read-only
    ``viewer`` and the OAuth client (``client_credentials`` acts as ``rsbridge``)."""
    seed = DemoSeed()
    with state.lock:
        accounts = [
            (
                ADMIN_USER,
                ADMIN_PASSWORD,
                ("admin",),
                "System",
                "Administrator",
                "admin@example.com",
            ),
            (
                INTEGRATION_USER,
                INTEGRATION_PASSWORD,
                INTEGRATION_ROLES,
                "RS Bridge",
                "Integration",
                "rsbridge@example.com",
            ),
            (VIEWER_USER, VIEWER_PASSWORD, ("itil", "snc_read_only"), "Read", "Only", ""),
        ]
        for user_name, password, roles, first, last, email in accounts:
            user = state.add_user(
                user_name,
                password,
                roles,
                now=SEED_START,
                first_name=first,
                last_name=last,
                email=email,
                name="System Administrator" if user_name == ADMIN_USER else f"{first} {last}",
                title="Integration account" if user_name == INTEGRATION_USER else "",
            )
            seed.ids[user_name] = user.sys_id
        state.add_oauth_client(OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, user=INTEGRATION_USER)
    return seed


def seed_demo(state: SimServiceNowState) -> DemoSeed:
    """Fill ``state`` with the demo accounts and records; returns what was created."""
    seed = seed_accounts(state)
    ids = seed.ids
    moment = [SEED_START]

    def at() -> float:
        moment[0] += 600  # ten minutes between seeded writes
        return moment[0]

    with state.lock:
        technicians = [
            ("jsmith", "John", "Smith", "Service Desk Technician"),
            ("mjones", "Mary", "Jones", "Service Desk Technician"),
            ("bwilson", "Bob", "Wilson", "Field Technician"),
        ]
        for user_name, first, last, title in technicians:
            user = state.add_user(
                user_name,
                TECHNICIAN_PASSWORD,
                ("itil",),
                now=SEED_START,
                first_name=first,
                last_name=last,
                email=f"{first.lower()}.{last.lower()}@example.com",
                title=title,
            )
            ids[user_name] = user.sys_id
        callers = [
            ("abel.tuter", "Abel", "Tuter", "Sales", "+1 555 0101"),
            ("beth.anglin", "Beth", "Anglin", "Finance", "+1 555 0102"),
            ("charlie.whitherspoon", "Charlie", "Whitherspoon", "Marketing", "+1 555 0103"),
            ("david.loo", "David", "Loo", "Engineering", "+1 555 0104"),
        ]
        for user_name, first, last, department, phone in callers:
            record = state.insert(
                "sys_user",
                {
                    "user_name": user_name,
                    "first_name": first,
                    "last_name": last,
                    "email": f"{user_name}@example.com",
                    "department": department,
                    "phone": phone,
                },
                now=SEED_START,
            )
            ids[user_name] = record["sys_id"]

        groups = [
            ("Service Desk", "servicedesk@example.com", "admin", ("jsmith", "mjones")),
            ("Network", "network@example.com", "mjones", ("mjones", "jsmith")),
            ("Field Services", "fieldservices@example.com", "bwilson", ("bwilson",)),
        ]
        for name, email, manager, members in groups:
            group = state.insert(
                "sys_user_group",
                {"name": name, "email": email, "manager": ids[manager]},
                now=SEED_START,
            )
            ids[name] = group["sys_id"]
            for member in members:
                state.insert(
                    "sys_user_grmember",
                    {"group": group["sys_id"], "user": ids[member]},
                    now=SEED_START,
                )

        cis = [
            ("cmdb_ci_computer", "ws-ann-01", "10.0.10.21", "Windows 11 Enterprise", "abel.tuter"),
            ("cmdb_ci_computer", "ws-beth-02", "10.0.10.22", "macOS 14", "beth.anglin"),
            ("cmdb_ci_server", "srv-exch-01", "10.0.1.15", "Windows Server 2022", None),
            ("cmdb_ci_server", "srv-web-01", "10.0.1.20", "Ubuntu 22.04", None),
        ]
        for table, name, ip, os_name, owner in cis:
            ci = state.insert(
                table,
                {
                    "name": name,
                    "host_name": name,
                    "fqdn": f"{name}.example.com",
                    "dns_domain": "example.com",
                    "ip_address": ip,
                    "os": os_name,
                    "assigned_to": ids[owner] if owner else "",
                    "support_group": ids["Service Desk" if owner else "Network"],
                },
                now=SEED_START,
            )
            ids[name] = ci["sys_id"]

        def ticket(table: str, values: dict[str, str], user: str = "jsmith") -> str:
            record = state.insert(table, values, user=user, now=at())
            ids[record["number"]] = record["sys_id"]
            return record["sys_id"]

        incidents = [
            ("abel.tuter", "Outlook keeps asking for my password", "ws-ann-01", "2", "software"),
            ("beth.anglin", "VPN disconnects every few minutes", "ws-beth-02", "1", "network"),
            ("charlie.whitherspoon", "Cannot print on the 3rd floor", "", "1", "hardware"),
            ("david.loo", "Mailbox full, cannot send e-mail", "srv-exch-01", "2", "software"),
            ("abel.tuter", "Laptop screen flickers", "ws-ann-01", "1", "hardware"),
        ]
        for caller, text, ci_name, urgency, category in incidents:
            ticket(
                "incident",
                {
                    "caller_id": ids[caller],
                    "short_description": text,
                    "description": f"{text}. Reported by phone.",
                    "cmdb_ci": ids.get(ci_name, ""),
                    "assignment_group": ids["Network" if category == "network" else "Service Desk"],
                    "assigned_to": ids["jsmith"],
                    "impact": "2",
                    "urgency": urgency,
                    "category": category,
                    "contact_type": "phone",
                },
            )
        state.update(
            "incident",
            ids["INC0010001"],
            {"state": "2", "work_notes": "Remote session offered to the caller."},
            user="jsmith",
            now=at(),
        )
        state.update(
            "incident",
            ids["INC0010002"],
            {"comments": "Does it also happen on the office network?"},
            user="jsmith",
            now=at(),
        )
        state.update(
            "incident",
            ids["INC0010004"],
            {
                "state": "6",
                "close_code": "Solution provided",
                "close_notes": "Archived old items; mailbox below quota.",
            },
            user="jsmith",
            now=at(),
        )
        state.update(
            "incident",
            ids["INC0010005"],
            {
                "state": "7",
                "assigned_to": ids["bwilson"],
                "close_code": "Solution provided",
                "close_notes": "Display cable replaced.",
            },
            user="bwilson",
            now=at(),
        )
        ticket(
            "change_request",
            {
                "short_description": "Install monthly updates on srv-exch-01",
                "cmdb_ci": ids["srv-exch-01"],
                "assignment_group": ids["Network"],
                "assigned_to": ids["mjones"],
                "requested_by": ids["jsmith"],
                "type": "standard",
            },
        )
        ticket(
            "problem",
            {
                "short_description": "Recurring VPN drops for remote users",
                "first_reported_by_task": ids["INC0010002"],
                "assignment_group": ids["Network"],
                "assigned_to": ids["mjones"],
            },
        )
        request = ticket(
            "sc_request",
            {"requested_for": ids["abel.tuter"], "short_description": "New laptop"},
        )
        laptop = state.insert(
            "sc_cat_item",
            {"name": "Standard Laptop", "short_description": "A 14-inch business laptop"},
            now=SEED_START,
        )
        ids["Standard Laptop"] = laptop["sys_id"]
        item = ticket(
            "sc_req_item",
            {
                "request": request,
                "requested_for": ids["abel.tuter"],
                "cat_item": laptop["sys_id"],
                "short_description": "Standard Laptop",
            },
        )
        ticket(
            "sc_task",
            {
                "request_item": item,
                "request": request,
                "short_description": "Prepare and ship the laptop",
                "assignment_group": ids["Field Services"],
                "assigned_to": ids["bwilson"],
            },
        )
        ticket(
            "new_call",
            {
                "caller": ids["abel.tuter"],
                "short_description": "Caller asks for a remote support session",
                "contact_type": "phone",
            },
        )
        ticket(
            "interaction",
            {
                "opened_for": ids["beth.anglin"],
                "short_description": "Chat about VPN problems",
                "type": "chat",
                "channel": "chat",
                "assigned_to": ids["jsmith"],
            },
        )
    return seed


def demo_state(
    *, seed: int = 0, instance_url: str | None = None
) -> tuple[SimServiceNowState, DemoSeed]:
    """A new state with the demo data (what ``rsbridge sim servicenow`` serves)."""
    state = SimServiceNowState(seed=seed, instance_url=instance_url)
    return state, seed_demo(state)
