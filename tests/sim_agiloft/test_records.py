"""EWCreate, EWRead, EWUpdate, EWDelete and the field encoding: choices by display text,
repeated keys, ``:`` linked fields, required fields, dates, quoting."""

from __future__ import annotations

from rsbridge.sim.agiloft import parse_lines
from tests.sim_agiloft.conftest import KB

SESSIONS = "bomgar_session_details"


def test_create_answers_the_new_id_and_read_shows_the_record(kb: KB) -> None:
    created = kb.call("EWCreate", {"summary": "Mouse is dead", "status": "Open"})
    assert created.status_code == 200
    assert created.text.strip() == "EWREST_id='4';"
    record = kb.lines("EWRead", {"id": 4})
    assert record["id"] == "4"
    assert record["summary"] == "Mouse is dead"
    assert record["status"] == "Open"
    assert record["priority"] == "Medium"  # the field's default
    assert record["description"] is None  # empty fields answer null
    assert record["date_created"] == "Jan 15 2025 10:00:00"
    assert "EWREST_description=null;" in kb.call("EWRead", {"id": 4}).text


def test_create_and_read_in_json(kb: KB) -> None:
    new_id = kb.ok("EWCreate", {"summary": "JSON case"})
    assert new_id == 4
    record = kb.ok("EWRead", {"id": new_id})
    assert record["id"] == 4 and record["summary"] == "JSON case"
    assert record["status"] == "New" and record["description"] is None


def test_quotes_backslashes_and_line_breaks_survive_the_lines(kb: KB) -> None:
    text = "It's C:\\temp\\x\nsecond line\r\nthird 'quoted'"
    new_id = kb.ok("EWCreate", {"summary": "q", "description": text})
    raw = kb.call("EWRead", {"id": new_id}).text
    assert (
        "EWREST_description='It\\'s C:\\\\temp\\\\x\\nsecond line\\r\\nthird \\'quoted\\'';" in raw
    )
    assert "\n" not in raw.split("EWREST_description=")[1].split(";")[0]
    assert parse_lines(raw)["description"] == text


def test_unknown_choice_is_refused_with_the_choices(kb: KB) -> None:
    status, message = kb.error("EWCreate", {"summary": "x", "status": "Bogus"})
    assert status == 400
    assert message == (
        "Wrong format/value pointed to status: 'Bogus' is not one of its choices "
        "(New, Open, Pending, Resolved, Closed)"
    )
    # Choices are display texts, case and all.
    assert kb.error("EWCreate", {"summary": "x", "status": "open"})[0] == 400


def test_an_unknown_field_is_no_column(kb: KB) -> None:
    assert kb.error("EWCreate", {"summary": "x", "Summary": "y"}) == (
        400,
        "No column Summary in table case",
    )


def test_table_names_are_case_sensitive(kb: KB) -> None:
    assert kb.error("EWRead", {"id": 1}, table="Case") == (400, "Table Case has not been found")


def test_required_fields(kb: KB) -> None:
    status, message = kb.error("EWCreate", {"description": "no summary"})
    assert (status, message) == (400, "Field 'Summary' (summary) of table case is required")
    assert kb.error("EWUpdate", {"id": 1, "summary": ""})[0] == 400
    assert kb.ok("EWRead", {"id": 1})["summary"] == "Printer on floor 3 jams"


def test_linked_fields_take_the_colon_prefix(kb: KB) -> None:
    case_id = kb.ok(
        "EWCreate",
        {"summary": "x", "assigned_person": ":Alice Smith", "assigned_team": "Team:Network Team"},
    )
    record = kb.ok("EWRead", {"id": case_id})
    assert record["assigned_person"] == "Alice Smith"
    assert record["assigned_team"] == "Network Team"
    status, message = kb.error("EWCreate", {"summary": "x", "assigned_person": ":Nobody"})
    assert status == 400
    assert message == (
        "Wrong format/value pointed to assigned_person: no record in contacts.employees "
        "with full_name 'Nobody'"
    )


def test_a_link_to_a_record_id(kb: KB) -> None:
    session = kb.ok("EWCreate", {"session_id": "lsid-1", "support_case": ":2"}, table=SESSIONS)
    assert kb.ok("EWRead", {"id": session}, table=SESSIONS)["support_case"] == "2"
    missing = kb.error("EWCreate", {"session_id": "x", "support_case": ":99"}, table=SESSIONS)
    assert missing[0] == 400 and "no record in case with id '99'" in missing[1]


def test_multi_value_fields_repeat_the_key(kb: KB) -> None:
    person = kb.ok(
        "EWCreate",
        [("_login", "bob"), ("full_name", "Bob Stone"),
         ("teams", ":Tier 1 Support"), ("teams", ":Network Team")],
        table="contacts.employees",
    )  # fmt: skip
    assert kb.ok("EWRead", {"id": person}, table="contacts.employees")["teams"] == [
        "Tier 1 Support",
        "Network Team",
    ]
    lines = kb.lines("EWRead", {"id": person}, table="contacts.employees")
    assert (lines["teams_0"], lines["teams_1"]) == ("Tier 1 Support", "Network Team")


def test_update_by_id_answers_the_whole_record(kb: KB) -> None:
    lines = kb.lines("EWUpdate", {"id": 2, "status": "Pending", "additional_notes": "Called"})
    assert lines["id"] == "2" and lines["status"] == "Pending"
    assert lines["summary"] == "VPN drops every hour"
    assert lines["additional_notes"] == "Called"
    kb.clock.now += 60
    assert kb.ok("EWUpdate", {"id": 2, "priority": "Low"})["date_updated"] == (
        "Jan 15 2025 10:01:00"
    )


def test_update_is_all_or_nothing(kb: KB) -> None:
    assert kb.error("EWUpdate", {"id": 2, "summary": "changed", "status": "Bogus"})[0] == 400
    assert kb.ok("EWRead", {"id": 2})["summary"] == "VPN drops every hour"


def test_read_and_update_by_search_sql(kb: KB) -> None:
    kb.ok("EWCreate", {"session_id": "lsid-77", "external_key": "ext-1"}, table=SESSIONS)
    found = kb.ok("EWRead", {"$searchSQL": "session_id='lsid-77'"}, table=SESSIONS)
    assert found["external_key"] == "ext-1"
    updated = kb.ok(
        "EWUpdate",
        {"$searchSQL": "session_id='lsid-77'", "duration": "0:0:5:10"},
        table=SESSIONS,
    )
    assert updated["duration"] == "0:0:5:10"
    assert kb.error("EWRead", {"$searchSQL": "session_id='nope'"}, table=SESSIONS) == (
        400,
        "no data found for id range(s) session_id='nope'",
    )
    many = kb.error("EWRead", {"$searchSQL": "id > 0"})
    assert many == (400, "$searchSQL must match exactly one record; it matches 3")


def test_missing_id_texts(kb: KB) -> None:
    assert kb.error("EWRead") == (400, "One has to specify id value.")
    assert kb.error("EWUpdate", {"summary": "x"}) == (
        400,
        "One has to specify id or searchSQL value.",
    )
    assert kb.error("EWRead", {"id": 99}) == (400, "no data found for id range(s) 99")


def test_dates_integers_and_the_system_columns(kb: KB) -> None:
    session = kb.ok(
        "EWCreate",
        {"session_id": "s", "start_time": "2025-01-15 09:30:00", "end_time": "2025-01-15",
         "id": "999", "date_created": "yesterday"},
        table=SESSIONS,
    )  # fmt: skip
    record = kb.ok("EWRead", {"id": session}, table=SESSIONS)
    assert record["id"] == session != 999  # the server sets ids and dates
    assert record["start_time"] == "Jan 15 2025 09:30:00"
    assert record["end_time"] == "Jan 15 2025 00:00:00"
    assert record["date_created"] == "Jan 15 2025 10:00:00"
    bad = kb.error("EWCreate", {"session_id": "s", "start_time": "soon"}, table=SESSIONS)
    assert bad[0] == 400 and bad[1].startswith("Wrong format/value pointed to start_time")


def test_delete(kb: KB) -> None:
    answer = kb.call("EWDelete", {"id": 3})
    assert answer.status_code == 200 and answer.text == ""
    assert kb.error("EWRead", {"id": 3})[1] == "no data found for id range(s) 3"
    assert kb.ok("EWDelete", {"id": 2}, method="DELETE", body=False) is None


def test_delete_with_dependants(kb: KB) -> None:
    kb.ok("EWCreate", {"session_id": "a", "support_case": ":1"}, table=SESSIONS)
    kb.ok("EWCreate", {"session_id": "b", "support_case": ":1"}, table=SESSIONS)
    assert kb.error("EWDelete", {"id": 1}) == (
        409,
        "Operation cannot be done. Record has 2 dependants",
    )
    assert kb.ok("EWDelete", {"id": 1, "deleteRule": "APPLY_UNLINK"}) is None
    assert kb.ok("EWRead", {"id": 1}, table=SESSIONS)["support_case"] is None
    kb.ok("EWCreate", {"session_id": "c", "support_case": ":2"}, table=SESSIONS)
    kb.ok("EWDelete", {"id": 2, "deleteRule": "APPLY_DELETE_WHERE_POSSIBLE"})
    assert kb.ok("EWSelect", {"where": "session_id = 'c'"}, table=SESSIONS) == []
    assert kb.error("EWDelete", {"id": 3, "deleteRule": "NONSENSE"})[0] == 400


def test_a_linked_field_follows_the_record_it_shows(kb: KB) -> None:
    kb.ok("EWUpdate", {"id": kb.demo.ids["jdoe"], "full_name": "John Q. Doe"},
          table="contacts.employees")  # fmt: skip
    assert kb.ok("EWRead", {"id": 1})["assigned_person"] == "John Q. Doe"
