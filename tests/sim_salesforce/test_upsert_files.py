"""Upsert by external id (201 / 200 / 204 / 300) and ContentVersion uploads."""

from __future__ import annotations

import base64
import json

import pytest

from rsbridge.sim.salesforce import FieldDef
from tests.sim_salesforce.conftest import API, Org


@pytest.fixture
def ext_org(org: Org) -> Org:
    case = org.state.object("Case")
    assert case is not None
    case.add(FieldDef("RS_Session_Id__c", length=64, external_id=True, custom=True))
    return org


def test_upsert_creates_then_updates(ext_org: Org) -> None:
    org = ext_org
    created = org.patch("/sobjects/Case/RS_Session_Id__c/lsid-42", json={"Subject": "New"})
    assert created.status_code == 201
    body = created.json()
    assert body["created"] is True and body["success"] is True
    updated = org.patch("/sobjects/Case/rs_session_id__c/LSID-42", json={"Priority": "High"})
    assert updated.status_code == 200
    assert updated.json() == {"id": body["id"], "success": True, "errors": [], "created": False}
    old_api = org.http.patch(
        f"{org.url}/services/data/v45.0/sobjects/Case/RS_Session_Id__c/lsid-42",
        json={"Status": "Working"},
        headers={"Authorization": f"Bearer {org.token}"},
    )
    assert old_api.status_code == 204 and old_api.content == b""
    record = org.get("/sobjects/Case/RS_Session_Id__c/lsid-42").json()
    assert (record["Subject"], record["Priority"], record["Status"]) == ("New", "High", "Working")
    assert record["RS_Session_Id__c"] == "lsid-42"


def test_update_only_upsert_does_not_create(ext_org: Org) -> None:
    org = ext_org
    path = "/sobjects/Case/RS_Session_Id__c/missing"
    refused = org.patch(path, params={"updateOnly": "true"}, json={"Subject": "x"})
    assert refused.status_code == 404 and refused.json()[0]["errorCode"] == "NOT_FOUND"
    assert org.query("SELECT COUNT() FROM Case WHERE Subject = 'x'")["totalSize"] == 0
    assert org.patch(path, json={"Subject": "x"}).status_code == 201
    again = org.patch(path, params={"updateOnly": "true"}, json={"Subject": "y"})
    assert again.status_code == 200 and again.json()["created"] is False


def test_upsert_with_several_matches_answers_300(ext_org: Org) -> None:
    org = ext_org
    ids = [
        org.post("/sobjects/Case", json={"Subject": str(n), "RS_Session_Id__c": "dup"}).json()["id"]
        for n in range(2)
    ]
    answer = org.patch("/sobjects/Case/RS_Session_Id__c/dup", json={"Subject": "x"})
    assert answer.status_code == 300
    assert answer.json() == [f"{API}/sobjects/Case/{i}" for i in ids]
    assert org.get("/sobjects/Case/RS_Session_Id__c/dup").status_code == 300
    assert org.query("SELECT COUNT() FROM Case WHERE Subject = 'x'")["totalSize"] == 0


def test_upsert_needs_an_external_id_field(ext_org: Org) -> None:
    answer = ext_org.patch("/sobjects/Case/Subject/whatever", json={"Priority": "Low"})
    assert answer.status_code == 404
    assert answer.json()[0]["errorCode"] == "NOT_FOUND"


def test_delete_by_external_id(ext_org: Org) -> None:
    org = ext_org
    org.patch("/sobjects/Case/RS_Session_Id__c/gone", json={"Subject": "x"})
    assert org.delete("/sobjects/Case/RS_Session_Id__c/gone").status_code == 204
    assert org.get("/sobjects/Case/RS_Session_Id__c/gone").status_code == 404


def test_content_version_from_json(org: Org) -> None:
    case_id = org.ids["case_vpn"]
    data = b"session report\x00\xff"
    answer = org.post(
        "/sobjects/ContentVersion",
        json={
            "Title": "Session 42",
            "PathOnClient": "session-42.html",
            "VersionData": base64.b64encode(data).decode(),
            "FirstPublishLocationId": case_id,
        },
    )
    assert answer.status_code == 201
    version_id = answer.json()["id"]
    assert version_id.startswith("068")
    version = org.get(f"/sobjects/ContentVersion/{version_id}").json()
    assert version["ContentSize"] == len(data) and version["FileExtension"] == "html"
    assert version["VersionData"] == f"{API}/sobjects/ContentVersion/{version_id}/VersionData"
    assert version["ContentDocumentId"].startswith("069")
    blob = org.get(f"/sobjects/ContentVersion/{version_id}/VersionData")
    assert blob.status_code == 200 and blob.content == data
    where = f"WHERE LinkedEntityId = '{case_id}'"
    links = org.query("SELECT ContentDocumentId FROM ContentDocumentLink " + where)["records"]  # noqa: S608
    assert [link["ContentDocumentId"] for link in links] == [version["ContentDocumentId"]]


def test_content_version_from_multipart(org: Org) -> None:
    data = bytes(range(256)) * 4 + b"\r\n--not-a-boundary\r\n"
    entity = {"Title": "Recording", "PathOnClient": "rec.bin"}
    answer = org.post(
        "/sobjects/ContentVersion",
        files={
            "entity_content": (None, json.dumps(entity), "application/json"),
            "VersionData": ("rec.bin", data, "application/octet-stream"),
        },
    )
    assert answer.status_code == 201, answer.text
    version_id = answer.json()["id"]
    assert org.get(f"/sobjects/ContentVersion/{version_id}/VersionData").content == data


def test_content_version_needs_data(org: Org) -> None:
    answer = org.post("/sobjects/ContentVersion", json={"PathOnClient": "a.txt"})
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    bad = org.post("/sobjects/ContentVersion", json={"PathOnClient": "a.txt", "VersionData": "%%%"})
    assert bad.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
