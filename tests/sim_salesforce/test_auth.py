"""Token endpoint (password, client credentials, JWT bearer), SOAP login, sessions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.sim_salesforce.conftest import API, Org


def _token(org: Org, data: dict[str, str], **kwargs: object) -> httpx.Response:
    return org.http.post(f"{org.url}/services/oauth2/token", data=data, **kwargs)  # type: ignore[arg-type]


def test_password_flow_answers_the_documented_fields(org: Org) -> None:
    answer = org.sign_in()
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
    }
    assert body["token_type"] == "Bearer"
    assert body["access_token"].startswith(org.state.org_id[:15] + "!")
    assert body["instance_url"] == org.url  # signed in on the loopback address
    assert body["id"].endswith(f"/id/{org.state.org_id}/{org.ids['integration']}")
    expected = hmac.new(
        org.demo.app[1].encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256
    ).digest()
    assert base64.b64decode(body["signature"]) == expected
    assert "refresh_token" not in body


def test_password_flow_needs_the_security_token(org: Org) -> None:
    answer = org.sign_in(secret=org.demo.integration[1])  # password without the token
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "authentication failure",
    }


def test_blocked_password_flow_answers_invalid_grant(org: Org) -> None:
    org.state.password_flow_enabled = False
    answer = org.sign_in()
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_unknown_client_and_wrong_secret(org: Org) -> None:
    base = {"grant_type": "password", "username": "x", "password": "y"}
    unknown = _token(org, {**base, "client_id": "nope", "client_secret": "x"})
    assert unknown.json()["error"] == "invalid_client_id"
    wrong = _token(org, {**base, "client_id": org.demo.app[0], "client_secret": "x"})
    assert wrong.json()["error"] == "invalid_client"
    grant = _token(org, {"grant_type": "authorization_code"})
    assert grant.json()["error"] == "unsupported_grant_type"


def test_client_credentials_only_on_my_domain(org: Org) -> None:
    auth = (org.demo.app[0], org.demo.app[1])
    grant = {"grant_type": "client_credentials"}
    generic = _token(org, grant, auth=auth, headers={"Host": "login.salesforce.com"})
    assert generic.status_code == 400
    assert generic.json()["error"] == "invalid_grant"
    mine = _token(org, grant, auth=auth, headers={"Host": "rsbridge-dev.my.salesforce.com"})
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["instance_url"] == "https://rsbridge-dev.my.salesforce.com"
    assert body["id"].endswith(org.ids["integration"])  # the run-as user
    me = org.get("/sobjects/User/" + org.ids["integration"], token=body["access_token"])
    assert me.status_code == 200


def test_client_credentials_without_run_as_user_is_refused(org: Org) -> None:
    org.state.apps[org.demo.app[0]].run_as = None
    answer = _token(
        org, {"grant_type": "client_credentials"}, auth=(org.demo.app[0], org.demo.app[1])
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def _jwt(key: rsa.RSAPrivateKey, claims: dict[str, object]) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(json.dumps({"alg": "RS256"}).encode()) + "." + part(json.dumps(claims).encode())
    signature = key.sign(head.encode(), padding.PKCS1v15(), hashes.SHA256())
    return head + "." + part(signature)


def test_jwt_bearer_checks_signature_audience_and_expiry(org: Org) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    org.state.apps[org.demo.app[0]].certificate = public.decode()
    claims: dict[str, object] = {
        "iss": org.demo.app[0],
        "sub": org.demo.admin[0],
        "aud": "https://login.salesforce.com",
        "exp": org.clock.now + 180,
    }
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    good = _token(org, {"grant_type": grant, "assertion": _jwt(key, claims)})
    assert good.status_code == 200, good.text
    assert good.json()["id"].endswith(org.ids["admin"])
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = _token(org, {"grant_type": grant, "assertion": _jwt(other, claims)})
    assert forged.status_code == 400 and forged.json()["error"] == "invalid_grant"
    expired = _token(
        org, {"grant_type": grant, "assertion": _jwt(key, {**claims, "exp": org.clock.now - 1})}
    )
    assert expired.status_code == 400
    audience = _token(
        org, {"grant_type": grant, "assertion": _jwt(key, {**claims, "aud": "https://evil"})}
    )
    assert audience.status_code == 400


def test_data_calls_need_a_live_session(org: Org) -> None:
    missing = org.http.get(f"{org.url}{API}/sobjects")
    assert missing.status_code == 401
    assert missing.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    assert org.get("/sobjects").status_code == 200
    org.state.expire_sessions()
    assert org.get("/sobjects").json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_versions_need_no_session(org: Org) -> None:
    answer = org.http.get(f"{org.url}/services/data/")
    assert answer.status_code == 200
    versions = {v["version"]: v for v in answer.json()}
    assert versions["59.0"] == {
        "label": "Winter '24",
        "url": "/services/data/v59.0",
        "version": "59.0",
    }
    unknown = org.http.get(
        f"{org.url}/services/data/v9.0/sobjects", headers={"Authorization": f"Bearer {org.token}"}
    )
    assert unknown.status_code == 404 and unknown.json()[0]["errorCode"] == "NOT_FOUND"


def test_soap_login_answers_session_and_server_url(org: Org) -> None:
    user, password, security_token = org.demo.integration
    envelope = (
        '<?xml version="1.0" encoding="utf-8"?><env:Envelope '
        'xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:n1="urn:partner.soap.sforce.com"><env:Body><n1:login>'
        f"<n1:username>{user}</n1:username><n1:password>{password}{security_token}"
        "</n1:password></n1:login></env:Body></env:Envelope>"
    )
    headers = {"Content-Type": "text/xml", "SOAPAction": "login"}
    good = org.http.post(f"{org.url}/services/Soap/u/59.0", content=envelope, headers=headers)
    assert good.status_code == 200
    assert f"<serverUrl>{org.url}/services/Soap/u/59.0/" in good.text
    assert "<sessionSecondsValid>7200</sessionSecondsValid>" in good.text
    assert f"<userName>{user}</userName>" in good.text
    session = good.text.split("<sessionId>")[1].split("</sessionId>")[0]
    assert org.get("/sobjects", token=session).status_code == 200
    bad = org.http.post(
        f"{org.url}/services/Soap/u/59.0",
        content=envelope.replace(security_token, "WRONG"),
        headers=headers,
    )
    assert bad.status_code == 500
    assert "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>" in bad.text


def test_inactive_user_loses_sessions(org: Org) -> None:
    org.state.records["User"][org.ids["integration"]]["IsActive"] = False
    assert org.get("/sobjects").status_code == 401
    assert org.sign_in().status_code == 400


def test_sessions_time_out_without_activity(org: Org) -> None:
    org.clock.now += 7000
    assert org.get("/sobjects").status_code == 200  # activity renews the session
    org.clock.now += 7000
    assert org.get("/sobjects").status_code == 200
    org.clock.now += 7201
    timed_out = org.get("/sobjects")
    assert timed_out.status_code == 401
    assert timed_out.json()[0]["errorCode"] == "INVALID_SESSION_ID"
