"""EWUpsert (201/200/409), EWSelect's SQL where clause, EWSearch's query language and
paging, EWGetChoiceLineId."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.sim_agiloft.conftest import KB

SESSIONS = "bomgar_session_details"


def _upsert(kb: KB, params: dict[str, str], json: bool = False) -> tuple[int, str]:
    answer = kb.call("EWUpsert", {"$match": "session_id", **params}, table=SESSIONS, json=json)
    return answer.status_code, answer.text


def test_upsert_creates_201_then_updates_200(kb: KB) -> None:
    assert _upsert(kb, {"session_id": "lsid-1", "support_case": ":1"}) == (201, "EWREST_id='1';\n")
    assert _upsert(kb, {"session_id": "lsid-1", "duration": "0:0:3:00"}) == (
        200,
        "EWREST_id='1';\n",
    )
    record = kb.ok("EWRead", {"id": 1}, table=SESSIONS)
    assert record["support_case"] == "1" and record["duration"] == "0:0:3:00"
    assert kb.ok("EWSelect", {"where": "session_id = 'lsid-1'"}, table=SESSIONS) == [1]
    status, body = _upsert(kb, {"session_id": "lsid-2"}, json=True)
    assert status == 201 and '"result": 2' in body


def test_upsert_with_several_matches_is_409(kb: KB) -> None:
    kb.ok("EWCreate", {"session_id": "dup"}, table=SESSIONS)
    kb.ok("EWCreate", {"session_id": "dup"}, table=SESSIONS)
    answer = kb.call(
        "EWUpsert",
        {"$match": "session_id", "session_id": "dup", "err_code_resp": "1"},
        table=SESSIONS,
        json=True,
    )
    assert answer.status_code == 409
    assert answer.json()["message"] == "2 records of table bomgar_session_details match session_id"
    # Without err_code_resp the refusal still answers 200, with the exception page.
    plain = kb.call("EWUpsert", {"$match": "session_id", "session_id": "dup"}, table=SESSIONS)
    assert plain.status_code == 200 and "EWConflictException has occurred" in plain.text


def test_upsert_wants_a_match_field_and_its_value(kb: KB) -> None:
    assert kb.error("EWUpsert", {"session_id": "x"}, table=SESSIONS) == (
        400,
        "No value for '$match' parameter specified.",
    )
    assert kb.error("EWUpsert", {"$match": "nope", "session_id": "x"}, table=SESSIONS) == (
        400,
        "No column nope in table bomgar_session_details",
    )
    assert kb.error("EWUpsert", {"$match": "session_id"}, table=SESSIONS)[0] == 400


def test_upsert_is_post_only(kb: KB) -> None:
    answer = kb.call(
        "EWUpsert", {"$match": "session_id", "err_code_resp": "1"}, method="GET", json=True
    )
    assert answer.status_code == 405
    assert answer.json()["message"] == "HTTP method GET is not supported by this URL"


def test_select_answers_the_documented_counter_lines(kb: KB) -> None:
    answer = kb.call("EWSelect", {"where": "priority = 3"})
    assert answer.text == "EWREST_id_length = '3';\nEWREST_id_0 = '1';\nEWREST_id_1 = '2';\n" \
        "EWREST_id_2 = '3';\n"  # fmt: skip
    empty = kb.call("EWSelect", {"where": "summary like '%toaster%'"})
    assert empty.text == "EWREST_id_length = '0';\n"


@pytest.mark.parametrize(
    ("where", "ids"),
    [
        ("summary like '%vpn%'", [2]),
        ("summary not like '%vpn%'", [1, 3]),
        ("status = 2 or status = 4", [1, 3]),  # choice line ids: Open = 2, Resolved = 4
        ("status in (1, 2)", [1, 2]),
        ("assigned_person is null", [2]),
        ("assigned_person is not null and id <> 3", [1]),
        ("not (id >= 2)", [1]),
        ("id > 0 limit 1", [1]),
        ("id > 0 limit 1,5", [2, 3]),
        ("limit 0,2", [1, 2]),
        ("customer_name = 'ALLEN ALLBROOK' and summary like 'Laptop%'", [3]),
    ],
)
def test_select_where(kb: KB, where: str, ids: list[int]) -> None:
    assert kb.ok("EWSelect", {"where": where}) == ids


def test_select_errors(kb: KB) -> None:
    assert kb.error("EWSelect", {"where": "summary ="}) == (
        400,
        "Error the query ends too early parsing the query summary =",
    )
    assert kb.error("EWSelect", {"where": "nope = 1"}) == (
        500,
        "Error executing query, please consult logs",
    )
    assert kb.error("EWSelect") == (400, "No value for 'where' parameter specified.")


def test_choice_line_id(kb: KB) -> None:
    answer = kb.call("EWGetChoiceLineId", {"field": "status", "value": "Resolved"}, method="GET")
    assert answer.text == "EWREST_choiceLineId = '4';\n"
    assert kb.error("EWGetChoiceLineId", {"field": "status", "value": "Gone"}, method="GET") == (
        400,
        "No choice line found for value status",
    )


def test_search_answers_the_documented_rows(kb: KB) -> None:
    answer = kb.call(
        "EWSearch",
        [("query", "summary~='o'"), ("field", "summary"), ("field", "priority")],
    )
    assert answer.text.splitlines()[:3] == [
        "EWREST_length = '3';",
        "EWREST_summary_0='Printer on floor 3 jams';",
        "EWREST_priority_0='High';",
    ]
    empty = kb.call("EWSearch", {"query": "summary='nothing'"})
    assert empty.text == "EWREST_id_length = '0';\n"


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("status='Open'", [1]),
        ("status!='Open'", [2, 3]),
        ("summary~='VPN'", [2]),
        ("summary~='o' && status='New'", [2]),
        ("status='New' || status='Resolved'", [2, 3]),
        ("(status='New' || status='Resolved') && assigned_person~='alice'", [3]),
        ("assigned_person=null", [2]),
        ("assigned_person!=null", [1, 3]),
        ("'Assigned Team'='Network Team'", [2]),
        ("id>=2", [2, 3]),
        ("id<2", [1]),
        ("summary='it''s'", []),
        ("", [1, 2, 3]),
    ],
)
def test_search_operators(kb: KB, query: str, ids: list[int]) -> None:
    rows = kb.ok("EWSearch", [("query", query), ("field", "id")])
    assert [row["id"] for row in rows] == ids


def test_search_dates_compare_as_dates(kb: KB) -> None:
    for lsid, start in (("a", "2025-01-14 23:00:00"), ("b", "2025-01-15 08:00:00")):
        kb.ok("EWCreate", {"session_id": lsid, "start_time": start}, table=SESSIONS)
    rows = kb.ok(
        "EWSearch",
        [("query", "start_time>'Jan 15 2025 00:00:00'"), ("field", "session_id")],
        table=SESSIONS,
    )
    assert rows == [{"session_id": "b"}]


def test_search_paging(kb: KB) -> None:
    def page(number: int, limit: int) -> list[int]:
        rows = kb.ok("EWSearch", [("field", "id"), ("page", str(number)), ("limit", str(limit))])
        return [row["id"] for row in rows]

    assert page(0, 2) == [1, 2]
    assert page(1, 2) == [3]
    assert page(2, 2) == []
    assert page(0, 0) == [1, 2, 3]  # limit 0: every record on page 0


def test_search_errors(kb: KB) -> None:
    assert kb.error("EWSearch", {"query": "nope='x'"}) == (400, "No column nope in table case")
    assert kb.error("EWSearch", {"field": "nope"}) == (400, "No column nope in table case")
    assert kb.error("EWSearch", {"search": "My Cases"}) == (
        400,
        "No search My Cases for table case",
    )
    status, message = kb.error("EWSearch", {"query": "summary='x' &&"})
    assert status == 400 and message.startswith("Error ")
    assert kb.error("EWSearch", {"limit": "ten"})[0] == 400


def test_search_multi_values_and_all_fields(kb: KB) -> None:
    rows = kb.ok("EWSearch", {"query": "teams='Network Team'"}, table="contacts.employees")
    assert [row["_login"] for row in rows] == ["asmith"]
    assert rows[0]["teams"] == ["Tier 1 Support", "Network Team"]
    lines = kb.lines("EWSearch", {"query": "teams='Network Team'", "field": "teams"},
                     table="contacts.employees")  # fmt: skip
    assert lines["teams_0"] == "Tier 1 Support, Network Team"


def test_concurrent_upserts_of_one_session_make_one_record(kb: KB) -> None:
    def upsert(n: int) -> int:
        answer = kb.call(
            "EWUpsert",
            {"$match": "session_id", "session_id": "same", "duration": str(n)},
            table=SESSIONS,
        )
        return answer.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(upsert, range(16)))
    assert statuses == [200] * 15 + [201]
    assert kb.ok("EWSelect", {"where": "session_id = 'same'"}, table=SESSIONS) == [1]
