"""The ITSM forms an integration touches, and demo users, incidents and work logs.

Form and field names follow itsm-apis.md 3.3 (BMC's "platform REST API references",
``demisto/content: Packs/BmcITSM`` and its recorded ``test_data``, the
``HPD_IncidentInterface_Create_WS.wsdl`` enumerations). Field ids are those of the ITSM
data model as far as the public sources show them; enumeration codes other than Status'
order are inferred (docs/simulator.md, "Fidelity").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rsbridge.sim.remedy.forms import FieldDef, FormDef, core_fields
from rsbridge.sim.remedy.state import SimRemedyState

INTEGRATION = ("rsbridge", "rsbridge-sim")

INCIDENT_STATUS = {
    "New": 0, "Assigned": 1, "In Progress": 2, "Pending": 3, "Resolved": 4, "Closed": 5,
    "Cancelled": 6,
}  # fmt: skip
IMPACT = {
    "1-Extensive/Widespread": 1000, "2-Significant/Large": 2000, "3-Moderate/Limited": 3000,
    "4-Minor/Localized": 4000,
}  # fmt: skip
URGENCY = {"1-Critical": 1000, "2-High": 2000, "3-Medium": 3000, "4-Low": 4000}
SERVICE_TYPE = {
    "User Service Restoration": 0, "User Service Request": 1, "Infrastructure Restoration": 2,
    "Infrastructure Event": 3,
}  # fmt: skip
REPORTED_SOURCE = {
    "Direct Input": 1000, "Email": 2000, "Phone": 6000, "Web": 9000, "Self Service": 4200,
    "Other": 10000,
}  # fmt: skip
WORK_LOG_TYPE = {
    "Customer Inbound": 1000, "General Information": 2000, "Working Log": 8000,
    "Customer Communication": 3000, "Status Update": 4000,
}  # fmt: skip
COMMUNICATION_SOURCE = {
    "Email": 1000, "Fax": 2000, "Phone": 4000, "Voice Mail": 5000, "Walk In": 6000,
    "Pager": 7000, "System Assignment": 8000, "Web": 9000, "Other": 10000,
}  # fmt: skip
"""Work info "Communication Source" (the seed's Work Info Source); codes inferred."""
WORK_LOG_STATUS = {"Enabled": 0, "Disabled": 1}
VIEW_ACCESS = {"Internal": 0, "Public": 1}
YES_NO = {"Yes": 0, "No": 1}
CHANGE_STATUS = {
    "Draft": 0, "Request For Authorization": 1, "Planning In Progress": 3, "Scheduled": 6,
    "Implementation In Progress": 7, "Completed": 9, "Closed": 11, "Cancelled": 12,
}  # fmt: skip
REQUEST_STATUS = {
    "Draft": 0, "Waiting Approval": 1000, "Planning": 2000, "In Progress": 3000,
    "Completed": 4000, "Rejected": 5000, "Cancelled": 6000, "Closed": 7000,
}  # fmt: skip

INCIDENT_NUMBER = 1000000161
CHANGE_ID = 1000000182
REQUEST_NUMBER = 1000000829


def _incident_fields(create: bool) -> list[FieldDef]:
    """``First_Name`` on the create form, ``First Name`` elsewhere (itsm-apis.md 3.3)."""
    sep = "_" if create else " "
    return [
        FieldDef(INCIDENT_NUMBER, "Incident Number", system=True),
        FieldDef(1000000019, f"First{sep}Name", required=create),
        FieldDef(1000000018, f"Last{sep}Name", required=create),
        FieldDef(1000000000, "Description", required=create),
        # sic: the ITSM field's real name; "Detailed_Decription" on the create form (demisto's
        # create_incident_request), with a space on the interface form (get_incident.json).
        FieldDef(1000000151, f"Detailed{sep}Decription"),
        FieldDef(1000000163, "Impact", "selection", create, IMPACT),
        FieldDef(1000000162, "Urgency", "selection", create, URGENCY),
        FieldDef(1000000099, "Service_Type", "selection", create, SERVICE_TYPE),
        FieldDef(1000000215, "Reported Source", "selection", create, REPORTED_SOURCE),
        FieldDef(1000000217, "Assigned Group"),
        FieldDef(1000000218, "Assignee"),
        FieldDef(1000000082, "Company"),
        FieldDef(1000000048, "Internet E-mail"),
        # The incident's CI by name (inferred id; the connector's ci_field setting).
        FieldDef(303544200, "HPD_CI"),
    ]


def _work_log_fields(parent: FieldDef) -> list[FieldDef]:
    return [
        parent,
        FieldDef(1000000170, "Work Log Type", "selection", True, WORK_LOG_TYPE),
        FieldDef(1000000000, "Description", required=True),
        FieldDef(1000000151, "Detailed Description"),
        FieldDef(1000000761, "View Access", "selection", options=VIEW_ACCESS),
        FieldDef(1000002254, "Secure Work Log", "selection", options=YES_NO),
        FieldDef(1000000351, "z2AF Work Log01", "attachment"),
        FieldDef(1000000352, "z2AF Work Log02", "attachment"),
        FieldDef(1000000353, "z2AF Work Log03", "attachment"),
        FieldDef(1000000655, "Communication Source", "selection", options=COMMUNICATION_SOURCE),
    ]


def itsm_forms() -> list[FormDef]:
    """The ITSM forms, stores before the views on them."""
    incident_core = core_fields("Entry ID", INCIDENT_STATUS, "Submit Date")
    # ITSM names core field 4 "Assignee Login ID" on the incident forms.
    incident = [
        FieldDef(4, "Assignee Login ID") if f.id == 4 else f for f in incident_core if f.id != 8
    ]
    create_status = FieldDef(7, "Status", "selection", True, INCIDENT_STATUS)
    view_core = [FieldDef(1, "Request ID", system=True)] + [f for f in incident if f.id != 1]
    change_core = core_fields("Request ID", CHANGE_STATUS)
    request_core = core_fields("Request ID", REQUEST_STATUS)
    return [
        FormDef(
            "HPD:Help Desk",
            incident + _incident_fields(False),
            number_field=INCIDENT_NUMBER,
            number_prefix="INC",
        ),
        FormDef(
            "HPD:IncidentInterface_Create",
            [
                *(f for f in incident if f.id not in (1, 3, 7)),
                FieldDef(1, "Request ID", system=True),
                FieldDef(3, "Create Date", "datetime", system=True),
                create_status,
                *_incident_fields(True),
            ],
            store="HPD:Help Desk",
        ),
        FormDef(
            "HPD:IncidentInterface",
            view_core + _incident_fields(False),
            store="HPD:Help Desk",
            join=True,
        ),
        FormDef(
            "HPD:WorkLog",
            core_fields("Work Log ID", WORK_LOG_STATUS, "Submit Date")
            + _work_log_fields(FieldDef(INCIDENT_NUMBER, "Incident Number", required=True)),
            number_prefix="WLG",
        ),
        FormDef(
            "CHG:Infrastructure Change",
            [
                *change_core,
                FieldDef(CHANGE_ID, "Infrastructure Change ID", system=True),
                FieldDef(1000000000, "Description", required=True),
                FieldDef(1000000151, "Detailed Description"),
                FieldDef(1000000163, "Impact", "selection", options=IMPACT),
                FieldDef(1000000162, "Urgency", "selection", options=URGENCY),
            ],
            number_field=CHANGE_ID,
            number_prefix="CRQ",
        ),
        FormDef(
            "CHG:WorkLog",
            core_fields("Work Log ID", WORK_LOG_STATUS, "Submit Date")
            + _work_log_fields(FieldDef(CHANGE_ID, "Infrastructure Change ID", required=True)),
            number_prefix="WLG",
        ),
        FormDef(
            "SRM:Request",
            [
                *request_core,
                FieldDef(REQUEST_NUMBER, "Request Number", system=True),
                FieldDef(1000000000, "Summary", required=True),
                FieldDef(1000000151, "Details"),
                FieldDef(1000000019, "First Name"),
                FieldDef(1000000018, "Last Name"),
            ],
            number_field=REQUEST_NUMBER,
            number_prefix="REQ",
        ),
        FormDef(
            "SRS:RequestDetail",
            [
                *request_core,
                FieldDef(REQUEST_NUMBER, "Request Number", system=True),
                FieldDef(1000000000, "Summary"),
                FieldDef(1000000151, "Details"),
            ],
            store="SRM:Request",
        ),
        # The CMDB computer system class Jump looks up (BMC Atrium CDM names).
        FormDef(
            "BMC.CORE:BMC_ComputerSystem",
            [
                *core_fields("Request ID"),
                FieldDef(200000020, "Name", required=True),
                FieldDef(260140111, "HostName"),
                FieldDef(200000001, "SerialNumber"),
                FieldDef(179, "InstanceId", system=True),
            ],
        ),
    ]


@dataclass
class DemoSeed:
    """What :func:`seed_demo` made: the integration login and the numbers by name."""

    integration: tuple[str, str] = INTEGRATION
    ids: dict[str, str] = field(default_factory=dict)


def seed_forms(state: SimRemedyState) -> None:
    """Define the ITSM forms and the integration user (no entries)."""
    state.define_forms(itsm_forms())
    state.add_user(*INTEGRATION)


def seed_demo(state: SimRemedyState) -> DemoSeed:
    """The ITSM forms, the integration user, three incidents, two work logs, a change,
    a service request and two computer systems."""
    seed_forms(state)
    demo = DemoSeed()
    user = "Demo"
    base = {"Impact": "3-Moderate/Limited", "Urgency": "3-Medium", "Reported Source": "Phone",
            "Service_Type": "User Service Restoration", "Last_Name": "Allbrook"}  # fmt: skip
    for key, (first, summary, status) in {
        "printer": ("Allen", "Printer on floor 3 jams", "Assigned"),
        "vpn": ("Mary", "VPN drops every hour", "In Progress"),
        "laptop": ("Allen", "Laptop will not boot", "Resolved"),
    }.items():
        entry = state.create(
            "HPD:IncidentInterface_Create",
            {**base, "First_Name": first, "Description": summary, "Status": status},
            user,
        )
        demo.ids[key] = entry
    for key, text in {
        "printer-note": "Replaced the fuser",
        "printer-call": "Called the user",
    }.items():
        demo.ids[key] = state.create(
            "HPD:WorkLog",
            {"Incident Number": demo.ids["printer"], "Work Log Type": "General Information",
             "Description": text, "View Access": "Internal", "Secure Work Log": "No"},
            user,
        )  # fmt: skip
    demo.ids["change"] = state.create(
        "CHG:Infrastructure Change", {"Description": "Upgrade the mail servers"}, user
    )
    demo.ids["request"] = state.create("SRM:Request", {"Summary": "New monitor"}, user)
    for name in ("ws-0042", "srv-mail-01"):
        demo.ids[name] = state.create("BMC.CORE:BMC_ComputerSystem", {"Name": name}, user)
    return demo
