"""Composite (references, allOrNone, 200 with per-subrequest status) and collections."""

from __future__ import annotations

from typing import Any

from rsbridge.sim.salesforce import FieldDef
from tests.sim_salesforce.conftest import API, Org


def _case_then_comment(subject: str, body: Any) -> list[dict[str, Any]]:
    return [
        {
            "method": "POST",
            "url": f"{API}/sobjects/Case",
            "referenceId": "refCase",
            "body": {"Subject": subject},
        },
        {
            "method": "POST",
            "url": f"{API}/sobjects/CaseComment",
            "referenceId": "refComment",
            "body": {"ParentId": "@{refCase.id}", "CommentBody": body},
        },
        {
            "method": "GET",
            "url": f"{API}/sobjects/Case/@{{refCase.id}}?fields=CaseNumber",
            "referenceId": "refRead",
        },
    ]


def test_references_chain_subrequests(org: Org) -> None:
    answer = org.post(
        "/composite",
        json={"allOrNone": True, "compositeRequest": _case_then_comment("Comp", "note")},
    )
    assert answer.status_code == 200
    entries = answer.json()["compositeResponse"]
    assert [e["referenceId"] for e in entries] == ["refCase", "refComment", "refRead"]
    assert [e["httpStatusCode"] for e in entries] == [201, 201, 200]
    case_id = entries[0]["body"]["id"]
    assert entries[0]["httpHeaders"] == {"Location": f"{API}/sobjects/Case/{case_id}"}
    comment = org.get(f"/sobjects/CaseComment/{entries[1]['body']['id']}").json()
    assert comment["ParentId"] == case_id
    assert entries[2]["body"]["CaseNumber"] == "00001004"
    assert len(org.state.requests[-2].sub_requests) == 3


def test_all_or_none_rolls_back(org: Org) -> None:
    before = org.query("SELECT COUNT() FROM Case")["totalSize"]
    answer = org.post(
        "/composite",
        json={"allOrNone": True, "compositeRequest": _case_then_comment("Gone", "x" * 4001)},
    )
    assert answer.status_code == 200
    entries = answer.json()["compositeResponse"]
    assert [e["httpStatusCode"] for e in entries] == [400, 400, 400]
    assert entries[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert entries[1]["body"][0]["errorCode"] == "STRING_TOO_LONG"
    assert entries[2]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert org.query("SELECT COUNT() FROM Case")["totalSize"] == before


def test_without_all_or_none_successes_stay(org: Org) -> None:
    answer = org.post(
        "/composite",
        json={"allOrNone": False, "compositeRequest": _case_then_comment("Kept", "x" * 4001)},
    )
    entries = answer.json()["compositeResponse"]
    assert [e["httpStatusCode"] for e in entries] == [201, 400, 200]
    assert org.query("SELECT Subject FROM Case WHERE Subject = 'Kept'")["totalSize"] == 1


def test_unresolved_reference_fails_the_subrequest(org: Org) -> None:
    answer = org.post(
        "/composite",
        json={
            "compositeRequest": [
                {
                    "method": "PATCH",
                    "url": f"{API}/sobjects/Case/@{{missing.id}}",
                    "referenceId": "r",
                    "body": {"Status": "Closed"},
                }
            ]
        },
    )
    entry = answer.json()["compositeResponse"][0]
    assert entry["httpStatusCode"] == 400
    assert entry["body"][0]["errorCode"] == "PROCESSING_HALTED"


def test_at_most_25_subrequests(org: Org) -> None:
    reads = [
        {
            "method": "GET",
            "url": f"{API}/sobjects/Case/{org.ids['case_vpn']}",
            "referenceId": f"r{n}",
        }
        for n in range(26)
    ]
    too_many = org.post("/composite", json={"compositeRequest": reads})
    assert too_many.status_code == 400
    fine = org.post("/composite", json={"compositeRequest": reads[:25]})
    assert fine.status_code == 200 and len(fine.json()["compositeResponse"]) == 25
    assert org.state.api_requests >= 2  # one call each, whatever the subrequests


def test_collections_create_update_delete(org: Org) -> None:
    created = org.post(
        "/composite/sobjects",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Account"}, "Name": "One"},
                {"attributes": {"type": "Contact"}, "FirstName": "No last name"},
            ],
        },
    )
    assert created.status_code == 200
    first, second = created.json()
    assert first["success"] is True and first["id"].startswith("001")
    assert second["success"] is False
    assert second["errors"] == [
        {
            "statusCode": "REQUIRED_FIELD_MISSING",
            "message": "Required fields are missing: [LastName]",
            "fields": ["LastName"],
        }
    ]
    updated = org.patch(
        "/composite/sobjects",
        json={"records": [{"attributes": {"type": "Account"}, "Id": first["id"], "Name": "Uno"}]},
    )
    assert updated.json()[0]["success"] is True
    fetched = org.get("/composite/sobjects/Account", params={"ids": first["id"], "fields": "Name"})
    assert fetched.json()[0]["Name"] == "Uno"
    deleted = org.delete("/composite/sobjects", params={"ids": first["id"]})
    assert deleted.json() == [{"id": first["id"], "success": True, "errors": []}]


def test_collections_all_or_none(org: Org) -> None:
    answer = org.post(
        "/composite/sobjects",
        json={
            "allOrNone": True,
            "records": [
                {"attributes": {"type": "Account"}, "Name": "Rolled back"},
                {"attributes": {"type": "Account"}},
            ],
        },
    )
    first, second = answer.json()
    assert first["success"] is False
    assert first["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert second["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert org.query("SELECT COUNT() FROM Account WHERE Name = 'Rolled back'")["totalSize"] == 0


def test_rollback_restores_updates_deletes_and_lookups(org: Org) -> None:
    case = org.state.object("Case")
    assert case is not None
    case.add(FieldDef("RS_Session_Id__c", length=64, external_id=True, custom=True))
    vpn, printer = org.ids["case_vpn"], org.ids["case_printer"]
    org.patch(f"/sobjects/Case/{vpn}", json={"RS_Session_Id__c": "before"})
    assert org.query("SELECT Id FROM Case WHERE RS_Session_Id__c = 'before'")["totalSize"] == 1
    answer = org.post(
        "/composite",
        json={
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "PATCH",
                    "url": f"{API}/sobjects/Case/{vpn}",
                    "referenceId": "u",
                    "body": {"RS_Session_Id__c": "after", "Subject": "changed"},
                },
                {"method": "DELETE", "url": f"{API}/sobjects/Case/{printer}", "referenceId": "d"},
                {
                    "method": "PATCH",
                    "url": f"{API}/sobjects/Case/RS_Session_Id__c/new",
                    "referenceId": "n",
                    "body": {"Subject": "upserted"},
                },
                {
                    "method": "POST",
                    "url": f"{API}/sobjects/Contact",
                    "referenceId": "x",
                    "body": {},
                },
            ],
        },
    )
    statuses = [e["httpStatusCode"] for e in answer.json()["compositeResponse"]]
    assert statuses == [400, 400, 400, 400]
    record = org.get(f"/sobjects/Case/{vpn}").json()
    assert (record["Subject"], record["RS_Session_Id__c"]) == ("VPN drops every hour", "before")
    assert org.get(f"/sobjects/Case/{printer}").status_code == 200
    for value, expected in (("before", 1), ("after", 0), ("new", 0)):
        found = org.query(f"SELECT Id FROM Case WHERE RS_Session_Id__c = '{value}'")  # noqa: S608
        assert found["totalSize"] == expected, value
    # Numbers handed out inside the rolled-back transaction are handed out again.
    again = org.patch("/sobjects/Case/RS_Session_Id__c/new", json={"Subject": "kept"})
    assert again.status_code == 201
    assert org.get(f"/sobjects/Case/{again.json()['id']}").json()["CaseNumber"] == "00001004"


def test_lookups_follow_updates(org: Org) -> None:
    acme = org.ids["acme"]
    assert org.query("SELECT Id FROM Account WHERE Name = 'Acme Corporation'")["totalSize"] == 1
    org.patch(f"/sobjects/Account/{acme}", json={"Name": "Acme Holdings"})
    assert org.query("SELECT Id FROM Account WHERE Name = 'Acme Corporation'")["totalSize"] == 0
    renamed = org.query("SELECT Id FROM Account WHERE name = 'ACME HOLDINGS' AND Type = null")
    assert [r["Id"] for r in renamed["records"]] == [acme]
    org.delete(f"/sobjects/Account/{acme}")
    assert org.query("SELECT Id FROM Account WHERE Name = 'Acme Holdings'")["totalSize"] == 0


def test_composite_cannot_nest_itself(org: Org) -> None:
    inner = {"compositeRequest": [{"method": "GET", "url": f"{API}/limits", "referenceId": "l"}]}
    answer = org.post(
        "/composite",
        json={
            "compositeRequest": [
                {"method": "POST", "url": f"{API}/composite", "referenceId": "c", "body": inner}
            ]
        },
    )
    entry = answer.json()["compositeResponse"][0]
    assert entry["httpStatusCode"] == 400
    assert entry["body"][0]["errorCode"] == "INVALID_API_INPUT"


def test_collections_upsert_by_external_id(org: Org) -> None:
    case = org.state.object("Case")
    assert case is not None
    case.add(FieldDef("RS_Session_Id__c", length=64, external_id=True, custom=True))
    org.patch("/sobjects/Case/RS_Session_Id__c/old", json={"Subject": "existing"})

    def records(*items: dict[str, Any]) -> dict[str, Any]:
        return {
            "allOrNone": False,
            "records": [{"attributes": {"type": "Case"}, **i} for i in items],
        }

    answer = org.patch(
        "/composite/sobjects/Case/RS_Session_Id__c",
        json=records(
            {"RS_Session_Id__c": "old", "Priority": "High"},
            {"RS_Session_Id__c": "new", "Subject": "created"},
            {"Subject": "no key"},
        ),
    )
    assert answer.status_code == 200
    updated, created, refused = answer.json()
    assert updated["success"] is True and updated["created"] is False
    assert created["success"] is True and created["created"] is True
    assert refused["success"] is False
    assert refused["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    rows = org.query("SELECT RS_Session_Id__c, Priority FROM Case WHERE RS_Session_Id__c != null")
    assert {r["RS_Session_Id__c"]: r["Priority"] for r in rows["records"]} == {
        "old": "High",
        "new": "Medium",
    }
    not_external = org.patch("/composite/sobjects/Case/Subject", json=records({"Subject": "x"}))
    assert not_external.status_code == 400
    assert not_external.json()[0]["errorCode"] == "INVALID_FIELD"


def test_at_most_five_queries(org: Org) -> None:
    def query(n: int) -> dict[str, str]:
        return {
            "method": "GET",
            "url": f"{API}/query?q=SELECT+Id+FROM+Case",
            "referenceId": f"q{n}",
        }

    five = org.post("/composite", json={"compositeRequest": [query(n) for n in range(5)]})
    assert five.status_code == 200
    assert all(e["body"]["totalSize"] == 3 for e in five.json()["compositeResponse"])
    six = org.post("/composite", json={"compositeRequest": [query(n) for n in range(6)]})
    assert six.status_code == 400
    assert six.json()[0]["errorCode"] == "INVALID_API_INPUT"
