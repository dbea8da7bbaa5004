"""Entry CRUD on the ITSM forms: 201 + Location, 204, values as AR writes them, errors."""

from __future__ import annotations

import re

from rsbridge.sim.remedy import Filter
from rsbridge.sim.remedy.qualification import parse_qualification
from tests.sim_remedy.conftest import AR, ENTRY

AR_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000")
NEW_INCIDENT = {
    "First_Name": "Allen",
    "Last_Name": "Allbrook",
    "Description": "REST API: Incident Creation",
    "Impact": "1-Extensive/Widespread",
    "Urgency": "1-Critical",
    "Status": "Assigned",
    "Reported Source": "Direct Input",
    "Service_Type": "User Service Restoration",
}


def test_create_answers_201_with_location_and_no_body(ar: AR) -> None:
    answer = ar.request("POST", "/HPD:IncidentInterface_Create", json={"values": NEW_INCIDENT})
    assert answer.status_code == 201
    assert answer.content == b""
    location = answer.headers["Location"]
    assert re.fullmatch(rf"{ar.url}{ENTRY}/HPD:IncidentInterface_Create/INC\d{{12}}", location), (
        location
    )
    got = ar.http.get(location, headers={"Authorization": f"AR-JWT {ar.token}"})
    assert got.status_code == 200
    values = got.json()["values"]
    assert values["Incident Number"] == location.rsplit("/", 1)[1]
    assert values["Impact"] == "1-Extensive/Widespread"
    assert values["Create Date"] == "2025-01-15T10:00:00.000+0000"
    assert values["Assignee"] is None  # empty fields are null, not ""
    assert got.json()["_links"]["self"][0]["href"] == location


def test_create_with_fields_answers_those_values(ar: AR) -> None:
    # The shape of demisto's recorded incident_create.json: only the asked-for values and a
    # self link to the form.
    answer = ar.request(
        "POST",
        "/HPD:IncidentInterface_Create",
        params={"fields": "values(Incident Number,Create Date)"},
        json={"values": NEW_INCIDENT},
    )
    assert answer.status_code == 201
    body = answer.json()
    assert set(body["values"]) == {"Incident Number", "Create Date"}
    assert re.fullmatch(r"INC\d{12}", body["values"]["Incident Number"])
    assert AR_DATE.fullmatch(body["values"]["Create Date"])
    assert body["_links"]["self"][0]["href"].endswith("/entry/HPD:IncidentInterface_Create")
    assert answer.headers["Location"].endswith(body["values"]["Incident Number"])


def test_interface_form_reads_by_join_id_and_updates_with_204(ar: AR) -> None:
    number = ar.demo.ids["printer"]
    got = ar.request("GET", f"/HPD:IncidentInterface/{number}|{number}")
    assert got.status_code == 200
    values = got.json()["values"]
    assert values["Request ID"] == f"{number}|{number}"
    assert values["First Name"] == "Allen" and values["Status"] == "Assigned"
    put = ar.request(
        "PUT",
        f"/HPD:IncidentInterface/{number}|{number}",
        json={"values": {"Status": "In Progress", "Assignee": "Bob Baxter"}},
    )
    assert put.status_code == 204 and put.content == b""
    base = ar.request("GET", f"/HPD:Help Desk/{number}").json()["values"]
    assert base["Status"] == "In Progress" and base["Assignee"] == "Bob Baxter"
    assert base["Last Modified By"] == ar.demo.integration[0]


def test_delete_answers_204_then_302(ar: AR) -> None:
    number = ar.demo.ids["laptop"]
    assert ar.request("DELETE", f"/HPD:Help Desk/{number}").status_code == 204
    answer = ar.request("GET", f"/HPD:Help Desk/{number}")
    assert answer.status_code == 404
    assert answer.json() == [
        {
            "messageType": "ERROR",
            "messageText": "Entry does not exist in database",
            "messageAppendedText": number,
            "messageNumber": 302,
        }
    ]
    assert ar.request("DELETE", f"/HPD:Help Desk/{number}").status_code == 404


def test_a_field_the_form_lacks_fails_314(ar: AR) -> None:
    # First_Name is the create form's name; the interface form calls it "First Name".
    create = ar.request("POST", "/HPD:IncidentInterface", json={"values": {"First_Name": "Allen"}})
    assert create.status_code == 400
    error = create.json()[0]
    assert error["messageNumber"] == 314
    assert error["messageAppendedText"] == "HPD:IncidentInterface : First_Name"
    number = ar.demo.ids["vpn"]
    put = ar.request("PUT", f"/HPD:Help Desk/{number}", json={"values": {"Nope": "x"}})
    assert put.status_code == 400 and put.json()[0]["messageNumber"] == 314
    assert ar.request("GET", f"/HPD:Help Desk/{number}").json()["values"]["Status"] == (
        "In Progress"
    )


def test_required_fields_and_selection_values_are_checked(ar: AR) -> None:
    missing = {k: v for k, v in NEW_INCIDENT.items() if k != "Last_Name"}
    answer = ar.request("POST", "/HPD:IncidentInterface_Create", json={"values": missing})
    assert answer.status_code == 400
    assert answer.json()[0]["messageNumber"] == 326
    assert answer.json()[0]["messageAppendedText"].endswith(": Last_Name")
    bad = {**NEW_INCIDENT, "Urgency": "0-Apocalyptic"}
    answer = ar.request("POST", "/HPD:IncidentInterface_Create", json={"values": bad})
    assert answer.status_code == 400 and answer.json()[0]["messageNumber"] == 306
    assert len(ar.state.stores["HPD:Help Desk"]) == 3  # nothing half-created


def test_work_log_accepts_enumeration_codes_and_answers_display_strings(ar: AR) -> None:
    number = ar.demo.ids["vpn"]
    answer = ar.request(
        "POST",
        "/HPD:WorkLog",
        params={"fields": "values(Work Log ID)"},
        json={
            "values": {
                "Incident Number": number,
                "Work Log Type": "2000",
                "Description": "Remote session report",
                "Detailed Description": "full report text",
                "View Access": 0,
                "Secure Work Log": "No",
            }
        },
    )
    assert answer.status_code == 201
    log_id = answer.json()["values"]["Work Log ID"]
    assert re.fullmatch(r"WLG\d{12}", log_id)
    values = ar.request("GET", f"/HPD:WorkLog/{log_id}").json()["values"]
    assert values["Work Log Type"] == "General Information"
    assert values["View Access"] == "Internal"
    assert values["Status"] == "Enabled"
    assert AR_DATE.fullmatch(values["Submit Date"])
    assert values["z2AF Work Log01"] is None


def test_unknown_form_and_bad_body(ar: AR) -> None:
    answer = ar.request("GET", "/HPD:Nope")
    assert answer.status_code == 404 and answer.json()[0]["messageNumber"] == 303
    answer = ar.request("POST", "/HPD:WorkLog", content=b"not json")
    assert answer.status_code == 400 and answer.json()[0]["messageType"] == "ERROR"


def test_a_filter_refuses_a_save_with_its_message(ar: AR) -> None:
    form = ar.state.form("HPD:Help Desk")
    ar.state.add_filter(
        Filter(
            "HPD:Help Desk",
            parse_qualification(form, "'Status' = \"Closed\" AND 'Assignee' = $NULL$"),
            10000,
            "An incident needs an assignee before it is closed.",
        )
    )
    number = ar.demo.ids["printer"]
    answer = ar.request(
        "PUT", f"/HPD:IncidentInterface/{number}|{number}", json={"values": {"Status": "Closed"}}
    )
    assert answer.status_code == 400
    assert answer.json()[0]["messageNumber"] == 10000
    assert "assignee" in answer.json()[0]["messageText"]
    ok = ar.request(
        "PUT",
        f"/HPD:IncidentInterface/{number}|{number}",
        json={"values": {"Status": "Closed", "Assignee": "Bob"}},
    )
    assert ok.status_code == 204


def test_other_itsm_forms_number_their_entries(ar: AR) -> None:
    ids = ar.demo.ids
    assert re.fullmatch(r"CRQ\d{12}", ids["change"])
    assert re.fullmatch(r"REQ\d{12}", ids["request"])
    change = ar.request("GET", f"/CHG:Infrastructure Change/{ids['change']}").json()["values"]
    assert change["Infrastructure Change ID"] == ids["change"]
    assert change["Status"] == "Draft"
    detail = ar.request("GET", f"/SRS:RequestDetail/{ids['request']}").json()["values"]
    assert detail["Request Number"] == ids["request"] and detail["Summary"] == "New monitor"
    log = ar.request(
        "POST",
        "/CHG:WorkLog",
        json={
            "values": {
                "Infrastructure Change ID": ids["change"],
                "Work Log Type": "General Information",
                "Description": "done",
            }
        },
    )
    assert log.status_code == 201
    cis = ar.request("GET", "/BMC.CORE:BMC_ComputerSystem", params={"q": "'Name' = \"ws-0042\""})
    assert [e["values"]["Name"] for e in cis.json()["entries"]] == ["ws-0042"]


def test_create_on_a_join_form_answers_204_without_an_id(ar: AR) -> None:
    answer = ar.request(
        "POST",
        "/HPD:IncidentInterface",
        json={"values": {"First Name": "Join", "Last Name": "J", "Description": "via join"}},
    )
    assert answer.status_code == 204 and "Location" not in answer.headers
    found = ar.request("GET", "/HPD:Help Desk", params={"q": "'First Name' = \"Join\""}).json()[
        "entries"
    ]
    assert [e["values"]["Description"] for e in found] == ["via join"]


def test_a_bad_fields_parameter_writes_nothing(ar: AR) -> None:
    answer = ar.request(
        "POST",
        "/HPD:IncidentInterface_Create",
        params={"fields": "values(Nope)"},
        json={"values": NEW_INCIDENT},
    )
    assert answer.status_code == 400 and answer.json()[0]["messageNumber"] == 314
    assert len(ar.state.stores["HPD:Help Desk"]) == 3


def test_value_types_are_checked(ar: AR) -> None:
    number = ar.demo.ids["printer"]
    path = f"/CHG:Infrastructure Change/{ar.demo.ids['change']}"
    # A number into a character field is stored as its text.
    assert ar.request("PUT", path, json={"values": {"Description": 42}}).status_code == 204
    assert ar.request("GET", path).json()["values"]["Description"] == "42"
    for bad in ({"Description": {"a": 1}}, {"Description": True}, {"Urgency": "9-None"}):
        answer = ar.request("PUT", path, json={"values": bad})
        assert answer.status_code == 400 and answer.json()[0]["messageNumber"] == 306, bad
    attach = ar.request("PUT", f"/HPD:Help Desk/{number}/attach/Description", json={})
    assert attach.status_code == 405
