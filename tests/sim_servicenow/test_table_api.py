"""Table API over real HTTP: CRUD, envelopes, references, display values, paging."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.sim_servicenow.conftest import NOW_TEXT, Instance

SYS_ID = re.compile(r"[0-9a-f]{32}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
NOT_FOUND = {
    "error": {
        "message": "No Record found",
        "detail": "Record doesn't exist or ACL restricts the record retrieval",
    },
    "status": "failure",
}


def all_strings(record: dict[str, Any]) -> bool:
    """Every value a string, or a reference object of strings."""
    for value in record.values():
        if isinstance(value, dict):
            if not all(isinstance(v, str) for v in value.values()):
                return False
        elif not isinstance(value, str):
            return False
    return True


def test_create_answers_201_with_the_full_record(sn: Instance) -> None:
    body = {
        "short_description": "Remote session 123",
        "caller_id": sn.ids["abel.tuter"],
        "urgency": 2,
        "correlation_id": "RS-SESSION-123",
        "active": True,
    }
    r = sn.post("/api/now/table/incident", json=body)
    assert r.status_code == 201
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    result = r.json()["result"]
    assert set(r.json()) == {"result"}
    assert SYS_ID.fullmatch(result["sys_id"])
    assert r.headers["location"] == f"{sn.url}/api/now/table/incident/{result['sys_id']}"
    # the shape of the recorded create response (reference 1.2)
    assert result["number"] == "INC0010006"  # the demo seeded five
    assert result["state"] == "1"
    assert result["urgency"] == "2"
    assert result["impact"] == "3"
    assert result["priority"] == "4"  # impact 3 x urgency 2
    assert result["active"] == "true"
    assert result["sys_created_on"] == result["sys_updated_on"] == result["opened_at"] == NOW_TEXT
    assert result["sys_created_by"] == result["sys_updated_by"] == "rsbridge"
    assert result["sys_mod_count"] == "0"
    assert result["sys_class_name"] == "incident"
    assert result["sys_tags"] == ""
    assert result["closed_at"] == "" and result["resolved_at"] == ""
    assert result["work_notes"] == "" and result["comments"] == ""
    assert result["caller_id"] == {
        "link": f"{sn.url}/api/now/table/sys_user/{sn.ids['abel.tuter']}",
        "value": sn.ids["abel.tuter"],
    }
    assert result["opened_by"]["value"] == sn.ids["rsbridge"]
    assert result["assigned_to"] == ""  # empty reference: a plain empty string
    assert all_strings(result)
    assert DATE.fullmatch(result["sys_created_on"])


def test_read_update_delete(sn: Instance) -> None:
    sys_id = sn.ids["INC0010002"]
    record = sn.result(f"/api/now/table/incident/{sys_id}")
    assert record["number"] == "INC0010002"
    sn.clock.now += 60
    r = sn.patch(f"/api/now/table/incident/{sys_id}", json={"state": "2", "impact": "1"})
    assert r.status_code == 200
    updated = r.json()["result"]
    assert updated["state"] == "2" and updated["incident_state"] == "2"
    assert updated["priority"] == "1"  # impact 1 x urgency 1
    assert updated["sys_mod_count"] == str(int(record["sys_mod_count"]) + 1)
    assert updated["sys_updated_on"] == "2025-01-15 10:01:00"
    r = sn.request("PUT", f"/api/now/table/incident/{sys_id}", json={"state": "7"})
    assert r.status_code == 200
    closed = r.json()["result"]
    assert closed["active"] == "false" and closed["closed_at"] == "2025-01-15 10:01:00"
    assert closed["closed_by"]["value"] == sn.ids["rsbridge"]
    assert closed["short_description"] == record["short_description"]  # PUT is partial
    r = sn.request("DELETE", f"/api/now/table/incident/{sys_id}")
    assert r.status_code == 204 and r.content == b""
    r = sn.get(f"/api/now/table/incident/{sys_id}")
    assert r.status_code == 404 and r.json() == NOT_FOUND


def test_an_update_without_changes_is_not_counted(sn: Instance) -> None:
    sys_id = sn.ids["INC0010003"]
    before = sn.result(f"/api/now/table/incident/{sys_id}")
    r = sn.patch(f"/api/now/table/incident/{sys_id}", json={"state": before["state"]})
    assert r.json()["result"]["sys_mod_count"] == before["sys_mod_count"]


@pytest.mark.parametrize("prefix", ["/api/now/table", "/api/now/v1/table", "/api/now/v2/table"])
def test_versioned_paths(sn: Instance, prefix: str) -> None:
    result = sn.result(f"{prefix}/incident", params={"sysparm_limit": "1"})
    assert result[0]["number"] == "INC0010001"


def test_errors_use_the_envelope(sn: Instance) -> None:
    r = sn.get("/api/now/table/u_nothing")
    assert r.status_code == 400
    assert r.json() == {
        "error": {"message": "Invalid table u_nothing", "detail": None},
        "status": "failure",
    }
    for method in ("GET", "PATCH", "DELETE"):
        r = sn.request(method, f"/api/now/table/incident/{'0' * 32}", json={})
        assert r.status_code == 404 and r.json() == NOT_FOUND
    r = sn.request("DELETE", "/api/now/table/incident")
    assert r.status_code == 405 and r.json()["status"] == "failure"
    r = sn.post(
        "/api/now/table/incident",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "Exception while reading request"
    r = sn.get("/api/now/nothing")
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "Requested URI does not represent any resource"


def test_unknown_fields_are_ignored_and_arrays_use_the_first_record(sn: Instance) -> None:
    r = sn.post(
        "/api/now/table/incident",
        json=[{"short_description": "first", "u_bogus": "x"}, {"short_description": "second"}],
    )
    assert r.status_code == 201
    result = r.json()["result"]
    assert result["short_description"] == "first" and "u_bogus" not in result
    assert len(sn.state.query("incident", "short_descriptionSTARTSWITHsecond")) == 0


def test_system_fields_cannot_be_written(sn: Instance) -> None:
    r = sn.post(
        "/api/now/table/incident",
        json={"sys_created_by": "mallory", "sys_mod_count": "9", "sys_class_name": "problem"},
    )
    result = r.json()["result"]
    assert result["sys_created_by"] == "rsbridge"
    assert result["sys_mod_count"] == "0" and result["sys_class_name"] == "incident"


def test_a_posted_sys_id_is_honoured_and_a_duplicate_is_refused(sn: Instance) -> None:
    sys_id = "0123456789abcdef0123456789abcdef"
    r = sn.post("/api/now/table/incident", json={"sys_id": sys_id, "short_description": "a"})
    assert r.status_code == 201 and r.json()["result"]["sys_id"] == sys_id
    r = sn.post("/api/now/table/incident", json={"sys_id": sys_id, "short_description": "b"})
    assert r.status_code == 403
    assert r.json() == {
        "error": {
            "message": "Operation Failed",
            "detail": "Error during insert of incident (INC0010007)",
        },
        "status": "failure",
    }
    # the failed insert used no number and changed nothing
    assert sn.state.get("incident", sys_id)["short_description"] == "a"  # type: ignore[index]
    r = sn.post("/api/now/table/incident", json={"short_description": "c"})
    assert r.json()["result"]["number"] == "INC0010007"
    # a sys_id of another hierarchy's record may be reused, a task sibling's may not
    r = sn.post("/api/now/table/problem", json={"sys_id": sys_id})
    assert r.status_code == 403
    r = sn.post(
        "/api/now/table/sys_user_group", json={"sys_id": sys_id, "name": "G"}, auth=sn.demo.admin
    )
    assert r.status_code == 201


def test_an_invalid_sys_id_is_replaced(sn: Instance) -> None:
    r = sn.post("/api/now/table/incident", json={"sys_id": "not-a-sys-id"})
    assert SYS_ID.fullmatch(r.json()["result"]["sys_id"])


def test_numbers_have_a_counter_per_table(sn: Instance) -> None:
    numbers = {}
    for table in (
        "incident",
        "change_request",
        "problem",
        "sc_request",
        "sc_req_item",
        "sc_task",
        "new_call",
        "interaction",
        "task",
    ):
        numbers[table] = sn.post(f"/api/now/table/{table}", json={}).json()["result"]["number"]
    assert numbers == {
        "incident": "INC0010006",
        "change_request": "CHG0010002",
        "problem": "PRB0010002",
        "sc_request": "REQ0010002",
        "sc_req_item": "RITM0010002",
        "sc_task": "SCTASK0010002",
        "new_call": "CALL0010002",
        "interaction": "IMS0010002",
        "task": "TASK0010001",
    }


def test_children_are_visible_through_task(sn: Instance) -> None:
    incident = sn.ids["INC0010001"]
    record = sn.result(f"/api/now/table/task/{incident}")
    assert record["number"] == "INC0010001" and record["sys_class_name"] == "incident"
    assert "caller_id" not in record  # task's columns only
    numbers = [
        r["number"] for r in sn.result("/api/now/table/task", params={"sysparm_fields": "number"})
    ]
    assert {
        "INC0010001",
        "CHG0010001",
        "PRB0010001",
        "REQ0010001",
        "CALL0010001",
        "IMS0010001",
    } <= set(numbers)
    r = sn.get(f"/api/now/table/problem/{incident}")
    assert r.status_code == 404  # an incident is not a problem
    by_class = sn.result(
        "/api/now/table/task",
        params={"sysparm_query": "sys_class_name=incident", "sysparm_fields": "number"},
    )
    assert len(by_class) == 5


def test_sysparm_fields_and_dot_walking(sn: Instance) -> None:
    result = sn.result(
        f"/api/now/table/incident/{sn.ids['INC0010001']}",
        params={
            "sysparm_fields": "number,assigned_to.user_name,caller_id.email,cmdb_ci.fqdn,"
            "assignment_group.manager,u_missing,caller_id.nothing"
        },
    )
    assert result == {
        "number": "INC0010001",
        "assigned_to.user_name": "jsmith",
        "caller_id.email": "abel.tuter@example.com",
        "cmdb_ci.fqdn": "ws-ann-01.example.com",
        "assignment_group.manager": {
            "link": f"{sn.url}/api/now/table/sys_user/{sn.ids['admin']}",
            "value": sn.ids["admin"],
        },
    }
    # through an empty reference
    third = sn.result(
        f"/api/now/table/incident/{sn.ids['INC0010003']}",
        params={"sysparm_fields": "cmdb_ci.name", "sysparm_display_value": "all"},
    )
    assert third == {"cmdb_ci.name": {"display_value": "", "value": ""}}


def test_display_values(sn: Instance) -> None:
    path = f"/api/now/table/incident/{sn.ids['INC0010001']}"
    fields = "state,caller_id,priority,active,sys_class_name,reassignment_count,number"
    shown = sn.result(path, params={"sysparm_fields": fields, "sysparm_display_value": "true"})
    assert shown == {
        "state": "In Progress",
        "caller_id": {
            "display_value": "Abel Tuter",
            "link": f"{sn.url}/api/now/table/sys_user/{sn.ids['abel.tuter']}",
        },
        "priority": "3 - Moderate",
        "active": "true",
        "sys_class_name": "Incident",
        "reassignment_count": "0",
        "number": "INC0010001",
    }
    both = sn.result(
        path,
        params={
            "sysparm_fields": "state,caller_id",
            "sysparm_display_value": "all",
        },
    )
    assert both == {
        "state": {"display_value": "In Progress", "value": "2"},
        "caller_id": {
            "display_value": "Abel Tuter",
            "link": f"{sn.url}/api/now/table/sys_user/{sn.ids['abel.tuter']}",
            "value": sn.ids["abel.tuter"],
        },
    }
    no_links = sn.result(
        path,
        params={
            "sysparm_fields": "caller_id",
            "sysparm_display_value": "all",
            "sysparm_exclude_reference_link": "true",
        },
    )
    assert no_links == {"caller_id": {"display_value": "Abel Tuter", "value": sn.ids["abel.tuter"]}}
    for mode, expected in (("false", sn.ids["abel.tuter"]), ("true", "Abel Tuter")):
        plain = sn.result(
            path,
            params={
                "sysparm_fields": "caller_id",
                "sysparm_display_value": mode,
                "sysparm_exclude_reference_link": "true",
            },
        )
        assert plain == {"caller_id": expected}


def test_integers_display_with_grouping(sn: Instance) -> None:
    r = sn.post("/api/now/table/incident", json={"order": "12345"})
    result = sn.result(
        f"/api/now/table/incident/{r.json()['result']['sys_id']}",
        params={"sysparm_fields": "order", "sysparm_display_value": "all"},
    )
    assert result == {"order": {"display_value": "12,345", "value": "12345"}}


def test_writes_honour_display_parameters(sn: Instance) -> None:
    r = sn.post(
        "/api/now/table/incident",
        params={"sysparm_display_value": "true", "sysparm_fields": "state,caller_id,number"},
        json={"caller_id": sn.ids["beth.anglin"]},
    )
    assert r.json()["result"] == {
        "state": "New",
        "caller_id": {
            "display_value": "Beth Anglin",
            "link": f"{sn.url}/api/now/table/sys_user/{sn.ids['beth.anglin']}",
        },
        "number": "INC0010006",
    }


def test_references_by_display_value_and_input_display_value(sn: Instance) -> None:
    r = sn.post(
        "/api/now/table/incident",
        json={"caller_id": "Beth Anglin", "assignment_group": "Network", "cmdb_ci": "nonexistent"},
    )
    result = r.json()["result"]
    assert result["caller_id"]["value"] == sn.ids["beth.anglin"]
    assert result["assignment_group"]["value"] == sn.ids["Network"]
    assert result["cmdb_ci"]["value"] == "nonexistent"  # stored as given, shown empty
    r = sn.post(
        "/api/now/table/incident",
        params={"sysparm_input_display_value": "true"},
        json={"state": "In Progress", "impact": "1 - High", "caller_id": "David Loo"},
    )
    result = r.json()["result"]
    assert result["state"] == "2" and result["impact"] == "1"
    assert result["caller_id"]["value"] == sn.ids["david.loo"]


def test_values_are_normalised_and_strings_truncated(sn: Instance) -> None:
    r = sn.post(
        "/api/now/table/incident",
        json={
            "short_description": "x" * 200,
            "knowledge": 1,
            "reopen_count": 2.0,
            "description": None,
        },
    )
    result = r.json()["result"]
    assert result["short_description"] == "x" * 160  # max_length of the column
    assert result["knowledge"] == "true"
    assert result["reopen_count"] == "2"
    assert result["description"] == ""


PAGE_TABLE = "/api/now/table/sys_user"


def test_paging_headers(sn: Instance) -> None:
    total = len(sn.state.records("sys_user"))
    assert total == 10
    r = sn.get(PAGE_TABLE, params={"sysparm_limit": "4", "sysparm_fields": "user_name"})
    assert r.headers["x-total-count"] == "10"
    assert len(r.json()["result"]) == 4
    base = f"{sn.url}{PAGE_TABLE}?sysparm_fields=user_name&sysparm_limit=4"
    assert r.headers["link"] == (
        f'<{base}&sysparm_offset=0>;rel="first",<{base}&sysparm_offset=4>;rel="next",'
        f'<{base}&sysparm_offset=8>;rel="last"'
    )
    r = sn.get(
        PAGE_TABLE,
        params={"sysparm_limit": "4", "sysparm_offset": "4", "sysparm_fields": "user_name"},
    )
    assert r.headers["link"] == (
        f'<{base}&sysparm_offset=0>;rel="first",<{base}&sysparm_offset=0>;rel="prev",'
        f'<{base}&sysparm_offset=8>;rel="next",<{base}&sysparm_offset=8>;rel="last"'
    )
    r = sn.get(
        PAGE_TABLE,
        params={"sysparm_limit": "4", "sysparm_offset": "8", "sysparm_fields": "user_name"},
    )
    assert len(r.json()["result"]) == 2
    assert 'rel="next"' not in r.headers["link"]
    r = sn.get(PAGE_TABLE)
    assert r.headers["x-total-count"] == "10" and "link" not in r.headers  # everything fits
    r = sn.get(
        PAGE_TABLE, params={"sysparm_limit": "4", "sysparm_suppress_pagination_header": "true"}
    )
    assert "link" not in r.headers and r.headers["x-total-count"] == "10"
    r = sn.get(PAGE_TABLE, params={"sysparm_limit": "4", "sysparm_no_count": "true"})
    assert "x-total-count" not in r.headers and 'rel="last"' not in r.headers["link"]


def test_pages_walk_through_everything(sn: Instance) -> None:
    seen: list[str] = []
    offset = 0
    while True:
        page = sn.result(
            PAGE_TABLE,
            params={
                "sysparm_limit": "3",
                "sysparm_offset": str(offset),
                "sysparm_query": "ORDERBYuser_name",
            },
        )
        if not page:
            break
        seen += [u["user_name"] for u in page]
        offset += 3
    assert seen == sorted(seen) and len(seen) == 10
