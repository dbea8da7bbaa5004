"""``serve`` through Typer; tables defined, renamed and replaced from definitions (the hook
the connector's generated Session Details table uses)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import uvicorn
from typer.testing import CliRunner

from rsbridge.sim.agiloft import (
    SimAgiloftState,
    TableDefinitionError,
    TableNames,
    create_app,
    definitions,
    load_tables,
    parse_lines,
    seed_demo,
    seed_tables,
)
from rsbridge.sim.agiloft.cli import serve
from rsbridge.sim.agiloft.seed import INTEGRATION
from rsbridge.sim.serve import serve_in_thread


def _select_all(http: httpx.Client, kb: str, table: str) -> str:
    answer = http.post(
        "/ewws/EWSelect",
        data={"$KB": kb, "$lang": "en", "$table": table, "$login": INTEGRATION[0],
              "$password": INTEGRATION[1], "where": "id > 0"},
    )  # fmt: skip
    return answer.text


@pytest.mark.parametrize(("flag", "cases"), [([], "3"), (["--no-seed"], "0")])
def test_serve_builds_the_server_it_announces(
    monkeypatch: pytest.MonkeyPatch, flag: list[str], cases: str
) -> None:
    served: dict[str, Any] = {}

    def capture(asgi: Any, **options: Any) -> None:
        # uvicorn.run blocks; keep the app and serve it on a test port instead.
        served["app"] = asgi
        served.update(options)

    monkeypatch.setattr(uvicorn, "run", capture)
    app = typer.Typer()
    app.command("agiloft")(serve)
    result = CliRunner().invoke(app, ["--port", "18090", "--kb", "Support", *flag])
    assert result.exit_code == 0, result.output
    assert "Simulated Agiloft KB: http://127.0.0.1:18090/ewws/" in result.output
    assert "Knowledge base:       Support" in result.output
    assert f"{INTEGRATION[0]} / {INTEGRATION[1]}" in result.output
    assert served["port"] == 18090 and served["ssl_certfile"] is None
    with serve_in_thread(served["app"]) as url, httpx.Client(base_url=url) as http:
        assert parse_lines(_select_all(http, "Support", "case"))["id_length"] == cases


def test_serve_wants_both_tls_files(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    app = typer.Typer()
    app.command("agiloft")(serve)
    result = CliRunner().invoke(app, ["--tls-cert", str(cert)])
    assert result.exit_code == 2
    assert "--tls-cert and --tls-key go together" in result.output


def test_other_table_names() -> None:
    names = TableNames(case="support_case", people="people", teams="groups",
                       sessions="bt_sessions")  # fmt: skip
    state = SimAgiloftState(kb="Helpdesk")
    demo = seed_demo(state, names)
    assert sorted(state.tables) == ["bt_sessions", "groups", "people", "support_case"]
    assert demo.ids["printer"] == 1
    with serve_in_thread(create_app(state)) as url, httpx.Client(base_url=url) as http:
        assert parse_lines(_select_all(http, "Helpdesk", "support_case"))["id_length"] == "3"
        assert "Table case has not been found" in _select_all(http, "Helpdesk", "case")
        answer = http.post(
            "/ewws/EWRead",
            data={"$KB": "Helpdesk", "$lang": "en", "$table": "support_case", "id": "1",
                  "$login": INTEGRATION[0], "$password": INTEGRATION[1]},
        )  # fmt: skip
        assert parse_lines(answer.text)["assigned_team"] == "Tier 1 Support"


def test_a_generated_session_table_replaces_the_default() -> None:
    state = SimAgiloftState()
    seed_tables(state)
    generated = {
        "name": "bomgar_session_details",
        "label": "BeyondTrust Session Details",
        "fields": [
            {"name": "lsid", "required": True},
            {"name": "ticket", "type": "link", "link_table": "case", "link_field": "id"},
            {"name": "report_html", "label": "Report"},
            {"name": "kind", "type": "choice", "choices": ["Session", "Jump"], "default": "Jump"},
        ],
    }
    assert state.load_tables([generated]) == ["bomgar_session_details"]
    case = state.create("case", {"summary": ["x"]})
    session_id, created = state.upsert(
        "bomgar_session_details", ["lsid"], {"lsid": ["abc"], "ticket": [f":{case}"]}
    )
    assert created
    view = state.view("bomgar_session_details", state.record("bomgar_session_details", session_id))
    assert view == {
        "id": session_id,
        "date_created": view["date_created"],
        "date_updated": view["date_updated"],
        "lsid": "abc",
        "ticket": str(case),
        "report_html": None,
        "kind": "Jump",
    }


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"fields": []}, "a table definition has no name"),
        ({"name": "t", "fields": [{"type": "text"}]}, "t: a field has no name"),
        ({"name": "t", "fields": [{"name": "a", "type": "blob"}]}, "t.a: type 'blob'"),
        ({"name": "t", "fields": [{"name": "a", "type": "choice"}]}, "needs choices"),
        ({"name": "t", "fields": [{"name": "a", "type": "link"}]}, "needs link_table"),
        ({"name": "t", "fields": [{"name": "a"}, {"name": "a"}]}, "defined twice"),
        (
            {
                "name": "t",
                "fields": [{"name": "a", "type": "choice", "choices": ["x"], "default": "y"}],
            },
            "default 'y' is not a choice",
        ),
    ],
)
def test_bad_definitions_say_what_is_wrong(definition: dict[str, Any], message: str) -> None:
    with pytest.raises(TableDefinitionError, match=message):
        load_tables([definition])


def test_default_definitions_carry_the_extension_fields() -> None:
    case = next(d for d in definitions() if d["name"] == "case")
    names = {f["name"] for f in case["fields"]}
    assert {"bomgar_session_key", "bomgar_session_url",
            "bomgar_jump_client_search_criteria", "assigned_person",
            "assigned_team"} <= names  # fmt: skip
    tables = load_tables(definitions())
    sessions = next(t for t in tables if t.name == "bomgar_session_details")
    assert sessions.by_name["session_id"].required
    assert sessions.by_name["support_case"].link_table == "case"
    people = next(t for t in tables if t.name == "contacts.employees")
    assert "bomgar_username" in people.by_name
