"""``rsbridge servicenow update-set``: the update set's structure and records, its stable
sys_ids, the simulated instance importing it, and the connector's check against an
instance set up only by that import."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from typer.testing import CliRunner

from rsbridge.cli import app
from rsbridge.connectors.servicenow import ServiceNowConnector
from rsbridge.connectors.servicenow.instance_ui import UI_ACTIONS
from rsbridge.connectors.servicenow.schema import DEFAULT_TABLES, Schema
from rsbridge.connectors.servicenow.update_set import METHODS, update_set_xml
from rsbridge.errors import CheckFailedError
from rsbridge.sim.serve import serve_in_thread
from rsbridge.sim.servicenow import DemoSeed, SimServiceNowState, create_app, seed_demo
from rsbridge.sim.servicenow.seed import INTEGRATION_USER
from rsbridge.sim.servicenow.unload import UnloadError

URL = "https://rsbridge.example.com/bridge"
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
SYS_ID = re.compile(r"[0-9a-f]{32}")


def build(schema: Schema | None = None, *, now: datetime = NOW, name: str = "snow") -> str:
    return update_set_xml(schema or Schema.build(), url=URL, integration=name, now=now)


def updates(xml: str) -> list[tuple[etree._Element, etree._Element]]:
    """Each ``sys_update_xml`` with its parsed ``<record_update>`` payload."""
    root = etree.fromstring(xml.encode())
    found = []
    for update in root.findall("sys_update_xml"):
        payload = etree.fromstring((update.findtext("payload") or "").encode())
        found.append((update, payload))
    return found


def records(xml: str, table: str) -> list[etree._Element]:
    """Every payload record of ``table``."""
    return [r for _, payload in updates(xml) for r in payload if r.tag == table]


def field(record: etree._Element, name: str) -> str:
    return record.findtext(name) or ""


# --- the document -----------------------------------------------------------------------


def test_one_update_set_whose_updates_carry_their_records() -> None:
    xml = build()
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<unload unload_date=')
    root = etree.fromstring(xml.encode())
    assert root.get("unload_date") == "2026-12-01 09:30:00"
    sets = root.findall("sys_remote_update_set")
    assert len(sets) == 1 and len(root) == 1 + len(root.findall("sys_update_xml"))
    the_set = sets[0]
    set_id = field(the_set, "sys_id")
    assert SYS_ID.fullmatch(set_id) and field(the_set, "state") == "loaded"
    assert field(the_set, "name") == "rsbridge (snow)"
    names = []
    for update, payload in updates(xml):
        assert update.get("action") == "INSERT_OR_UPDATE"
        assert field(update, "action") == "INSERT_OR_UPDATE"
        assert field(update, "remote_update_set") == set_id
        reference = update.find("remote_update_set")
        assert reference is not None and reference.get("display_value") == "rsbridge (snow)"
        assert SYS_ID.fullmatch(field(update, "sys_id"))
        assert payload.tag == "record_update"
        main = payload[0]
        if main.tag == "sys_ui_related":  # a form's related lists: one group, no table
            assert payload.get("table") is None and main[-1].tag == "sys_ui_related_list"
            assert field(update, "name") == f"sys_ui_related_{main.get('table')}_null"
            names.append(field(update, "name"))
            continue
        assert payload.get("table") == main.tag and main.get("action") == "INSERT_OR_UPDATE"
        sys_id = field(main, "sys_id")
        assert SYS_ID.fullmatch(sys_id)
        # The update's name: <table>_<sys_id>, except a column's <table>_<table>_<column>.
        if main.tag == "sys_dictionary":
            column = field(main, "element") or "null"
            assert field(update, "name") == f"sys_dictionary_{field(main, 'name')}_{column}"
        else:
            assert field(update, "name") == f"{main.tag}_{sys_id}"
        names.append(field(update, "name"))
    assert len(names) == len(set(names))
    types = Counter(field(u, "type") for u, _ in updates(xml))
    columns = sum(len(t.columns) + 1 for t in DEFAULT_TABLES)  # + each table's own entry
    assert types == {
        "Table": 8,
        "Dictionary": columns,
        "Role": 2,
        "Access Control": 8 * 4,
        "System Property": 2,
        "REST Message": 1,
        "HTTP Method": len(METHODS),
        "Script Include": 2,  # RsbridgeActions and RsbridgeActionsAjax
        "UI Action": len(UI_ACTIONS),
        "Widget": 1,
        "UI Page": 2,
        "Application Menu": 1,
        "Module": 4,
        "Related Lists": 1,
    }


def test_tables_columns_references_and_labels_follow_the_schema() -> None:
    xml = build()
    tables = {field(r, "name"): field(r, "label") for r in records(xml, "sys_db_object")}
    assert tables == {t.name: t.label for t in DEFAULT_TABLES}
    columns = {(field(r, "name"), field(r, "element")): r for r in records(xml, "sys_dictionary")}
    task = columns[("u_rs_session", "u_task")]
    assert field(task, "internal_type") == "reference" and field(task, "reference") == "task"
    assert field(task, "column_label") == "Task"
    session = columns[("u_rs_session_event", "u_session")]
    assert field(session, "reference") == "u_rs_session"


def test_roles_and_acls_for_every_session_table() -> None:
    xml = build()
    roles = {field(r, "name"): field(r, "sys_id") for r in records(xml, "sys_user_role")}
    assert set(roles) == {"rsbridge_user", "rsbridge_admin"}
    acls = {field(a, "sys_id"): a for a in records(xml, "sys_security_acl")}
    links: dict[str, set[str]] = {}
    for link in records(xml, "sys_security_acl_role"):
        links.setdefault(field(link, "sys_security_acl"), set()).add(field(link, "sys_user_role"))
    seen = set()
    for sys_id, acl in acls.items():
        assert field(acl, "type") == "record" and field(acl, "active") == "true"
        operation = field(acl, "operation")
        expected = (
            {"rsbridge_user", "rsbridge_admin"} if operation == "read" else {"rsbridge_admin"}
        )
        assert links[sys_id] == {roles[r] for r in expected}, (field(acl, "name"), operation)
        seen.add((field(acl, "name"), operation))
    assert seen == {
        (t.name, op) for t in DEFAULT_TABLES for op in ("read", "create", "write", "delete")
    }


def test_properties_hold_the_url_and_an_empty_password2_token() -> None:
    props = {field(p, "name"): p for p in records(build(), "sys_properties")}
    assert field(props["rsbridge.url"], "value") == URL
    token = props["rsbridge.actions.token"]
    assert field(token, "type") == "password2" and field(token, "value") == ""


def test_the_rest_message_methods_call_the_configured_url_and_routes() -> None:
    xml = build(name="snow")
    (message,) = records(xml, "sys_rest_message")
    assert field(message, "rest_endpoint") == URL
    methods = {field(m, "function_name"): m for m in records(xml, "sys_rest_message_fn")}
    assert set(methods) == {"session-key", "jump", "support-now", "issues", "pull-now"}
    for name, route in (
        ("session-key", "/actions/session-key"),
        ("jump", "/actions/jump"),
        ("support-now", "/actions/support-now"),
        ("pull-now", "/actions/pull"),
    ):
        method = methods[name]
        assert field(method, "http_method") == "post"
        assert field(method, "rest_endpoint") == URL + route
        assert field(method, "rest_message") == field(message, "sys_id")
        assert json.loads(field(method, "content"))["integration"] == "snow"
    assert json.loads(field(methods["session-key"], "content")) == {
        "integration": "snow",
        "ticket": "${ticket}",
        "user": "${user}",
        "request_id": "${request_id}",
    }
    issues = methods["issues"]
    assert field(issues, "http_method") == "get"
    assert field(issues, "rest_endpoint") == URL + "/actions/issues?integration=snow"
    headers: dict[str, dict[str, str]] = {}
    for header in records(xml, "sys_rest_message_fn_headers"):
        by_fn = headers.setdefault(field(header, "rest_message_function"), {})
        by_fn[field(header, "name")] = field(header, "value")
    variables: dict[str, set[str]] = {}
    for var in records(xml, "sys_rest_message_fn_param_defs"):
        variables.setdefault(field(var, "rest_message_function"), set()).add(field(var, "name"))
    for name, method in methods.items():
        fn_id = field(method, "sys_id")
        assert headers[fn_id]["Authorization"] == "Bearer ${token}", name
        # Every ${variable} of the body has its substitution, and the token too.
        used = set(re.findall(r"\$\{(\w+)\}", field(method, "content")))
        assert variables[fn_id] == used | {"token"}, name


# --- stable sys_ids ---------------------------------------------------------------------


def ids(xml: str) -> set[str]:
    return {field(main, "sys_id") for _, p in updates(xml) for main in p} | {
        field(u, "sys_id") for u, _ in updates(xml)
    }


def test_the_same_settings_give_the_same_update_set() -> None:
    assert build() == build()
    later = build(now=datetime(2027, 1, 1, tzinfo=UTC))
    assert later != build() and ids(later) == ids(build())


def test_a_renamed_table_gets_its_new_name_and_new_ids() -> None:
    renamed = build(Schema.build(["survey=u_bt_survey"], ["rep.hostname=u_host"]))
    tables = {field(r, "name") for r in records(renamed, "sys_db_object")}
    assert "u_bt_survey" in tables and "u_rs_session_survey" not in tables
    elements = {(field(r, "name"), field(r, "element")) for r in records(renamed, "sys_dictionary")}
    assert ("u_rs_session_rep", "u_host") in elements
    assert ("u_rs_session_rep", "u_hostname") not in elements
    acl_names = {field(a, "name") for a in records(renamed, "sys_security_acl")}
    assert "u_bt_survey" in acl_names and "u_rs_session_survey" not in acl_names
    # The survey table's records got new ids; the roles and the REST message kept theirs.
    old, new = ids(build()), ids(renamed)
    assert old - new and new - old
    for table in ("sys_user_role", "sys_rest_message", "sys_properties"):
        assert {field(r, "sys_id") for r in records(renamed, table)} == {
            field(r, "sys_id") for r in records(build(), table)
        }


# --- the simulated instance imports it --------------------------------------------------


def fresh_instance(seed: int = 5) -> tuple[SimServiceNowState, DemoSeed]:
    state = SimServiceNowState(seed=seed)
    return state, seed_demo(state)


def test_the_instance_commits_the_update_set_into_its_tables() -> None:
    state, _ = fresh_instance()
    assert not state.has_table("u_rs_session")
    summary = state.import_unload_xml(build())
    assert sorted(summary.tables) == sorted(t.name for t in DEFAULT_TABLES)
    assert summary.skipped == []
    columns = state.columns("u_rs_session")
    assert columns["u_task"].reference == "task" and columns["u_task"].label == "Task"
    assert state.tables["u_rs_session"].label == "Remote Support Session"
    assert {r["name"] for r in state.records("sys_user_role")} == {
        "rsbridge_user",
        "rsbridge_admin",
    }
    props = {r["name"]: r for r in state.records("sys_properties")}
    assert props["rsbridge.url"]["value"] == URL
    assert props["rsbridge.actions.token"]["type"] == "password2"
    endpoints = {
        r["function_name"]: r["rest_endpoint"] for r in state.records("sys_rest_message_fn")
    }
    assert endpoints["jump"] == URL + "/actions/jump"
    (the_set,) = state.records("sys_remote_update_set")
    assert the_set["state"] == "committed" and the_set["name"] == "rsbridge (snow)"
    assert len(state.records("sys_update_xml")) == len(updates(build()))
    acl = state.acls["u_rs_session_event"]
    assert acl.read_roles == {"rsbridge_user", "rsbridge_admin"}
    admin = frozenset({"rsbridge_admin"})
    assert acl.write_roles == admin and acl.create_roles == admin and acl.delete_roles == admin


def test_importing_again_updates_instead_of_duplicating() -> None:
    state, _ = fresh_instance()
    state.import_unload_xml(build())
    tables = ("sys_update_xml", "sys_security_acl", "sys_rest_message_fn_headers", "sys_dictionary")
    before = {t: len(state.records(t)) for t in tables}
    state.import_unload_xml(build(now=datetime(2027, 1, 1, tzinfo=UTC)))
    assert {t: len(state.records(t)) for t in tables} == before
    assert len(state.records("sys_remote_update_set")) == 1


def test_a_payload_that_is_not_a_record_update_is_refused() -> None:
    state, _ = fresh_instance()
    bad = build().replace("&lt;record_update table=", "&lt;other table=", 1)
    bad = bad.replace("&lt;/record_update&gt;", "&lt;/other&gt;", 1)
    with pytest.raises(UnloadError, match="expected an <record_update> document"):
        state.import_unload_xml(bad)


# --- the connector's check against an instance set up by the update set -----------------


@pytest.fixture
def instance() -> Iterator[tuple[SimServiceNowState, DemoSeed, str]]:
    state, demo = fresh_instance(7)
    state.import_unload_xml(build())
    with serve_in_thread(create_app(state)) as url:
        yield state, demo, url


@pytest.fixture
async def connector(
    instance: tuple[SimServiceNowState, DemoSeed, str],
) -> AsyncIterator[ServiceNowConnector]:
    _, demo, url = instance
    user, password = demo.integration
    raw: dict[str, Any] = {"instance_url": url, "username": user, "password": password}
    made = ServiceNowConnector(ServiceNowConnector.validate_settings(raw))
    yield made
    await made.aclose()


async def test_check_passes_once_the_integration_user_has_rsbridge_admin(
    instance: tuple[SimServiceNowState, DemoSeed, str], connector: ServiceNowConnector
) -> None:
    state = instance[0]
    # The imported ACLs apply: without the role the integration user may not write.
    with pytest.raises(CheckFailedError) as caught:
        await connector.check()
    assert any("no create right on u_rs_session" in f for f in caught.value.findings)
    user = state.users[INTEGRATION_USER]
    user.roles = user.roles | {"rsbridge_admin"}  # what docs/servicenow.md tells the admin
    result = await connector.check()
    assert any("probe rows written and deleted in 8 of 8" in d for d in result.details)


# --- the command ------------------------------------------------------------------------


def config_file(tmp_path: Path, public_url: str | None = URL) -> Path:
    actions = f'[actions]\npublic_url = "{public_url}"\n' if public_url else ""
    path = tmp_path / "rsbridge.toml"
    path.write_text(
        f"""
[engine]
store = "engine.db"
{actions}
[[appliances]]
id = "default"
host = "bt.example.com"
client_id = "c"
client_secret = "s"

[[integrations]]
name = "snow-prod"
connector = "servicenow"
[integrations.settings]
instance_url = "https://acme.service-now.com"
username = "rsbridge"
password = "pw"
tables = ["session=u_bt_session"]
""",
        encoding="utf-8",
    )
    return path


def test_the_command_writes_the_configured_update_set(tmp_path: Path) -> None:
    out = tmp_path / "rsbridge.xml"
    runner = CliRunner()
    result = runner.invoke(
        app, ["servicenow", "update-set", "-c", str(config_file(tmp_path)), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    xml = out.read_text(encoding="utf-8")
    assert "u_bt_session" in {field(r, "name") for r in records(xml, "sys_db_object")}
    assert field(etree.fromstring(xml.encode())[0], "name") == "rsbridge (snow-prod)"
    endpoints = {field(m, "rest_endpoint") for m in records(xml, "sys_rest_message_fn")}
    assert URL + "/actions/pull" in endpoints
    stdout = runner.invoke(app, ["servicenow", "update-set", "--url", "http://127.0.0.1:8787"])
    assert stdout.exit_code == 0 and "http://127.0.0.1:8787/actions/jump" in stdout.output


def flat(output: str) -> str:
    """The CLI's error box as one line."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", output).split())


def test_the_command_needs_rsbridge_url(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["servicenow", "update-set", "-c", str(config_file(tmp_path, public_url=None))]
    )
    assert result.exit_code == 2 and "give --url or set [actions] public_url" in flat(result.output)
    result = runner.invoke(app, ["servicenow", "update-set", "--url", "rsbridge.example.com"])
    assert result.exit_code == 2 and "not an http:// or https:// URL" in flat(result.output)


def test_the_simulator_imports_the_command_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **kwargs: served.update(kwargs))
    out = tmp_path / "rsbridge.xml"
    runner = CliRunner()
    made = runner.invoke(app, ["servicenow", "update-set", "--url", URL, "-o", str(out)])
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, ["sim", "servicenow", "--port", "8298", "--import", str(out)])
    assert result.exit_code == 0, result.output
    columns = sum(len(t.columns) for t in DEFAULT_TABLES)
    assert f"Imported rsbridge.xml: 8 tables, {columns} columns" in result.output
    assert "skipped" not in result.output and served["port"] == 8298
