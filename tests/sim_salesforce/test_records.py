"""sObject REST: create, read, update, delete, errors, business rules, describe."""

from __future__ import annotations

from rsbridge.sim.salesforce import ValidationRule
from tests.sim_salesforce.conftest import Org


def test_create_answers_201_with_id_success_errors(org: Org) -> None:
    answer = org.post(
        "/sobjects/Case", json={"Subject": "Remote session 123", "ContactId": org.ids["ada"]}
    )
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == {"id", "success", "errors"}
    assert body["success"] is True and body["errors"] == []
    assert body["id"].startswith("500")
    assert answer.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_read_carries_attributes_and_business_fields(org: Org) -> None:
    case_id = org.post("/sobjects/Case", json={"Subject": "s"}).json()["id"]
    record = org.get(f"/sobjects/Case/{case_id}").json()
    assert record["attributes"] == {
        "type": "Case",
        "url": f"/services/data/v59.0/sobjects/Case/{case_id}",
    }
    assert record["Status"] == "New" and record["Priority"] == "Medium"
    assert record["OwnerId"] == org.ids["integration"]
    assert record["CreatedById"] == org.ids["integration"]
    assert record["CreatedDate"] == "2025-01-15T10:00:00.000+0000"
    assert record["IsClosed"] is False
    narrow = org.get(f"/sobjects/Case/{case_id}", params={"fields": "casenumber,Status"}).json()
    assert set(narrow) == {"attributes", "CaseNumber", "Status"}


def test_case_numbers_count_up(org: Org) -> None:
    numbers = []
    for _ in range(2):
        case_id = org.post("/sobjects/Case", json={"Subject": "n"}).json()["id"]
        numbers.append(org.get(f"/sobjects/Case/{case_id}").json()["CaseNumber"])
    seeded = org.query("SELECT CaseNumber FROM Case ORDER BY CaseNumber")["records"]
    assert [r["CaseNumber"] for r in seeded][:3] == ["00001001", "00001002", "00001003"]
    assert numbers == ["00001004", "00001005"]


def test_patch_answers_204_and_changes_the_record(org: Org) -> None:
    case_id = org.ids["case_vpn"]
    answer = org.patch(f"/sobjects/case/{case_id}", json={"status": "Closed", "Priority": "Low"})
    assert answer.status_code == 204 and answer.content == b""
    record = org.get(f"/sobjects/Case/{case_id}").json()
    assert record["Status"] == "Closed" and record["Priority"] == "Low"
    assert record["IsClosed"] is True and record["ClosedDate"] is not None


def test_delete_answers_204_then_not_found(org: Org) -> None:
    case_id = org.ids["case_printer"]
    assert org.delete(f"/sobjects/Case/{case_id}").status_code == 204
    gone = org.get(f"/sobjects/Case/{case_id}")
    assert gone.status_code == 404
    assert gone.json() == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    gone_query = f"SELECT Id FROM Case WHERE Id = '{case_id}'"  # noqa: S608
    assert org.query(gone_query)["totalSize"] == 0
    every = org.get("/queryAll", params={"q": gone_query.replace("Id FROM", "Id, IsDeleted FROM")})
    assert every.json()["records"][0]["IsDeleted"] is True


def test_unknown_object_and_field(org: Org) -> None:
    missing = org.post("/sobjects/Nope__c", json={})
    assert missing.status_code == 404 and missing.json()[0]["errorCode"] == "NOT_FOUND"
    field = org.post("/sobjects/Case", json={"Subject": "x", "Session_Id__c": "1"})
    assert field.status_code == 400
    assert field.json() == [
        {
            "message": "No such column 'Session_Id__c' on sobject of type Case",
            "errorCode": "INVALID_FIELD",
        }
    ]
    with_id = org.post("/sobjects/Case", json={"Id": org.ids["case_vpn"]})
    assert with_id.json()[0]["errorCode"] == "INVALID_FIELD"


def test_required_and_read_only_fields(org: Org) -> None:
    missing = org.post("/sobjects/Contact", json={"FirstName": "No"})
    assert missing.status_code == 400
    assert missing.json() == [
        {
            "message": "Required fields are missing: [LastName]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["LastName"],
        }
    ]
    read_only = org.post("/sobjects/Case", json={"CaseNumber": "1"})
    assert read_only.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_case_comment_body_limit_counts_bytes(org: Org) -> None:
    parent = org.ids["case_vpn"]
    fits = org.post("/sobjects/CaseComment", json={"ParentId": parent, "CommentBody": "a" * 4000})
    assert fits.status_code == 201
    too_long = org.post(
        "/sobjects/CaseComment", json={"ParentId": parent, "CommentBody": "é" * 2001}
    )
    assert too_long.status_code == 400
    error = too_long.json()[0]
    assert error["errorCode"] == "STRING_TOO_LONG" and error["fields"] == ["CommentBody"]


def test_bad_references(org: Org) -> None:
    malformed = org.post("/sobjects/Case", json={"ContactId": "12345"})
    assert malformed.json()[0]["errorCode"] == "MALFORMED_ID"
    wrong_type = org.post("/sobjects/Case", json={"ContactId": org.ids["acme"]})
    assert wrong_type.json()[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    as_form = org.post("/sobjects/Case", data={"Subject": "form"})
    assert as_form.status_code == 415
    assert as_form.json()[0]["errorCode"] == "UNSUPPORTED_MEDIA_TYPE"
    bad_json = org.request("POST", "/sobjects/Case", content=b"{nope")
    assert bad_json.status_code == 400 and bad_json.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_locked_row_and_validation_rule(org: Org) -> None:
    case_id = org.ids["case_vpn"]
    org.state.locked.add(case_id)
    locked = org.patch(f"/sobjects/Case/{case_id}", json={"Priority": "Low"})
    assert locked.status_code == 400
    assert locked.json()[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
    org.state.locked.clear()
    org.state.validation_rules.append(
        ValidationRule(
            "Case",
            "Closed cases need a description",
            lambda r: r["Status"] == "Closed" and not r["Description"],
            "Description",
        )
    )
    refused = org.patch(f"/sobjects/Case/{case_id}", json={"Status": "Closed"})
    assert refused.json() == [
        {
            "message": "Closed cases need a description",
            "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "fields": ["Description"],
        }
    ]
    assert org.get(f"/sobjects/Case/{case_id}").json()["Status"] == "Working"
    ok = org.patch(f"/sobjects/Case/{case_id}", json={"Status": "Closed", "Description": "d"})
    assert ok.status_code == 204


def test_daily_allowance_header_and_limit(org: Org) -> None:
    org.state.daily_api_limit = org.state.api_requests + 2
    first = org.get("/limits")
    assert (
        first.headers["Sforce-Limit-Info"]
        == f"api-usage={org.state.api_requests}/{org.state.daily_api_limit}"
    )
    assert first.json()["DailyApiRequests"]["Remaining"] == 1
    org.get("/sobjects")
    refused = org.get("/sobjects")
    assert refused.status_code == 403
    assert refused.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]


def test_faults_and_down(org: Org) -> None:
    org.state.fail_next(1, 503)
    assert org.get("/sobjects").status_code == 503
    assert org.get("/sobjects").status_code == 200
    org.state.fail_next(1, 400, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access")
    assert org.get("/sobjects").json()[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
    org.state.down = True
    assert org.sign_in().status_code == 503


def test_describe_global_and_object(org: Org) -> None:
    listing = org.get("/sobjects").json()
    names = {o["name"]: o for o in listing["sobjects"]}
    assert names["Case"]["keyPrefix"] == "500"
    assert names["ContentVersion"]["keyPrefix"] == "068"
    described = org.get("/sobjects/case/describe").json()
    assert described["name"] == "Case"
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["CaseNumber"]["autoNumber"] is True
    assert fields["CaseNumber"]["nameField"] is True
    assert fields["ContactId"]["referenceTo"] == ["Contact"]
    assert fields["ContactId"]["relationshipName"] == "Contact"
    assert {v["value"] for v in fields["Status"]["picklistValues"]} >= {"New", "Closed"}
    children = {c["childSObject"] for c in described["childRelationships"]}
    assert "CaseComment" in children
    info = org.get("/sobjects/Case").json()
    assert info["objectDescribe"]["name"] == "Case"


def test_requests_are_logged_with_user(org: Org) -> None:
    org.get("/sobjects")
    last = org.state.requests[-1]
    assert last.path.endswith("/sobjects") and last.user_id == org.ids["integration"]
    assert org.state.count_requests("GET", "/sobjects") == 1
