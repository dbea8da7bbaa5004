"""JWT login and logout, the AR-JWT scheme, expiry answered 401 with ARERR 623."""

from __future__ import annotations

import json

from tests.sim_remedy.conftest import AR


def test_login_answers_the_raw_token_as_text(ar: AR) -> None:
    answer = ar.login()
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text and not answer.text.startswith(("{", '"'))
    assert ar.request("GET", "/HPD:Help Desk", token=answer.text).status_code == 200


def test_a_wrong_password_is_refused_with_x_ar_messages(ar: AR) -> None:
    answer = ar.login(password="wrong")
    assert answer.status_code == 401
    messages = json.loads(answer.headers["X-AR-Messages"])
    assert messages[0]["messageNumber"] == 623
    assert answer.json()[0]["messageNumber"] == 623
    assert "wrong" not in answer.text and "wrong" not in answer.headers["X-AR-Messages"]
    assert ar.login(username="nobody").status_code == 401


def test_entry_calls_need_an_ar_jwt_token(ar: AR) -> None:
    for token_header in ("", f"Bearer {ar.token}", "AR-JWT not-a-token"):
        answer = ar.http.get(
            f"{ar.url}/api/arsys/v1/entry/HPD:Help Desk", headers={"Authorization": token_header}
        )
        assert answer.status_code == 401
        body = answer.json()
        assert body == [
            {
                "messageType": "ERROR",
                "messageText": "Authentication failed",
                "messageAppendedText": None,
                "messageNumber": 623,
            }
        ]


def test_a_token_expires_after_an_hour_and_a_new_login_works(ar: AR) -> None:
    ar.clock.now += 3599
    assert ar.request("GET", "/HPD:Help Desk").status_code == 200
    ar.clock.now += 2
    answer = ar.request("GET", "/HPD:Help Desk")
    assert answer.status_code == 401 and answer.json()[0]["messageNumber"] == 623
    fresh = ar.login().text
    assert ar.request("GET", "/HPD:Help Desk", token=fresh).status_code == 200


def test_logout_releases_the_token(ar: AR) -> None:
    headers = {"Authorization": f"AR-JWT {ar.token}"}
    assert ar.http.post(f"{ar.url}/api/jwt/logout", headers=headers).status_code == 204
    assert ar.request("GET", "/HPD:Help Desk").status_code == 401
    assert ar.http.post(f"{ar.url}/api/jwt/logout", headers=headers).status_code == 401
