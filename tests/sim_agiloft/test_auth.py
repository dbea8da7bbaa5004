"""EWLogin, tokens and their expiry on the state's clock, refresh, EWLogout, credentials per
call, the documented authentication error texts, KB names and the REST-group 403."""

from __future__ import annotations

import base64
import json

import pytest

from rsbridge.sim.agiloft import errors, parse_lines
from tests.sim_agiloft.conftest import KB


def _claims(token: str) -> dict[str, object]:
    body = token.split(".")[1]
    parsed: dict[str, object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return parsed


def test_login_answers_the_documented_token_object(kb: KB) -> None:
    answer = kb.login()
    assert set(answer) == {
        "access_token",
        "refresh_token",
        "expiration_time_unit",
        "expires_in",
        "authentication_scheme",
    }
    assert answer["expiration_time_unit"] == "minute"
    assert answer["expires_in"] == 15
    assert answer["authentication_scheme"].strip() == "Bearer"
    claims = _claims(answer["access_token"])
    assert claims["sub"] == "rsbridge" and claims["kb"] == "Demo"
    assert claims["exp"] == int(kb.clock.now) + 15 * 60


def test_login_takes_credentials_in_the_query_string_too(kb: KB) -> None:
    answer = kb.call("EWLogin", table=None, body=False)
    assert answer.status_code == 200 and "access_token" in answer.json()


def test_login_reads_a_plain_text_body_as_documented(kb: KB) -> None:
    # The help's example posts with "Content-Type: plain/text" and the parameters in the body.
    answer = kb.http.post(
        f"{kb.url}/ewws/EWLogin",
        content="$KB=Demo&$login=rsbridge&$password=rsbridge-sim&$lang=en",
        headers={"Content-Type": "plain/text"},
    )
    assert answer.status_code == 200 and answer.json()["expires_in"] == 15


def test_the_scheme_as_answered_joins_the_token(kb: KB) -> None:
    # A client that prefixes the token with the answered "Bearer " plus a space still works.
    answer = kb.login()
    header = f"{answer['authentication_scheme']} {answer['access_token']}"
    read = kb.http.get(
        f"{kb.url}/ewws/EWRead", params={"$table": "case", "id": "1"},
        headers={"Authorization": header},
    )  # fmt: skip
    assert parse_lines(read.text)["id"] == "1"


def test_json_decorator_wraps_the_login_answer(kb: KB) -> None:
    result = kb.ok("EWLogin", table=None)
    assert result["expires_in"] == 15 and result["access_token"].startswith("eyJ")


def test_a_bearer_token_replaces_credentials_and_needs_no_kb(kb: KB) -> None:
    token = kb.login()["access_token"]
    read = kb.http.get(
        f"{kb.url}/ewws/EWRead",
        params={"$table": "case", "id": "1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert parse_lines(read.text)["summary"] == "Printer on floor 3 jams"
    assert kb.state.requests[-1].user == "rsbridge"


def test_the_token_expires_on_the_state_clock(kb: KB) -> None:
    token = kb.login()["access_token"]
    kb.clock.now += 15 * 60 - 1
    assert kb.lines("EWRead", {"id": 1}, token=token)["id"] == "1"
    kb.clock.now += 1
    assert kb.error("EWRead", {"id": 1}, token=token) == (400, "Token is expired")


def test_token_expires_in_follows_the_kb_variable(kb: KB) -> None:
    kb.state.token_minutes = 60
    assert kb.login()["expires_in"] == 60
    with pytest.raises(ValueError, match="1 to 60"):
        kb.state.token_minutes = 61


def test_refresh_gives_a_new_pair_and_ends_the_old_one(kb: KB) -> None:
    first = kb.login()
    kb.clock.now += 16 * 60  # the access token has expired; the refresh token has not
    answer = kb.http.post(
        f"{kb.url}/ewws/EWLogin",
        data={"refresh_token": first["refresh_token"]},
        headers={"Authorization": f"Bearer {first['access_token']}"},
    )
    assert answer.status_code == 200, answer.text
    second = answer.json()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert kb.lines("EWRead", {"id": 1}, token=second["access_token"])["id"] == "1"
    # The old tokens are spent.
    assert kb.error("EWRead", {"id": 1}, token=first["access_token"]) == (
        500,
        "No active session found for current token",
    )
    again = kb.http.post(
        f"{kb.url}/ewws/EWLogin/.json",
        data={"refresh_token": first["refresh_token"], "err_code_resp": "1"},
        headers={"Authorization": f"Bearer {second['access_token']}"},
    )
    assert again.status_code == 400 and again.json()["message"] == "Wrong refresh token"


def test_an_expired_refresh_token_is_refused_401(kb: KB) -> None:
    first = kb.login()
    kb.clock.now += 8 * 3600
    answer = kb.http.post(
        f"{kb.url}/ewws/EWLogin/.json?err_code_resp=1",
        data={"refresh_token": first["refresh_token"]},
        headers={"Authorization": f"Bearer {first['access_token']}"},
    )
    assert answer.status_code == 401
    assert answer.json()["message"] == "Refresh Token is expired"


def test_logout_ends_the_session(kb: KB) -> None:
    token = kb.login()["access_token"]
    answer = kb.http.post(f"{kb.url}/ewws/EWLogout", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.text == ""
    assert kb.error("EWRead", {"id": 1}, token=token) == (500, errors.NO_SESSION)


def test_both_credentials_and_token_is_the_documented_400(kb: KB) -> None:
    token = kb.login()["access_token"]
    answer = kb.call(
        "EWRead",
        {**kb.creds(), "id": 1, "err_code_resp": "1"},
        json=True,
        token=token,
    )
    assert answer.status_code == 400
    assert answer.json()["message"] == (
        "One has to specify $login and $password parameters or authentication token."
    )
    login = kb.http.post(
        f"{kb.url}/ewws/EWLogin/.json",
        data={**kb.system(None), **kb.creds(), "err_code_resp": "1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert login.status_code == 400 and login.json()["message"] == errors.BOTH_CREDENTIALS


def test_no_credentials_at_all(kb: KB) -> None:
    answer = kb.http.post(
        f"{kb.url}/ewws/EWRead/.json", data={**kb.system(), "id": "1", "err_code_resp": "1"}
    )
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("One has to specify $login, $password")


@pytest.mark.parametrize(
    "header", ["Basic cnNicmlkZ2U6cnNicmlkZ2Utc2lt", "Bearer", "Bearer not-a-jwt", "Bearer a.b.c"]
)
def test_a_bad_authorization_header_is_wrong_authorization_data(kb: KB, header: str) -> None:
    answer = kb.http.post(
        f"{kb.url}/ewws/EWRead/.json",
        data={**kb.system(), "id": "1", "err_code_resp": "1"},
        headers={"Authorization": header},
    )
    assert answer.status_code == 401
    assert answer.json()["message"] == "Wrong Authorization data"


def test_a_token_signed_elsewhere_is_refused(kb: KB) -> None:
    token = kb.login()["access_token"]
    head, body, _sig = token.split(".")
    forged = f"{head}.{body}.{base64.urlsafe_b64encode(b'x' * 32).rstrip(b'=').decode()}"
    assert kb.error("EWRead", {"id": 1}, token=forged) == (401, errors.WRONG_AUTHORIZATION)


def test_wrong_password_is_refused_403(kb: KB) -> None:
    assert kb.error("EWRead", {"id": 1}, login=("rsbridge", "nope")) == (
        403,
        "Authentication failed.",
    )
    assert kb.error("EWLogin", table=None, login=("nobody", "x")) == (
        403,
        "Authentication failed.",
    )


def test_groups_allowed_for_rest(kb: KB) -> None:
    guest = kb.demo.no_rest
    expected = (403, f"User {guest[0]} lacks permission log in")
    assert kb.error("EWLogin", table=None, login=guest) == expected
    assert kb.error("EWRead", {"id": 1}, login=guest) == expected
    # A token issued before the group lost REST access stops working.
    token = kb.login(kb.demo.technician)["access_token"]
    kb.state.users[kb.demo.technician[0]].rest_allowed = False
    assert kb.error("EWRead", {"id": 1}, token=token) == (
        403,
        f"User {kb.demo.technician[0]} lacks permission log in",
    )


def test_kb_names_are_case_sensitive(kb: KB) -> None:
    params = {"$KB": "demo", "id": "1", "err_code_resp": "1"}
    answer = kb.http.post(
        f"{kb.url}/ewws/EWRead/.json", data={**kb.system(), **kb.creds(), **params}
    )
    assert answer.status_code == 400
    assert answer.json()["message"] == "Cannot find specified knowledgebase: demo"
    login = kb.http.post(
        f"{kb.url}/ewws/EWLogin/.json?err_code_resp=1",
        data={**kb.creds(), "$KB": "DEMO", "$lang": "en"},
    )
    assert login.json()["message"] == "Cannot find specified knowledgebase: DEMO"


def test_a_token_for_the_kb_it_was_issued_for_only(kb: KB) -> None:
    token = kb.login()["access_token"]
    kb.state.kb = "Other"  # the same server now answers for another KB name
    answer = kb.call("EWRead", {"id": 1, "err_code_resp": "1", "$KB": "Other"}, token=token,
                     json=True)  # fmt: skip
    assert answer.json()["message"] == errors.KB_MISMATCH


def test_credentials_want_kb_and_lang(kb: KB) -> None:
    answer = kb.http.post(
        f"{kb.url}/ewws/EWRead/.json",
        data={"$KB": "Demo", "$table": "case", **kb.creds(), "id": "1", "err_code_resp": "1"},
    )
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("One has to specify $table, $KB, $lang")


def test_the_password_never_reaches_the_request_log(kb: KB) -> None:
    kb.lines("EWRead", {"id": 1})
    logged = kb.state.requests[-1]
    assert kb.demo.integration[1] not in repr(logged)
    assert (logged.method, logged.operation, logged.table, logged.user, logged.status) == (
        "POST",
        "EWRead",
        "case",
        "rsbridge",
        200,
    )
