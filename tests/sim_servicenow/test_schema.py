"""Table definitions: define_table, metadata records and "Import XML" of unload documents."""

from __future__ import annotations

import pytest

from rsbridge.sim.servicenow import Column, SimServiceNowState, UnloadError
from tests.sim_servicenow.conftest import Instance

TABLE_ID = "4c7a1f2e8d3b4a5c9e6f0a1b2c3d4e5f"
CHILD_ID = "5d8b2a3f9e4c4b6d0f7a1b2c3d4e5f60"

UNLOAD = f"""<?xml version="1.0" encoding="UTF-8"?>
<unload unload_date="2025-01-10 09:00:00">
<sys_dictionary action="INSERT_OR_UPDATE">
<active>true</active>
<array>false</array>
<column_label>Remote Session</column_label>
<element/>
<internal_type display_value="Collection">collection</internal_type>
<max_length>40</max_length>
<name>u_rs_session</name>
<sys_id>11111111111111111111111111111111</sys_id>
</sys_dictionary>
<sys_dictionary action="INSERT_OR_UPDATE">
<column_label>LSID</column_label>
<element>u_lsid</element>
<internal_type display_value="String">string</internal_type>
<max_length>40</max_length>
<name>u_rs_session</name>
<display>true</display>
<reference/>
<sys_id>22222222222222222222222222222222</sys_id>
</sys_dictionary>
<sys_dictionary action="INSERT_OR_UPDATE">
<column_label>Task</column_label>
<element>u_task</element>
<internal_type display_value="Reference">reference</internal_type>
<max_length>32</max_length>
<name>u_rs_session</name>
<reference display_value="Task">task</reference>
<sys_id>33333333333333333333333333333333</sys_id>
</sys_dictionary>
<sys_dictionary action="INSERT_OR_UPDATE">
<column_label>Representative</column_label>
<element>u_rep</element>
<internal_type display_value="Reference">reference</internal_type>
<name>u_rs_session</name>
<reference display_value="User">sys_user</reference>
<sys_id>44444444444444444444444444444444</sys_id>
</sys_dictionary>
<sys_dictionary action="INSERT_OR_UPDATE">
<column_label>Started</column_label>
<element>u_started</element>
<internal_type display_value="Date/Time">glide_date_time</internal_type>
<name>u_rs_session</name>
<sys_id>55555555555555555555555555555555</sys_id>
</sys_dictionary>
<sys_dictionary action="INSERT_OR_UPDATE">
<column_label>Status</column_label>
<element>u_status</element>
<internal_type display_value="String">string</internal_type>
<default_value>open</default_value>
<name>u_rs_session</name>
<sys_id>66666666666666666666666666666666</sys_id>
</sys_dictionary>
<sys_dictionary action="INSERT_OR_UPDATE">
<column_label>Chat transcript</column_label>
<element>u_transcript</element>
<internal_type display_value="String">string</internal_type>
<max_length>65000</max_length>
<name>u_rs_session</name>
<sys_id>77777777777777777777777777777777</sys_id>
</sys_dictionary>
<sys_dictionary action="INSERT_OR_UPDATE">
<column_label>Session notes</column_label>
<element>u_notes</element>
<internal_type display_value="Journal">journal</internal_type>
<name>u_rs_session</name>
<sys_id>88888888888888888888888888888888</sys_id>
</sys_dictionary>
<sys_db_object action="INSERT_OR_UPDATE">
<access>public</access>
<create_access>true</create_access>
<is_extendable>false</is_extendable>
<label>Remote Session</label>
<name>u_rs_session</name>
<number_ref/>
<super_class/>
<sys_class_name>sys_db_object</sys_class_name>
<sys_created_by>admin</sys_created_by>
<sys_created_on>2025-01-09 12:00:00</sys_created_on>
<sys_id>{TABLE_ID}</sys_id>
<sys_scope display_value="Global">global</sys_scope>
</sys_db_object>
<sys_db_object action="INSERT_OR_UPDATE">
<label>Remote Support Task</label>
<name>u_rs_task</name>
<super_class display_value="Task">task</super_class>
<sys_id>{CHILD_ID}</sys_id>
</sys_db_object>
<sys_dictionary action="INSERT_OR_UPDATE">
<column_label>Jump item</column_label>
<element>u_jump_item</element>
<internal_type display_value="String">string</internal_type>
<max_length>100</max_length>
<name>u_rs_task</name>
<sys_id>99999999999999999999999999999999</sys_id>
</sys_dictionary>
<sys_number action="INSERT_OR_UPDATE">
<category>u_rs_task</category>
<maximum_digits>7</maximum_digits>
<number>1000</number>
<prefix>RST</prefix>
<sys_id>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa</sys_id>
</sys_number>
<sys_choice action="INSERT_OR_UPDATE">
<element>u_status</element>
<label>Closed</label>
<name>u_rs_session</name>
<sequence>2</sequence>
<value>closed</value>
<sys_id>bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb</sys_id>
</sys_choice>
<sys_choice action="INSERT_OR_UPDATE">
<element>u_status</element>
<label>Open</label>
<name>u_rs_session</name>
<sequence>1</sequence>
<value>open</value>
<sys_id>cccccccccccccccccccccccccccccccc</sys_id>
</sys_choice>
<u_rs_session action="INSERT_OR_UPDATE">
<sys_id>dddddddddddddddddddddddddddddddd</sys_id>
<sys_created_on>2025-01-09 13:00:00</sys_created_on>
<sys_created_by>admin</sys_created_by>
<u_lsid>0a1b2c3d</u_lsid>
<u_status>closed</u_status>
<u_unknown_column>ignored</u_unknown_column>
</u_rs_session>
<u_widget action="INSERT_OR_UPDATE">
<sys_id>eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee</sys_id>
</u_widget>
</unload>
"""


def test_import_defines_tables_columns_and_records(sn: Instance) -> None:
    summary = sn.state.import_unload_xml(UNLOAD)
    assert summary.tables == ["u_rs_session", "u_rs_task"]
    assert summary.columns == 8
    assert summary.skipped == ["u_widget"]
    state = sn.state
    cols = state.columns("u_rs_session")
    assert {"sys_id", "sys_created_on", "sys_mod_count", "u_lsid", "u_task", "u_notes"} <= set(cols)
    assert cols["u_task"].internal_type == "reference" and cols["u_task"].reference == "task"
    assert cols["u_rep"].reference == "sys_user" and cols["u_rep"].max_length == 32
    assert cols["u_transcript"].max_length == 65000
    assert cols["u_lsid"].label == "LSID" and cols["u_lsid"].display
    assert cols["u_status"].choices == (("open", "Open"), ("closed", "Closed"))
    assert state.tables["u_rs_session"].label == "Remote Session"
    assert state.is_a("u_rs_task", "task") and "u_jump_item" in state.columns("u_rs_task")
    # the imported record keeps its system fields
    record = state.get("u_rs_session", "d" * 32)
    assert record is not None
    assert (record["u_lsid"], record["sys_created_on"], record["sys_created_by"]) == (
        "0a1b2c3d",
        "2025-01-09 13:00:00",
        "admin",
    )
    assert "u_unknown_column" not in record
    # the metadata records are there, with the document's sys_ids
    assert sn.result(f"/api/now/table/sys_db_object/{TABLE_ID}")["name"] == "u_rs_session"
    elements = sn.result(
        "/api/now/table/sys_dictionary",
        params={"sysparm_query": "name=u_rs_session^ORDERBYelement", "sysparm_fields": "element"},
    )
    assert [e["element"] for e in elements] == [
        "",
        "u_lsid",
        "u_notes",
        "u_rep",
        "u_started",
        "u_status",
        "u_task",
        "u_transcript",
    ]


def test_the_integration_user_can_use_an_imported_table(sn: Instance) -> None:
    sn.state.import_unload_xml(UNLOAD)
    incident = sn.ids["INC0010001"]
    r = sn.post(
        "/api/now/table/u_rs_session",
        json={
            "u_lsid": "ffee",
            "u_task": incident,
            "u_rep": sn.ids["jsmith"],
            "u_started": "2025-01-15T09:00:00Z",
            "u_transcript": "x" * 5000,
            "u_notes": "first note",
        },
    )
    assert r.status_code == 201, r.text
    created = r.json()["result"]
    assert created["u_status"] == "open"  # the dictionary default
    assert created["u_started"] == "2025-01-15 09:00:00"
    assert len(created["u_transcript"]) == 5000
    assert created["u_task"]["link"] == f"{sn.url}/api/now/table/task/{incident}"
    assert created["u_notes"] == ""
    shown = sn.result(
        f"/api/now/table/u_rs_session/{created['sys_id']}",
        params={"sysparm_display_value": "true", "sysparm_fields": "u_task,u_status,u_notes,u_rep"},
    )
    assert shown["u_task"]["display_value"] == "INC0010001"
    assert shown["u_status"] == "Open"
    assert shown["u_rep"]["display_value"] == "John Smith"
    assert shown["u_notes"].endswith("(Session notes)\nfirst note\n\n")
    found = sn.result(
        "/api/now/table/u_rs_session", params={"sysparm_query": "u_task.number=INC0010001"}
    )
    assert [f["u_lsid"] for f in found] == ["ffee"]
    # a task child: its own number prefix, visible through task, task's ACL
    r = sn.post("/api/now/table/u_rs_task", json={"short_description": "rs", "u_jump_item": "srv"})
    assert r.status_code == 201
    assert r.json()["result"]["number"] == "RST0001000"
    assert (
        sn.result(f"/api/now/table/task/{r.json()['result']['sys_id']}")["number"] == "RST0001000"
    )
    assert sn.post("/api/now/table/u_rs_session", json={}, auth=sn.demo.viewer).status_code == 403


def test_import_updates_and_deletes(sn: Instance) -> None:
    incident, closed = sn.ids["INC0010002"], sn.ids["INC0010005"]
    document = f"""<unload unload_date="2025-01-10 09:00:00">
<incident action="INSERT_OR_UPDATE"><sys_id>{incident}</sys_id>
<short_description>Imported</short_description>
<caller_id display_value="David Loo">{sn.ids["david.loo"]}</caller_id></incident>
<incident action="DELETE"><sys_id>{closed}</sys_id></incident>
<incident action="INSERT_OR_UPDATE"><sys_id>{"f" * 32}</sys_id>
<number>INC0099999</number></incident>
</unload>"""
    summary = sn.state.import_unload_xml(document)
    assert (summary.records, summary.deleted) == (2, 1)
    updated = sn.state.get("incident", incident)
    assert updated is not None
    assert (
        updated["short_description"] == "Imported" and updated["caller_id"] == sn.ids["david.loo"]
    )
    assert sn.state.get("incident", closed) is None
    new = sn.state.get("incident", "f" * 32)
    assert new is not None and new["number"] == "INC0099999"


def test_import_refuses_dtds_and_bad_documents(sn: Instance) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE unload [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;">]><unload><incident>'
        "<short_description>&b;</short_description></incident></unload>"
    )
    with pytest.raises(UnloadError, match="DTD"):
        sn.state.import_unload_xml(bomb)
    external = (
        '<?xml version="1.0"?><!DOCTYPE unload [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<unload><incident><short_description>&x;</short_description></incident></unload>"
    )
    with pytest.raises(UnloadError):
        sn.state.import_unload_xml(external)
    with pytest.raises(UnloadError, match="malformed"):
        sn.state.import_unload_xml("<unload><incident>")
    with pytest.raises(UnloadError, match="expected an <unload>"):
        sn.state.import_unload_xml("<xml/>")
    assert len(sn.state.records("incident")) == 5


def test_define_table() -> None:
    state = SimServiceNowState()
    state.add_user("it", "pw", ["itil"])
    table = state.define_table(
        "u_custom",
        [
            Column("u_code", max_length=10),
            {"name": "u_owner", "internal_type": "reference", "reference": "sys_user"},
            {"name": "u_kind", "choices": {"a": "Alpha", "b": "Beta"}, "default": "a"},
        ],
        label="Custom",
    )
    assert table.label == "Custom"
    assert "sys_id" in state.columns("u_custom")
    record = state.insert("u_custom", {"u_code": "0123456789abc", "u_owner": "it"}, user="it")
    assert record["u_code"] == "0123456789" and record["u_kind"] == "a"
    assert state.can_write(state.users["it"], "u_custom")
    child = state.define_table("u_child", [], extends="u_custom", number_prefix="UC")
    assert child.extends == "u_custom"
    assert "number" not in state.columns("u_child")  # no number column, no number
    state.define_table("u_ticket", [Column("u_x")], extends="task", number_prefix="UT")
    assert state.insert("u_ticket", {})["number"] == "UT0010001"
    with pytest.raises(ValueError, match="no such table"):
        state.define_table("u_orphan", [], extends="u_missing")
    state.define_table("u_locked", [], read_roles=["admin"], write_roles=["admin"])
    assert not state.can_read(state.users["it"], "u_locked")
    dictionary = state.query("sys_dictionary", "name=u_custom^elementSTARTSWITHu_")
    assert sorted(d["element"] for d in dictionary) == ["u_code", "u_kind", "u_owner"]
    assert (
        state.query("sys_db_object", "name=u_child")[0]["super_class"]
        == (state.query("sys_db_object", "name=u_custom")[0]["sys_id"])
    )


def test_tables_can_be_created_through_the_table_api(sn: Instance) -> None:
    admin = sn.demo.admin
    r = sn.post(
        "/api/now/table/sys_db_object", json={"name": "u_api_table", "label": "API"}, auth=admin
    )
    assert r.status_code == 201
    r = sn.post(
        "/api/now/table/sys_dictionary",
        json={"name": "u_api_table", "element": "u_color", "internal_type": "string"},
        auth=admin,
    )
    assert r.status_code == 201
    r = sn.post("/api/now/table/u_api_table", json={"u_color": "blue"})
    assert r.status_code == 201 and r.json()["result"]["u_color"] == "blue"
