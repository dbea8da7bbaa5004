"""``/ewws/otoken``: OAuth2 client credentials, and the token on EW calls."""

from __future__ import annotations

import base64

from .conftest import KB


def test_client_credentials_give_a_bearer_token_for_the_service_user(kb: KB) -> None:
    client_id, secret = kb.demo.oauth_client
    answer = kb.http.post(
        f"{kb.url}/ewws/otoken",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 15 * 60
    assert "refresh_token" not in body
    rows = kb.ok(
        "EWSearch", {"query": "status='Open'", "field": "summary"}, token=body["access_token"]
    )
    assert rows and rows[0]["summary"]
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    again = kb.http.post(
        f"{kb.url}/ewws/otoken",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert again.status_code == 200, again.text


def test_wrong_clients_and_grants_are_refused(kb: KB) -> None:
    client_id, _secret = kb.demo.oauth_client
    wrong = kb.http.post(
        f"{kb.url}/ewws/otoken",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "no"},
    )
    assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid_client"})
    grant = kb.http.post(f"{kb.url}/ewws/otoken", data={"grant_type": "password"})
    assert (grant.status_code, grant.json()) == (400, {"error": "unsupported_grant_type"})
