"""Both answer styles and HTTP 200 on errors unless ``err_code_resp=1``; fault injection
(down, latency, queued errors, proxy pages, WSDelay) and the request log."""

from __future__ import annotations

import time

import pytest

from rsbridge.sim.agiloft import AgiloftError, parse_lines
from tests.sim_agiloft.conftest import KB


def test_errors_answer_200_unless_err_code_resp(kb: KB) -> None:
    plain = kb.call("EWRead", {"id": 99})
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/html")
    assert "EWWrongDataException has occurred: [default task-" in plain.text
    assert "no data found for id range(s) 99" in plain.text
    assert parse_lines(plain.text) == {}
    coded = kb.call("EWRead", {"id": 99, "err_code_resp": "1"})
    assert coded.status_code == 400 and "no data found for id range(s) 99" in coded.text
    as_json = kb.call("EWRead", {"id": 99}, json=True)
    assert as_json.status_code == 200
    assert as_json.json() == {
        "success": False,
        "message": "no data found for id range(s) 99",
        "result": None,
    }


@pytest.mark.parametrize(
    ("operation", "params", "status"),
    [
        ("EWRead", {"id": 99}, 400),
        ("EWRead", {"id": 1, "$login": "rsbridge", "$password": "wrong"}, 403),
        ("EWDelete", {"id": 1, "$table": "teams"}, 409),
        ("EWSelect", {"where": "nope = 1"}, 500),
    ],
)
def test_err_code_resp_reveals_each_status(
    kb: KB, operation: str, params: dict[str, object], status: int
) -> None:
    pairs = [(k, str(v)) for k, v in params.items() if not k.startswith("$")]
    overrides = {k: str(v) for k, v in params.items() if k.startswith("$")}
    system = {**kb.system(), **kb.creds(), **overrides}
    for style in ("", "/.json"):
        answer = kb.http.post(
            f"{kb.url}/ewws/{operation}{style}",
            data={**system, **dict(pairs), "err_code_resp": "1"},
        )
        assert answer.status_code == status, answer.text
        quiet = kb.http.post(f"{kb.url}/ewws/{operation}{style}", data={**system, **dict(pairs)})
        assert quiet.status_code == 200


def test_every_operation_answers_in_both_styles(kb: KB) -> None:
    table = "bomgar_session_details"
    text_id = parse_lines(kb.call("EWCreate", {"session_id": "t"}, table=table).text)["id"]
    json_id = kb.ok("EWCreate", {"session_id": "j"}, table=table)
    assert (text_id, json_id) == ("1", 2)
    assert kb.lines("EWRead", {"id": 1}, table=table)["session_id"] == "t"
    assert kb.ok("EWRead", {"id": 1}, table=table)["session_id"] == "t"
    assert kb.lines("EWUpdate", {"id": 1, "duration": "1"}, table=table)["duration"] == "1"
    assert kb.ok("EWUpdate", {"id": 1, "duration": "2"}, table=table)["duration"] == "2"
    assert kb.lines("EWSelect", {"where": "id > 0"}, table=table)["id_length"] == "2"
    assert kb.ok("EWSelect", {"where": "id > 0"}, table=table) == [1, 2]
    assert kb.lines("EWSearch", {"field": "session_id"}, table=table)["session_id_1"] == "j"
    assert kb.ok("EWSearch", {"field": "session_id"}, table=table)[1] == {"session_id": "j"}
    upsert = {"$match": "session_id", "session_id": "t"}
    assert kb.lines("EWUpsert", upsert, table=table) == {"id": "1"}
    assert kb.ok("EWUpsert", upsert, table=table) == 1
    assert kb.call("EWDelete", {"id": 1}, table=table).text == ""
    assert kb.ok("EWDelete", {"id": 2}, table=table) is None


def test_unknown_operation_is_a_404_page(kb: KB) -> None:
    answer = kb.call("EWNothing", {})
    assert answer.status_code == 404 and "Not Found" in answer.text


def test_down_answers_503(kb: KB) -> None:
    kb.state.down = True
    answer = kb.call("EWRead", {"id": 1})
    assert answer.status_code == 503 and "Service Unavailable" in answer.text
    kb.state.down = False
    assert kb.lines("EWRead", {"id": 1})["id"] == "1"


def test_fail_next_queues_errors_in_the_call_style(kb: KB) -> None:
    kb.state.fail_next(2, status=500, message="Database is busy")
    assert kb.error("EWRead", {"id": 1}) == (500, "Database is busy")
    quiet = kb.call("EWRead", {"id": 1})
    assert quiet.status_code == 200 and "EWOperationException has occurred" in quiet.text
    assert "Database is busy" in quiet.text
    assert kb.lines("EWRead", {"id": 1})["id"] == "1"


def test_html_next_is_a_proxy_page(kb: KB) -> None:
    kb.state.html_next(1, status=502)
    answer = kb.call("EWRead", {"id": 1}, json=True)
    assert answer.status_code == 502 and "<title>502 Bad Gateway</title>" in answer.text
    assert kb.ok("EWRead", {"id": 1})["id"] == 1


def test_latency_and_ws_delay_slow_each_answer(kb: KB) -> None:
    kb.state.latency = 0.1
    kb.state.ws_delay = 0.15
    started = time.monotonic()
    kb.lines("EWRead", {"id": 1})
    assert time.monotonic() - started >= 0.25


def test_the_request_log_counts_calls(kb: KB) -> None:
    kb.lines("EWCreate", {"session_id": "x"}, table="bomgar_session_details")
    kb.error("EWRead", {"id": 99})
    token = kb.login()["access_token"]
    kb.lines("EWRead", {"id": 1}, token=token)
    logged = [(r.operation, r.table, r.user, r.status, r.kb) for r in kb.state.requests]
    assert logged == [
        ("EWCreate", "bomgar_session_details", "rsbridge", 200, "Demo"),
        ("EWRead", "case", "rsbridge", 400, "Demo"),
        ("EWLogin", None, "rsbridge", 200, "Demo"),
        ("EWRead", "case", "rsbridge", 200, "Demo"),
    ]


def test_state_methods_raise_the_api_errors(kb: KB) -> None:
    with pytest.raises(AgiloftError) as caught:
        kb.state.create("case", {"summary": ["x"], "status": ["Nope"]})
    assert caught.value.status == 400
    assert caught.value.message.startswith("Wrong format/value pointed to status")
    assert kb.state.create("case", {"summary": ["direct"]}) == 4
    assert kb.state.view("case", kb.state.record("case", 4))["status"] == "New"
