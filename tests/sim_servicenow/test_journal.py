"""Work notes and comments: sys_journal_field entries and the display-value stream."""

from __future__ import annotations

from rsbridge.sim.servicenow.render import activity_html, entry_html
from tests.sim_servicenow.conftest import Instance


def test_journal_writes_append_and_read_back_empty(sn: Instance) -> None:
    r = sn.post(
        "/api/now/table/incident",
        json={"short_description": "s", "work_notes": "first note", "comments": "hello caller"},
    )
    sys_id = r.json()["result"]["sys_id"]
    assert r.json()["result"]["work_notes"] == ""
    sn.clock.now += 5
    r = sn.patch(f"/api/now/table/incident/{sys_id}", json={"work_notes": "second note"})
    assert r.json()["result"]["work_notes"] == ""
    assert r.json()["result"]["sys_mod_count"] == "1"  # a journal write is an update
    r = sn.patch(f"/api/now/table/incident/{sys_id}", json={"work_notes": ""})
    assert r.json()["result"]["sys_mod_count"] == "1"  # an empty entry is not written
    entries = sn.result(
        "/api/now/table/sys_journal_field",
        params={
            "sysparm_query": f"element_id={sys_id}^element=work_notes^ORDERBYDESCsys_created_on"
        },
    )
    assert [e["value"] for e in entries] == ["second note", "first note"]
    assert set(entries[0]) == {
        "sys_id",
        "sys_created_on",
        "sys_created_by",
        "sys_tags",
        "name",
        "element_id",
        "element",
        "value",
    }
    assert entries[0]["name"] == "incident" and entries[0]["sys_created_by"] == "rsbridge"
    assert entries[0]["sys_created_on"] == "2025-01-15 10:00:05"
    comments = sn.state.journal(sys_id, "comments")
    assert [c["value"] for c in comments] == ["hello caller"]


def test_display_values_show_the_stream_newest_first(sn: Instance) -> None:
    sys_id = sn.post("/api/now/table/incident", json={"work_notes": "one"}).json()["result"][
        "sys_id"
    ]
    sn.clock.now += 60
    sn.patch(
        f"/api/now/table/incident/{sys_id}",
        json={"comments": "two"},
        auth=("jsmith", "technician-demo"),
    )
    sn.clock.now += 60
    sn.patch(f"/api/now/table/incident/{sys_id}", json={"work_notes": "three\nlines"})
    result = sn.result(
        f"/api/now/table/incident/{sys_id}",
        params={
            "sysparm_display_value": "true",
            "sysparm_fields": "work_notes,comments,comments_and_work_notes",
        },
    )
    assert result["work_notes"] == (
        "2025-01-15 10:02:00 - RS Bridge Integration (Work notes)\nthree\nlines\n\n"
        "2025-01-15 10:00:00 - RS Bridge Integration (Work notes)\none\n\n"
    )
    assert result["comments"] == "2025-01-15 10:01:00 - John Smith (Additional comments)\ntwo\n\n"
    assert result["comments_and_work_notes"] == (
        "2025-01-15 10:02:00 - RS Bridge Integration (Work notes)\nthree\nlines\n\n"
        "2025-01-15 10:01:00 - John Smith (Additional comments)\ntwo\n\n"
        "2025-01-15 10:00:00 - RS Bridge Integration (Work notes)\none\n\n"
    )
    both = sn.result(
        f"/api/now/table/incident/{sys_id}",
        params={"sysparm_display_value": "all", "sysparm_fields": "comments"},
    )
    assert both["comments"]["value"] == ""
    assert both["comments"]["display_value"].endswith("(Additional comments)\ntwo\n\n")


def test_same_second_entries_keep_write_order(sn: Instance) -> None:
    sys_id = sn.ids["INC0010003"]
    for text in ("a", "b", "c"):
        sn.patch(f"/api/now/table/incident/{sys_id}", json={"work_notes": text})
    values = [e["value"] for e in sn.state.journal(sys_id)]
    assert values == ["c", "b", "a"]


def test_journal_rows_follow_the_parent_acl(sn: Instance) -> None:
    path = "/api/now/table/sys_journal_field"
    element_id = sn.ids["INC0010001"]
    query = {"sysparm_query": f"element_id={element_id}"}
    assert len(sn.result(path, params=query)) == 1
    sn.state.add_user("noroles", "pw", ())
    assert sn.result(path, params=query, auth=("noroles", "pw")) == []
    sn.state.journal_rows_admin_only = True
    assert sn.result(path, params=query) == []
    assert len(sn.result(path, params=query, auth=sn.demo.admin)) == 1
    # the display-value route still shows the journal
    shown = sn.result(
        f"/api/now/table/incident/{element_id}",
        params={"sysparm_display_value": "true", "sysparm_fields": "work_notes"},
    )
    assert "Remote session offered to the caller." in shown["work_notes"]
    assert sn.post(path, json={"value": "x"}).status_code == 403


def test_the_activity_stream_renders_code_blocks_as_html(sn: Instance) -> None:
    sys_id = sn.post("/api/now/table/incident", json={"short_description": "s"}).json()["result"][
        "sys_id"
    ]
    text = "a <b>bold</b> claim\n[code]<i>shown as HTML</i>[/code] and [CODE]<u>this</u>[/Code]"
    sn.patch(f"/api/now/table/incident/{sys_id}", json={"work_notes": text})
    shown = activity_html(sn.state, sys_id, "work_notes")
    assert "a &lt;b&gt;bold&lt;/b&gt; claim<br/><i>shown as HTML</i> and <u>this</u>" in shown
    # An unclosed tag is text.
    assert entry_html("[code]<i>x</i>") == "[code]&lt;i&gt;x&lt;/i&gt;"
