"""Basic auth, OAuth at /oauth_token.do, roles and table ACLs."""

from __future__ import annotations

from typing import Any

import httpx

from rsbridge.sim.servicenow.seed import OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET
from tests.sim_servicenow.conftest import Instance

UNAUTHENTICATED = {
    "error": {
        "message": "User Not Authenticated",
        "detail": "Required to provide Auth information",
    },
    "status": "failure",
}
TOKEN_REFUSED = {"error_description": "access_denied", "error": "server_error"}
INCIDENTS = "/api/now/table/incident"


def token(sn: Instance, **form: str) -> httpx.Response:
    data = {"client_id": OAUTH_CLIENT_ID, "client_secret": OAUTH_CLIENT_SECRET, **form}
    return sn.post("/oauth_token.do", data=data, auth=False)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def test_basic_auth(sn: Instance) -> None:
    assert sn.get(INCIDENTS).status_code == 200
    for auth in (False, ("rsbridge", "wrong"), ("nobody", "x")):
        r = sn.get(INCIDENTS, auth=auth)
        assert r.status_code == 401
        assert r.json() == UNAUTHENTICATED
    r = sn.get(INCIDENTS, auth=False, headers={"Authorization": "Basic !!!"})
    assert r.status_code == 401
    log = sn.state.requests[-1]
    assert (log.method, log.path, log.user, log.status) == ("GET", INCIDENTS, None, 401)


def test_inactive_and_locked_out_users_cannot_sign_in(sn: Instance) -> None:
    sn.state.update("sys_user", sn.ids["jsmith"], {"active": "false"})
    assert sn.get(INCIDENTS, auth=("jsmith", "technician-demo")).status_code == 401
    sn.state.update("sys_user", sn.ids["mjones"], {"locked_out": "true"})
    assert sn.get(INCIDENTS, auth=("mjones", "technician-demo")).status_code == 401
    assert sn.get(INCIDENTS, auth=("bwilson", "technician-demo")).status_code == 200


def test_password_grant(sn: Instance) -> None:
    r = token(sn, grant_type="password", username="rsbridge", password="rsbridge-demo")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    body = r.json()
    assert list(body) == ["access_token", "refresh_token", "scope", "token_type", "expires_in"]
    assert body["token_type"] == "Bearer" and body["scope"] == "useraccount"
    assert body["expires_in"] == 1799
    assert len(body["access_token"]) == 86 and body["access_token"] != body["refresh_token"]
    r = sn.get(INCIDENTS, auth=False, headers=bearer(body["access_token"]))
    assert r.status_code == 200
    assert sn.state.requests[-1].user == "rsbridge"


def test_client_secret_may_come_as_basic_auth(sn: Instance) -> None:
    r = sn.post(
        "/oauth_token.do",
        data={"grant_type": "password", "username": "admin", "password": "admin"},
        auth=(OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET),
    )
    assert r.status_code == 200


def test_token_errors(sn: Instance) -> None:
    bad: list[dict[str, Any]] = [
        {"grant_type": "password", "username": "rsbridge", "password": "nope"},
        {
            "grant_type": "password",
            "username": "rsbridge",
            "password": "rsbridge-demo",
            "client_secret": "x",
        },
        {"grant_type": "refresh_token", "refresh_token": "unknown"},
        {"grant_type": "authorization_code", "code": "x"},
    ]
    for form in bad:
        r = token(sn, **form)
        assert r.status_code == 401 and r.json() == TOKEN_REFUSED
    # JSON bodies are refused even with good credentials
    r = sn.post(
        "/oauth_token.do",
        auth=False,
        json={
            "grant_type": "password",
            "client_id": OAUTH_CLIENT_ID,
            "client_secret": OAUTH_CLIENT_SECRET,
            "username": "rsbridge",
            "password": "rsbridge-demo",
        },
    )
    assert r.status_code == 401 and r.json() == TOKEN_REFUSED
    assert sn.get("/oauth_token.do", auth=False).status_code == 405


def test_refresh_and_expiry(sn: Instance) -> None:
    sn.state.access_token_ttl = 60
    first = token(sn, grant_type="password", username="rsbridge", password="rsbridge-demo").json()
    assert first["expires_in"] == 60
    sn.clock.now += 61
    r = sn.get(INCIDENTS, auth=False, headers=bearer(first["access_token"]))
    assert r.status_code == 401 and r.json() == UNAUTHENTICATED
    second = token(sn, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert second["refresh_token"] == first["refresh_token"]
    assert sn.get(INCIDENTS, auth=False, headers=bearer(second["access_token"])).status_code == 200
    sn.state.expire_tokens()
    assert sn.get(INCIDENTS, auth=False, headers=bearer(second["access_token"])).status_code == 401
    assert (
        token(sn, grant_type="refresh_token", refresh_token=first["refresh_token"]).status_code
        == 200
    )
    sn.state.expire_tokens(refresh=True)
    assert (
        token(sn, grant_type="refresh_token", refresh_token=first["refresh_token"]).status_code
        == 401
    )


def test_client_credentials_grant(sn: Instance) -> None:
    body = token(sn, grant_type="client_credentials").json()
    assert set(body) == {"access_token", "scope", "token_type", "expires_in"}
    r = sn.post(INCIDENTS, auth=False, headers=bearer(body["access_token"]), json={})
    assert r.json()["result"]["sys_created_by"] == "rsbridge"  # the client's application user
    sn.state.add_oauth_client("no-user", "secret")
    r = sn.post(
        "/oauth_token.do",
        auth=False,
        data={
            "grant_type": "client_credentials",
            "client_id": "no-user",
            "client_secret": "secret",
        },
    )
    assert r.status_code == 401


def test_read_acl(sn: Instance) -> None:
    sn.state.add_user("noroles", "pw", ())
    r = sn.get(INCIDENTS, auth=("noroles", "pw"))
    assert r.status_code == 403
    assert r.json() == {
        "error": {
            "message": "Insufficient rights to query records",
            "detail": "Field(s) present in the query do not have permission to be read",
        },
        "status": "failure",
    }
    assert sn.get(f"{INCIDENTS}/{sn.ids['INC0010001']}", auth=("noroles", "pw")).status_code == 403
    assert sn.get("/api/now/table/sys_user", auth=("noroles", "pw")).status_code == 200


def test_write_acl(sn: Instance) -> None:
    viewer = sn.demo.viewer
    assert sn.get(INCIDENTS, auth=viewer).status_code == 200
    incident = f"{INCIDENTS}/{sn.ids['INC0010001']}"
    for method, path, operation in (
        ("POST", INCIDENTS, "Insert"),
        ("PATCH", incident, "Update"),
        ("DELETE", incident, "Delete"),
    ):
        r = sn.request(method, path, auth=viewer, json={"short_description": "x"})
        assert r.status_code == 403
        assert r.json()["error"] == {
            "message": "Operation Failed",
            "detail": f"ACL Exception {operation} Failed due to security constraints",
        }
    # itil cannot write users, admin can write anything
    assert sn.post("/api/now/table/sys_user", json={"user_name": "x"}).status_code == 403
    r = sn.post("/api/now/table/sys_user", json={"user_name": "x"}, auth=sn.demo.admin)
    assert r.status_code == 201


def test_set_table_acl(sn: Instance) -> None:
    sn.state.set_table_acl("incident", read_roles=["itil"], write_roles=["incident_manager"])
    assert sn.post(INCIDENTS, json={}).status_code == 403
    assert sn.post("/api/now/table/problem", json={}).status_code == 201  # task's ACL still
    sn.state.add_user("manager", "pw", ["itil", "incident_manager"])
    assert sn.post(INCIDENTS, json={}, auth=("manager", "pw")).status_code == 201
