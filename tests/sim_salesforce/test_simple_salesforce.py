"""The published simple-salesforce client, unchanged, against the simulated org.

Its URLs are always ``https://<domain>.salesforce.com`` or the ``instance_url`` host;
:class:`LoopbackSession` (passed through the client's ``session=`` parameter) connects
them to the loopback server and keeps the host name in ``Host``.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from rsbridge.sim.salesforce import FieldDef
from tests.sim_salesforce.conftest import LoopbackSession, Org


def _soap(org: Org, loopback: LoopbackSession) -> Any:
    user, password, token = org.demo.integration
    return Salesforce(username=user, password=password, security_token=token, session=loopback)


def test_soap_login_with_security_token(org: Org, loopback: LoopbackSession) -> None:
    sf = _soap(org, loopback)
    assert sf.sf_instance == "rsbridge-dev.my.salesforce.com"
    assert loopback.hosts[0] == "login.salesforce.com"
    record = sf.Case.get(org.ids["case_vpn"])
    assert record["Subject"] == "VPN drops every hour"
    assert loopback.hosts[-1] == "rsbridge-dev.my.salesforce.com"
    with pytest.raises(SalesforceAuthenticationFailed):
        Salesforce(
            username=org.demo.integration[0],
            password="wrong",
            security_token=org.demo.integration[2],
            session=loopback,
        )


def test_oauth_password_and_client_credentials(org: Org, loopback: LoopbackSession) -> None:
    user, password, token = org.demo.integration
    key, secret = org.demo.app
    by_password: Any = Salesforce(
        username=user,
        password=password + token,
        consumer_key=key,
        consumer_secret=secret,
        session=loopback,
    )
    assert by_password.query("SELECT COUNT() FROM Case")["totalSize"] == 3
    by_client: Any = Salesforce(
        consumer_key=key, consumer_secret=secret, domain="rsbridge-dev.my", session=loopback
    )
    assert by_client.User.get(org.ids["integration"])["Username"] == user
    org.state.password_flow_enabled = False
    with pytest.raises(SalesforceAuthenticationFailed) as blocked:
        Salesforce(
            username=user,
            password=password + token,
            consumer_key=key,
            consumer_secret=secret,
            session=loopback,
        )
    assert blocked.value.code == "invalid_grant"


def test_crud(org: Org, loopback: LoopbackSession) -> None:
    sf = _soap(org, loopback)
    created = sf.Case.create({"Subject": "From simple-salesforce", "ContactId": org.ids["ada"]})
    assert created["success"] is True
    case_id = created["id"]
    assert sf.Case.get(case_id)["CaseNumber"] == "00001004"
    assert sf.Case.update(case_id, {"Status": "Closed"}) == 204
    assert sf.Case.get(case_id)["IsClosed"] is True
    assert sf.CaseComment.create({"ParentId": case_id, "CommentBody": "done"})["success"]
    assert sf.Case.delete(case_id) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Case.get(case_id)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Contact.create({"FirstName": "Nameless"})
    content: Any = refused.value.content
    assert content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    sf.query("SELECT Id FROM Case LIMIT 1")
    usage = sf.api_usage["api-usage"]
    assert (usage.used, usage.total) == (org.state.api_requests, 15000)


def test_query_all_follows_next_records_url(org: Org, loopback: LoopbackSession) -> None:
    sf = _soap(org, loopback)
    org.state.query_batch_size = 2
    result = sf.query_all("SELECT Id, Subject, Contact.Email FROM Case ORDER BY Subject")
    assert result["totalSize"] == 3 and len(result["records"]) == 3
    assert result["records"][2]["Contact"]["Email"] == "grace@globex.example"
    assert org.state.count_requests("GET", "/query") == 2


def test_composite_through_restful(org: Org, loopback: LoopbackSession) -> None:
    sf = _soap(org, loopback)
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "POST",
                "url": "/services/data/v59.0/sobjects/Case",
                "referenceId": "refCase",
                "body": {"Subject": "Composite"},
            },
            {
                "method": "POST",
                "url": "/services/data/v59.0/sobjects/CaseComment",
                "referenceId": "refComment",
                "body": {"ParentId": "@{refCase.id}", "CommentBody": "hi"},
            },
        ],
    }
    answer = sf.restful("composite", method="POST", json=body)
    assert answer is not None
    assert [e["httpStatusCode"] for e in answer["compositeResponse"]] == [201, 201]


def test_expired_session_is_renewed(org: Org, loopback: LoopbackSession) -> None:
    sf = _soap(org, loopback)
    first = sf.session_id
    org.state.expire_sessions()
    assert sf.Case.get(org.ids["case_vpn"])["Priority"] == "High"
    assert sf.session_id != first


def test_upsert_and_describe(org: Org, loopback: LoopbackSession) -> None:
    case = org.state.object("Case")
    assert case is not None
    case.add(FieldDef("RS_Session_Id__c", length=64, external_id=True, unique=True, custom=True))
    sf = _soap(org, loopback)
    assert sf.Case.upsert("RS_Session_Id__c/lsid-1", {"Subject": "Upserted"}) == 201
    assert sf.Case.upsert("RS_Session_Id__c/lsid-1", {"Priority": "High"}) == 200
    record = sf.Case.get_by_custom_id("RS_Session_Id__c", "lsid-1")
    assert record["Subject"] == "Upserted" and record["Priority"] == "High"
    fields = {f["name"] for f in sf.Case.describe()["fields"]}
    assert "RS_Session_Id__c" in fields


def test_jwt_bearer_login(org: Org, loopback: LoopbackSession) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    org.state.apps[org.demo.app[0]].certificate = public.decode()
    sf: Any = Salesforce(
        username=org.demo.integration[0],
        consumer_key=org.demo.app[0],
        privatekey=private,
        session=loopback,
    )
    assert loopback.hosts[0] == "login.salesforce.com"
    assert sf.sf_instance == "rsbridge-dev.my.salesforce.com"
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 2
