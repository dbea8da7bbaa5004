"""Custom objects and fields loaded from a source-format package directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsbridge.connectors.salesforce.classic import PAGES
from rsbridge.connectors.salesforce.package import package_files, write_package
from rsbridge.connectors.salesforce.schema import Schema
from rsbridge.sim.salesforce import SimSalesforceState
from rsbridge.sim.salesforce.package import PackageError, load_package
from tests.sim_salesforce.conftest import Org

PACKAGE = Path(__file__).parent / "fixtures" / "package"


@pytest.fixture
def pkg_org(org: Org) -> Org:
    assert load_package(org.state, PACKAGE) == ["BT_Session_Event__c", "BT_Session__c", "Case"]
    return org


def test_custom_object_is_described(pkg_org: Org) -> None:
    described = pkg_org.get("/sobjects/BT_Session__c/describe").json()
    assert described["custom"] is True and described["keyPrefix"] == "a0Y"
    assert described["label"] == "BeyondTrust Session"
    assert described["labelPlural"] == "BeyondTrust Sessions"
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["Name"]["autoNumber"] is True
    assert fields["Session_Id__c"]["externalId"] is True
    assert fields["Session_Id__c"]["unique"] is True and fields["Session_Id__c"]["length"] == 64
    assert fields["Case__c"]["type"] == "reference"
    assert fields["Case__c"]["referenceTo"] == ["Case"]
    assert fields["Case__c"]["relationshipName"] == "Case__r"
    assert fields["Transcript__c"]["type"] == "textarea"
    assert fields["Transcript__c"]["length"] == 131072
    assert fields["Start_Time__c"]["type"] == "datetime"
    assert fields["Duration__c"]["type"] == "double"
    assert fields["Customer_Satisfied__c"]["type"] == "boolean"
    assert [v["value"] for v in fields["Outcome__c"]["picklistValues"]] == [
        "Resolved",
        "Escalated",
    ]
    case_fields = {f["name"] for f in pkg_org.get("/sobjects/Case/describe").json()["fields"]}
    assert "BT_External_Key__c" in case_fields and "CaseNumber" in case_fields
    children = pkg_org.get("/sobjects/Case/describe").json()["childRelationships"]
    assert {
        "childSObject": "BT_Session__c",
        "field": "Case__c",
        "relationshipName": "BT_Sessions__r",
        "cascadeDelete": False,
    } in children


def test_records_of_the_custom_object(pkg_org: Org) -> None:
    org = pkg_org
    case_id = org.ids["case_vpn"]
    created = org.post(
        "/sobjects/BT_Session__c",
        json={
            "Session_Id__c": "c5a1e8b7",
            "Case__c": case_id,
            "Start_Time__c": "2025-01-15T09:30:00Z",
            "Duration__c": 125,
            "Outcome__c": "Resolved",
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["id"].startswith("a0Y")
    fields = "Name, Session_Id__c, Start_Time__c, Customer_Satisfied__c, Case__r.CaseNumber"
    where = f"WHERE Case__c = '{case_id}'"
    rows = org.query(f"SELECT {fields}, Case__r.Contact.Email FROM BT_Session__c {where}")[  # noqa: S608
        "records"
    ]
    assert len(rows) == 1
    row = rows[0]
    assert row["Name"] == "RS-00001"
    assert row["Start_Time__c"] == "2025-01-15T09:30:00.000+0000"
    assert row["Customer_Satisfied__c"] is False
    assert row["Case__r"]["CaseNumber"] == "00001002"
    assert row["Case__r"]["Contact"]["Email"] == "grace@globex.example"
    where = f"WHERE Id = '{case_id}'"
    sessions = "(SELECT Session_Id__c FROM BT_Sessions__r)"
    parent = org.query(f"SELECT CaseNumber, {sessions} FROM Case {where}")["records"][0]  # noqa: S608
    assert [s["Session_Id__c"] for s in parent["BT_Sessions__r"]["records"]] == ["c5a1e8b7"]


def test_custom_field_rules(pkg_org: Org) -> None:
    org = pkg_org
    missing = org.post("/sobjects/BT_Session__c", json={"Duration__c": 1})
    assert missing.json()[0]["fields"] == ["Session_Id__c"]
    org.post("/sobjects/BT_Session__c", json={"Session_Id__c": "one"})
    duplicate = org.post("/sobjects/BT_Session__c", json={"Session_Id__c": "ONE"})
    assert duplicate.json()[0]["errorCode"] == "DUPLICATE_VALUE"
    restricted = org.post(
        "/sobjects/BT_Session__c", json={"Session_Id__c": "two", "Outcome__c": "Maybe"}
    )
    assert restricted.json()[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    upserted = org.patch("/sobjects/BT_Session__c/Session_Id__c/one", json={"Duration__c": 9})
    assert upserted.status_code == 200 and upserted.json()["created"] is False
    by_key = org.patch("/sobjects/Case/BT_External_Key__c/KEY-1", json={"Subject": "by key"})
    assert by_key.status_code == 201


def test_broken_packages_are_refused(tmp_path: Path) -> None:
    state = SimSalesforceState()
    with pytest.raises(PackageError, match="no objects/ folder"):
        load_package(state, tmp_path)
    folder = tmp_path / "objects" / "Thing__c"
    (folder / "fields").mkdir(parents=True)
    with pytest.raises(PackageError, match=r"no Thing__c\.object-meta\.xml"):
        load_package(state, tmp_path)
    (folder / "Thing__c.object-meta.xml").write_text("<CustomObject>not metadata")
    with pytest.raises(PackageError, match=r"Thing__c\.object-meta\.xml"):
        load_package(state, tmp_path)
    (folder / "Thing__c.object-meta.xml").write_text(
        '<CustomObject xmlns="http://soap.sforce.com/2006/04/metadata"><label>T</label>'
        "</CustomObject>"
    )
    (folder / "fields" / "Other__c.field-meta.xml").write_text(
        '<CustomField xmlns="http://soap.sforce.com/2006/04/metadata">'
        "<fullName>Other__c</fullName><type>Lookup</type><referenceTo>Missing__c</referenceTo>"
        "<relationshipName>Others</relationshipName></CustomField>"
    )
    with pytest.raises(PackageError, match="unknown object Missing__c"):
        load_package(state, tmp_path)


def test_master_detail_children(pkg_org: Org) -> None:
    org = pkg_org
    described = org.get("/sobjects/BT_Session_Event__c/describe").json()
    fields = {f["name"]: f for f in described["fields"]}
    assert "OwnerId" not in fields  # a detail object is owned through its master
    assert fields["Session__c"]["nillable"] is False
    assert fields["Name"]["autoNumber"] is False
    missing = org.post("/sobjects/BT_Session_Event__c", json={"Body__c": "chat"})
    assert missing.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    session = org.post("/sobjects/BT_Session__c", json={"Session_Id__c": "s1"}).json()["id"]
    for n in range(3):
        org.post(
            "/sobjects/BT_Session_Event__c",
            json={"Session__c": session, "Name": f"event {n}", "Body__c": f"line {n}"},
        )
    where = f"WHERE Id = '{session}'"
    events = "(SELECT Name, Body__c FROM Events__r ORDER BY Name DESC LIMIT 2)"
    row = org.query(f"SELECT Session_Id__c, {events} FROM BT_Session__c {where}")["records"][0]  # noqa: S608
    assert [e["Body__c"] for e in row["Events__r"]["records"]] == ["line 2", "line 1"]


def test_the_generated_package_brings_its_pages_and_case_buttons(org: Org, tmp_path: Path) -> None:
    write_package(tmp_path, package_files(Schema.build()))
    assert "Case" in load_package(org.state, tmp_path)
    pages = org.query("SELECT Name, ControllerType, ControllerKey, MasterLabel FROM ApexPage")
    by_name = {p["Name"]: p for p in pages["records"]}
    assert set(by_name) == set(PAGES)
    for name, (_, label) in PAGES.items():
        assert by_name[name]["ControllerType"] == "Standard"
        assert by_name[name]["ControllerKey"] == "Case"
        assert by_name[name]["MasterLabel"] == label
    links = org.query(
        "SELECT Name, LinkType, DisplayType, Url FROM WebLink "
        "WHERE PageOrSobjectType = 'Case' ORDER BY Name"
    )["records"]
    assert [(r["Name"], r["LinkType"], r["DisplayType"], r["Url"]) for r in links] == sorted(
        (button, "page", "button", page) for page, (button, _) in PAGES.items()
    )
    # Deploying again updates the same records.
    load_package(org.state, tmp_path)
    assert org.query("SELECT COUNT() FROM WebLink")["totalSize"] == len(PAGES)


def test_a_button_to_a_page_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    links = tmp_path / "objects" / "Case" / "webLinks"
    links.mkdir(parents=True)
    (links / "Go.webLink-meta.xml").write_text(
        '<WebLink xmlns="http://soap.sforce.com/2006/04/metadata"><fullName>Go</fullName>'
        "<availability>online</availability><displayType>button</displayType>"
        "<linkType>page</linkType><openType>sidebar</openType><page>Missing</page>"
        "<protected>false</protected></WebLink>"
    )
    with pytest.raises(PackageError, match="no Visualforce page 'Missing'"):
        load_package(SimSalesforceState(), tmp_path)
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "Missing.page").write_text("<html>not a page</html>")
    (pages / "Missing.page-meta.xml").write_text(
        '<ApexPage xmlns="http://soap.sforce.com/2006/04/metadata"><apiVersion>60.0</apiVersion>'
        "<label>M</label></ApexPage>"
    )
    with pytest.raises(PackageError, match="starts with <apex:page>"):
        load_package(SimSalesforceState(), tmp_path)
    (pages / "Missing.page").write_text('<apex:page controller="Go"></apex:page>')
    state = SimSalesforceState()
    load_package(state, tmp_path)
    assert state.find_by("ApexPage", "Name", "Missing")[0]["ControllerType"] == "Custom"
