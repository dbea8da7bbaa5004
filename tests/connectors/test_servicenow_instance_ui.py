"""The update set's instance-side user interface: every script passes ``node --check``,
configured values cannot leave their JavaScript strings, and the simulated instance
stores the UI actions, Script Include, widget, page, menu and related lists it holds."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from rsbridge.connectors.servicenow.instance_ui import (
    AJAX_INCLUDE,
    SCRIPT_INCLUDE,
    UI_ACTIONS,
    WIDGET_ID,
    script_include_source,
    script_text,
    ui_action_sys_id,
)
from rsbridge.connectors.servicenow.schema import DEFAULT_TABLES, Schema
from rsbridge.connectors.servicenow.update_set import REST_MESSAGE, TOKEN_PROPERTY, update_set_xml
from rsbridge.sim.servicenow import SimServiceNowState, seed_demo
from tests.glide import node_or_skip

URL = "https://rsbridge.example.com/bridge"
HOSTILE_NAMES = [
    'snow"; gs.addErrorMessage("owned"); var x = "',
    "snow'); gs.log('owned'); ('",
    "</script><script>alert(1)</script>",
    "back\\slash\\",
    "line\u2028separator\u2029and\nnewline",
    "${token}",
    "{{rest_message}}",
]


def payload_records(xml: str, table: str) -> list[etree._Element]:
    root = etree.fromstring(xml.encode())
    found = []
    for update in root.findall("sys_update_xml"):
        payload = etree.fromstring((update.findtext("payload") or "").encode())
        found += list(payload.iter(table))
    return found


def scripts_of(xml: str) -> dict[str, str]:
    """Every JavaScript text of the update set, by a readable name."""
    found: dict[str, str] = {}
    for table, columns in (
        ("sys_script_include", ("script",)),
        ("sys_ui_action", ("script", "condition")),
        ("sp_widget", ("script", "client_script")),
        ("sys_ui_page", ("processing_script",)),
    ):
        for element in payload_records(xml, table):
            name = element.findtext("action_name") or element.findtext("name") or ""
            where = element.findtext("table") or ""
            for column in columns:
                text = element.findtext(column) or ""
                if column == "condition":
                    text = f"({text});"  # an expression
                found[f"{table}:{where}:{name}:{column}"] = text
    return found


def node_check(node: str, tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / "script.js"
    path.write_text(text, encoding="utf-8")
    checked = subprocess.run(  # noqa: S603 (node, on a file of ours)
        [node, "--check", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, (name, checked.stderr)


@pytest.mark.parametrize("integration", ["servicenow", *HOSTILE_NAMES])
def test_every_generated_script_passes_node_check(tmp_path: Path, integration: str) -> None:
    node = node_or_skip()
    xml = update_set_xml(Schema.build(), url=URL, integration=integration)
    scripts = scripts_of(xml)
    assert len(scripts) == 2 + 2 * len(UI_ACTIONS) + 2 + 2
    assert "sys_script_include::RsbridgeActionsAjax:script" in scripts
    assert "sys_ui_action:task:rsbridge_session_key:script" in scripts
    for name, text in scripts.items():
        assert text.strip(), name
        node_check(node, tmp_path, name, text)
    for page in payload_records(xml, "sys_ui_page"):
        etree.fromstring((page.findtext("html") or "").encode())  # well-formed Jelly


@pytest.mark.parametrize("integration", HOSTILE_NAMES)
def test_a_hostile_integration_name_stays_inside_its_string(
    tmp_path: Path, integration: str
) -> None:
    node = node_or_skip()
    source = script_include_source(integration, REST_MESSAGE, TOKEN_PROPERTY)
    program = tmp_path / "probe.js"
    # Evaluate the Script Include with nothing but Class defined: any statement that
    # escaped its string would run (and fail on the missing gs or alert).
    program.write_text(
        "const vm = require('vm');\n"
        "const ctx = vm.createContext({Class: {create: () => function () {}}});\n"
        f"vm.runInContext({json.dumps(source)}, ctx);\n"
        "process.stdout.write(JSON.stringify(vm.runInContext("
        "'[RsbridgeActions.prototype.INTEGRATION, RsbridgeActions.prototype.TOKEN_PROPERTY]',"
        " ctx)));\n",
        encoding="utf-8",
    )
    ran = subprocess.run(  # noqa: S603
        [node, str(program)], capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == [integration, TOKEN_PROPERTY]


def test_a_hostile_url_stays_in_the_rest_message_and_out_of_the_scripts() -> None:
    url = "https://rsbridge.example.com/a\"b</content><x>');alert(1);//x"
    xml = update_set_xml(Schema.build(), url=url, integration="servicenow")
    (message,) = payload_records(xml, "sys_rest_message")
    assert message.findtext("rest_endpoint") == url
    for name, text in scripts_of(xml).items():
        assert "rsbridge.example.com" not in text, name


def test_the_scripts_hold_no_secret_and_read_the_token_property() -> None:
    source = script_include_source("servicenow", REST_MESSAGE, TOKEN_PROPERTY)
    assert "gs.getProperty(this.TOKEN_PROPERTY" in source
    assert "setStringParameterNoEscape('token', token)" in source
    assert f'TOKEN_PROPERTY: "{TOKEN_PROPERTY}"' in source
    assert "Bearer" not in source  # the header is the REST message's, with ${token}


def test_the_instance_stores_what_the_update_set_holds() -> None:
    state = SimServiceNowState(seed=5)
    seed_demo(state)
    xml = update_set_xml(Schema.build(), url=URL, integration="servicenow")
    summary = state.import_unload_xml(xml)
    assert summary.skipped == []

    actions = {(a["table"], a["action_name"]): a for a in state.records("sys_ui_action")}
    assert set(actions) == {(a.table, a.action_name) for a in UI_ACTIONS}
    for action in UI_ACTIONS:
        stored = actions[(action.table, action.action_name)]
        assert stored["sys_id"] == ui_action_sys_id(action)
        assert stored["script"] == script_text(action.script)
        assert stored["condition"] == action.condition
        classic = "true" if action.classic else "false"
        assert stored["form_link" if action.link else "form_button"] == classic
        assert stored["form_button_v2"] == ("true" if action.workspace else "false")
        assert stored["client"] == ("true" if action.onclick else "false")
        assert stored["onclick"] == action.onclick
    key = actions[("task", "rsbridge_session_key")]
    assert (key["client"], key["form_button"], key["form_button_v2"]) == ("true", "true", "false")
    assert key["onclick"] == "rsbridgeSessionKey()"
    assert "function rsbridgeSessionKey()" in key["script"]
    twin = actions[("task", "rsbridge_session_key_workspace")]
    assert (twin["client"], twin["form_button"], twin["form_button_v2"]) == (
        "false",
        "false",
        "true",
    )
    assert twin["condition"] == key["condition"]
    includes = {i["name"]: i for i in state.records("sys_script_include")}
    assert set(includes) == {SCRIPT_INCLUDE, AJAX_INCLUDE}
    include = includes[SCRIPT_INCLUDE]
    assert include["client_callable"] == "false"
    assert include["script"] == script_include_source("servicenow", REST_MESSAGE, TOKEN_PROPERTY)
    ajax = includes[AJAX_INCLUDE]
    assert ajax["client_callable"] == "true"
    assert "Object.extendsObject(AbstractAjaxProcessor" in ajax["script"]
    (widget,) = state.records("sp_widget")
    assert widget["id"] == WIDGET_ID
    assert widget["script"] == script_text("support_now_widget_server.js")
    assert widget["client_script"] == script_text("support_now_widget_client.js")
    assert widget["template"] == script_text("support_now_widget.html")
    pages = {p["name"]: p for p in state.records("sys_ui_page")}
    page = pages["rsbridge_pull_now"]
    assert page["processing_script"] == script_text("pull_now_processing.js")
    lists_page = pages["rsbridge_related_lists"]["processing_script"]
    assert '["incident", "u_rs_session.u_task"]' in lists_page
    assert '["cmdb_ci", "u_rs_session.u_configuration_item"]' in lists_page
    assert '["new_call", "u_rs_session.u_call"]' in lists_page

    (menu,) = state.records("sys_app_application")
    modules = {m["title"]: m for m in state.records("sys_app_module")}
    assert {m["application"] for m in modules.values()} == {menu["sys_id"]}
    assert modules["Pull now"]["link_type"] == "DIRECT"
    assert modules["Pull now"]["query"] == f"{page['name']}.do"
    assert modules["Remote Support Sessions"]["name"] == "u_rs_session"

    (related,) = state.records("sys_ui_related_list")
    assert related["name"] == "u_rs_session"
    entries = state.records("sys_ui_related_list_entry")
    assert {e["list_id"] for e in entries} == {related["sys_id"]}
    children = {t.name for t in DEFAULT_TABLES if t.logical != "session"}
    assert {e["related_list"] for e in entries} == {f"{c}.u_session" for c in children}


def test_renamed_tables_reach_the_menu_and_the_related_lists() -> None:
    schema = Schema.build(["session=x_acme_session", "event=x_acme_event"])
    xml = update_set_xml(schema, url=URL, integration="servicenow")
    (related,) = payload_records(xml, "sys_ui_related_list")
    assert related.findtext("name") == "x_acme_session"
    entries = {
        e.findtext("related_list") for e in payload_records(xml, "sys_ui_related_list_entry")
    }
    assert "x_acme_event.u_session" in entries
    modules = {m.findtext("title"): m for m in payload_records(xml, "sys_app_module")}
    assert modules["Remote Support Sessions"].findtext("name") == "x_acme_session"
    pages = {p.findtext("name"): p for p in payload_records(xml, "sys_ui_page")}
    script = pages["rsbridge_related_lists"].findtext("processing_script") or ""
    assert '["incident", "x_acme_session.u_task"]' in script


def test_the_widget_controller_sends_the_choice_and_opens_the_session(tmp_path: Path) -> None:
    node = node_or_skip()
    client = script_text("support_now_widget_client.js")
    program = tmp_path / "controller.js"
    # The controller with a stand-in for c.server.get (the server script's answer) and
    # $window: a one-issue list is preselected; a URL is opened, an error is shown.
    program.write_text(
        "const api = {};\n"
        f"eval({json.dumps(client)});\n"
        "async function run(answer) {\n"
        "  const sent = [];\n"
        "  const c = {data: {ticket: 'abc', issues: [{code_name: 'vpn'}], error: ''},\n"
        "    server: {get: (input) => { sent.push(input); return Promise.resolve(answer); }}};\n"
        "  const win = {location: {href: ''}};\n"
        "  api.controller.call(c, win);\n"
        "  c.details = 'it broke';\n"
        "  c.start();\n"
        "  await new Promise((r) => setTimeout(r, 10));\n"
        "  return {sent, href: win.location.href, error: c.data.error, busy: c.busy};\n"
        "}\n"
        "(async () => process.stdout.write(JSON.stringify([\n"
        "  await run({data: {url: 'https://appliance/api/start_session?x=1'}}),\n"
        "  await run({data: {url: '', error: 'not yours'}}),\n"
        "])))();\n",
        encoding="utf-8",
    )
    ran = subprocess.run(  # noqa: S603
        [node, str(program)], capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.returncode == 0, ran.stderr
    opened, refused = json.loads(ran.stdout)
    expected = {"action": "start", "ticket": "abc", "issue": "vpn", "details": "it broke"}
    assert opened["sent"] == [expected]
    assert opened["href"] == "https://appliance/api/start_session?x=1" and not opened["busy"]
    assert refused["href"] == "" and refused["error"] == "not yours"


def test_the_session_key_dialog_escapes_what_it_shows(tmp_path: Path) -> None:
    node = node_or_skip()
    script = script_text("session_key.js")
    program = tmp_path / "dialog.js"
    # The dialog's script with GlideAjax answering a hostile answer and GlideModal
    # recording what it renders.
    hostile = {
        "ok": True,
        "short_key": '<img src=x onerror="alert(1)">',
        "key_url": "javascript:alert(1)",
        "expires": "</p><script>alert(2)</script>",
        "number": "INC'\"",
        "email": {"sent": False, "to": "", "error": "<b>bad</b>"},
    }
    program.write_text(
        "const rendered = [];\n"
        f"const answer = {json.dumps(json.dumps(hostile))};\n"
        "function GlideAjax() {}\n"
        "GlideAjax.prototype.addParam = function () {};\n"
        "GlideAjax.prototype.getXMLAnswer = function (cb) { cb(answer); };\n"
        "function GlideModal() {}\n"
        "GlideModal.prototype.setTitle = function () {};\n"
        "GlideModal.prototype.renderWithContent = function (html) { rendered.push(html); };\n"
        "const g_form = {getUniqueValue: () => 'abc'};\n"
        f"{script}\n"
        "rsbridgeSessionKey();\n"
        "process.stdout.write(JSON.stringify(rendered));\n",
        encoding="utf-8",
    )
    ran = subprocess.run(  # noqa: S603
        [node, str(program)], capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.returncode == 0, ran.stderr
    (html,) = json.loads(ran.stdout)
    assert "<img" not in html and "<script" not in html and "<b>bad" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "&lt;/p&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "INC&#39;&quot;" in html and "&lt;b&gt;bad&lt;/b&gt;" in html
    assert 'href="javascript' not in html and "The customer opens javascript:alert(1)" in html
