"""The SOQL subset: fields, parent relationships, WHERE, ORDER BY, LIMIT, paging, errors."""

from __future__ import annotations

import pytest

from rsbridge.sim.salesforce import SalesforceError
from rsbridge.sim.salesforce.soql import parse
from tests.sim_salesforce.conftest import Org


def _subjects(answer: dict[str, object]) -> list[str]:
    return [r["Subject"] for r in answer["records"]]  # type: ignore[attr-defined]


def test_records_carry_attributes_and_parent_objects(org: Org) -> None:
    where = f"WHERE Id = '{org.ids['case_vpn']}'"
    answer = org.query(
        "SELECT Id, CaseNumber, Contact.Email, Contact.Account.Name FROM Case " + where  # noqa: S608
    )
    assert answer["totalSize"] == 1 and answer["done"] is True
    record = answer["records"][0]
    assert record["attributes"]["type"] == "Case"
    assert record["Contact"]["Email"] == "grace@globex.example"
    assert record["Contact"]["attributes"]["type"] == "Contact"
    assert record["Contact"]["Account"]["Name"] == "Globex"
    closed = f"WHERE Id = '{org.ids['case_closed']}'"
    no_contact = org.query("SELECT Contact.Email FROM Case " + closed)["records"][0]  # noqa: S608
    assert no_contact["Contact"] is None


def test_where_and_or_in_like(org: Org) -> None:
    both = org.query(
        "SELECT Subject FROM Case WHERE Priority IN ('High', 'low') AND Status != 'Closed' "
        "ORDER BY Subject"
    )
    assert _subjects(both) == ["Printer on floor 3 jams", "VPN drops every hour"]
    either = org.query(
        "SELECT Subject FROM Case WHERE (Origin = 'Email' OR Subject LIKE '%vpn%') "
        "ORDER BY Subject DESC"
    )
    assert _subjects(either) == ["VPN drops every hour", "Password reset"]
    negated = org.query("SELECT Subject FROM Case WHERE NOT Subject LIKE 'P%'")
    assert _subjects(negated) == ["VPN drops every hour"]
    not_in = org.query("SELECT Subject FROM Case WHERE Origin NOT IN ('Phone', 'Web')")
    assert _subjects(not_in) == ["Password reset"]
    by_parent = org.query("SELECT Subject FROM Case WHERE Account.Name = 'acme corporation'")
    assert _subjects(by_parent) == ["Printer on floor 3 jams"]
    nulls = org.query("SELECT Subject FROM Case WHERE ContactId = null")
    assert _subjects(nulls) == ["Password reset"]


def test_names_are_case_insensitive(org: Org) -> None:
    answer = org.query("select subject, contact.email from CASE where PRIORITY = 'HIGH'")
    record = answer["records"][0]
    assert record["Subject"] == "VPN drops every hour"
    assert record["Contact"]["Email"] == "grace@globex.example"


def test_order_limit_offset_and_count(org: Org) -> None:
    first = org.query("SELECT Subject FROM Case ORDER BY Subject LIMIT 2")
    assert _subjects(first) == ["Password reset", "Printer on floor 3 jams"]
    second = org.query("SELECT Subject FROM Case ORDER BY Subject LIMIT 2 OFFSET 2")
    assert _subjects(second) == ["VPN drops every hour"]
    counted = org.query("SELECT COUNT() FROM Case WHERE IsClosed = false")
    assert counted["totalSize"] == 2 and counted["records"] == []


def test_dates_compare_with_literals(org: Org) -> None:
    after = org.query("SELECT Subject FROM Case WHERE CreatedDate >= 2025-01-15T00:00:00Z")
    assert after["totalSize"] == 3
    before = org.query("SELECT Subject FROM Case WHERE CreatedDate < 2025-01-15T09:00:00Z")
    assert before["totalSize"] == 0


def test_next_records_url_pages_through(org: Org) -> None:
    org.state.query_batch_size = 2
    for n in range(3):
        org.post("/sobjects/Account", json={"Name": f"Paged {n}"})
    answer = org.query("SELECT Name FROM Account ORDER BY Name")
    assert answer["totalSize"] == 5 and answer["done"] is False
    names = [r["Name"] for r in answer["records"]]
    url = answer["nextRecordsUrl"]
    assert url.startswith("/services/data/v59.0/query/01g") and url.endswith("-2")
    while url:
        page = org.http.get(f"{org.url}{url}", headers={"Authorization": f"Bearer {org.token}"})
        assert page.status_code == 200
        body = page.json()
        names += [r["Name"] for r in body["records"]]
        url = body.get("nextRecordsUrl")
    assert names == ["Acme Corporation", "Globex", "Paged 0", "Paged 1", "Paged 2"]
    stale = org.get("/query/01gXXXXXXXXXXXXXXX-2")
    assert stale.status_code == 404 and stale.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_errors_are_located(org: Org) -> None:
    field = org.get("/query", params={"q": "SELECT Foo FROM Case"})
    assert field.status_code == 400
    error = field.json()[0]
    assert error["errorCode"] == "INVALID_FIELD"
    assert "ERROR at Row:1:Column:8" in error["message"]
    assert "No such column 'Foo' on entity 'Case'" in error["message"]
    kind = org.get("/query", params={"q": "SELECT Id FROM Nope"}).json()[0]
    assert kind["errorCode"] == "INVALID_TYPE"
    syntax = org.get("/query", params={"q": "SELECT Id FROMM Case"}).json()[0]
    assert syntax["errorCode"] == "MALFORMED_QUERY"
    relation = org.get("/query", params={"q": "SELECT Nope.Name FROM Case"}).json()[0]
    assert "Didn't understand relationship 'Nope'" in relation["message"]


@pytest.mark.parametrize(
    "text",
    [
        "SELECT Id FROM Case WHERE",
        "SELECT Id FROM Case WHERE Id IN (SELECT ParentId FROM CaseComment)",
        "SELECT Id, (SELECT Id, (SELECT Id FROM Feeds) FROM CaseComments) FROM Case",
        "SELECT Id FROM Case WHERE Subject = 'unterminated",
        "SELECT Id FROM Case LIMIT -1",
        "SELECT COUNT(Id) FROM Case",
    ],
)
def test_outside_the_subset_is_malformed(text: str) -> None:
    with pytest.raises(SalesforceError) as caught:
        parse(text)
    assert caught.value.error_code == "MALFORMED_QUERY"


def test_string_escapes_are_literal(org: Org) -> None:
    org.post("/sobjects/Account", json={"Name": "O'Brien % Sons"})
    exact = org.query("SELECT Name FROM Account WHERE Name = 'O\\'Brien % Sons'")
    assert [r["Name"] for r in exact["records"]] == ["O'Brien % Sons"]
    like = org.query("SELECT Name FROM Account WHERE Name LIKE 'O\\'Brien \\% %'")
    assert like["totalSize"] == 1
    injected = org.query("SELECT Name FROM Account WHERE Name = 'x\\' OR Name != \\'x'")
    assert injected["totalSize"] == 0


def test_child_sub_queries(org: Org) -> None:
    vpn = org.ids["case_vpn"]
    for body, published in (("first", True), ("hidden", False), ("second", True)):
        org.post(
            "/sobjects/CaseComment",
            json={"ParentId": vpn, "CommentBody": body, "IsPublished": published},
        )
    answer = org.query(
        "SELECT Subject, (SELECT CommentBody, Parent.Subject FROM CaseComments "
        "WHERE IsPublished = true ORDER BY CommentBody DESC LIMIT 5) FROM Case ORDER BY Subject"
    )
    by_subject = {r["Subject"]: r for r in answer["records"]}
    comments = by_subject["VPN drops every hour"]["CaseComments"]
    assert comments["totalSize"] == 2 and comments["done"] is True
    assert [c["CommentBody"] for c in comments["records"]] == ["second", "first"]
    assert comments["records"][0]["attributes"]["type"] == "CaseComment"
    assert comments["records"][0]["Parent"]["Subject"] == "VPN drops every hour"
    assert by_subject["Password reset"]["CaseComments"] is None
    contacts = org.query(
        "SELECT Name, (SELECT Subject FROM Cases) FROM Contact WHERE Name = 'Ada Lovelace'"
    )
    assert [c["Subject"] for c in contacts["records"][0]["Cases"]["records"]] == [
        "Printer on floor 3 jams"
    ]
    unknown = org.get("/query", params={"q": "SELECT Id, (SELECT Id FROM Nope) FROM Case"})
    assert unknown.status_code == 400 and unknown.json()[0]["errorCode"] == "INVALID_TYPE"
    bad_field = org.get(
        "/query", params={"q": "SELECT Id, (SELECT Nope FROM CaseComments) FROM Case"}
    )
    assert bad_field.json()[0]["errorCode"] == "INVALID_FIELD"


def test_relative_date_literals(org: Org) -> None:
    org.state.session_timeout = None
    count = "SELECT COUNT() FROM Case WHERE CreatedDate "
    assert org.query(count + "= TODAY")["totalSize"] == 3
    assert org.query(count + "= yesterday")["totalSize"] == 0
    assert org.query(count + "< TOMORROW")["totalSize"] == 3
    org.clock.now += 2 * 86400  # two days later
    assert org.query(count + "= LAST_N_DAYS:1")["totalSize"] == 0
    assert org.query(count + "= LAST_N_DAYS:2")["totalSize"] == 3
    assert org.query(count + "< TODAY")["totalSize"] == 3
    assert org.query(count + "> YESTERDAY")["totalSize"] == 0
    assert org.query(count + "!= NEXT_N_DAYS:5")["totalSize"] == 3
    bad = org.get("/query", params={"q": count + "= LAST_N_WEEKS:2"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "MALFORMED_QUERY"
