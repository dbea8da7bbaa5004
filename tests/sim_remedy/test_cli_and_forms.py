"""``serve`` through Typer, and forms defined from a definition (the session-form hook)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import uvicorn
from typer.testing import CliRunner

from rsbridge.sim.remedy import ARError, SimRemedyState, create_app, load_forms, seed_forms
from rsbridge.sim.remedy.cli import serve
from rsbridge.sim.remedy.forms import FormDefinitionError
from rsbridge.sim.remedy.seed import INTEGRATION
from rsbridge.sim.serve import serve_in_thread


def _login(http: httpx.Client) -> str:
    answer = http.post(
        "/api/jwt/login", data={"username": INTEGRATION[0], "password": INTEGRATION[1]}
    )
    assert answer.status_code == 200
    return answer.text


@pytest.mark.parametrize(("flag", "incidents"), [([], 3), (["--no-seed"], 0)])
def test_serve_builds_the_server_it_announces(
    monkeypatch: pytest.MonkeyPatch, flag: list[str], incidents: int
) -> None:
    served: dict[str, Any] = {}

    def capture(asgi: Any, **options: Any) -> None:
        # uvicorn.run blocks; keep the app and serve it on a test port instead.
        served["app"] = asgi
        served.update(options)

    monkeypatch.setattr(uvicorn, "run", capture)
    app = typer.Typer()
    app.command("remedy")(serve)
    result = CliRunner().invoke(app, ["--port", "18008", *flag])
    assert result.exit_code == 0, result.output
    assert "Simulated AR System server: http://127.0.0.1:18008" in result.output
    assert f"{INTEGRATION[0]} / {INTEGRATION[1]}" in result.output
    assert served["port"] == 18008 and served["ssl_certfile"] is None
    with serve_in_thread(served["app"]) as url, httpx.Client(base_url=url) as http:
        token = _login(http)
        answer = http.get(
            "/api/arsys/v1/entry/HPD:Help Desk", headers={"Authorization": f"AR-JWT {token}"}
        )
        assert len(answer.json()["entries"]) == incidents


def test_serve_wants_both_tls_files(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    app = typer.Typer()
    app.command("remedy")(serve)
    result = CliRunner().invoke(app, ["--tls-cert", str(cert)])
    assert result.exit_code == 2


SESSION_FORM = {
    "name": "RSB:Session",
    "fields": [
        {"id": 536870913, "name": "Session Key", "required": True},
        {"id": 536870914, "name": "Duration", "type": "integer"},
        {"id": 536870915, "name": "Kind", "type": "selection", "options": {"Chat": 0, "Jump": 1}},
        {"id": 536870916, "name": "Started", "type": "datetime"},
        {"id": 536870917, "name": "Report", "type": "attachment"},
    ],
}


def test_forms_from_a_definition_work_over_http() -> None:
    state = SimRemedyState()
    seed_forms(state)
    state.define_forms(load_forms([SESSION_FORM]))
    with serve_in_thread(create_app(state)) as url, httpx.Client(base_url=url) as http:
        headers = {"Authorization": f"AR-JWT {_login(http)}"}
        created = http.post(
            "/api/arsys/v1/entry/RSB:Session",
            headers=headers,
            json={
                "values": {
                    "Session Key": "abc",
                    "Duration": 42,
                    "Kind": "1",
                    "Started": "2025-01-15T10:00:00Z",
                }
            },
        )
        assert created.status_code == 201
        values = http.get(created.headers["Location"], headers=headers).json()["values"]
        assert values["Request ID"] == created.headers["Location"].rsplit("/", 1)[1]
        assert len(values["Request ID"]) == 15 and values["Request ID"].isdigit()
        assert values["Kind"] == "Jump" and values["Duration"] == 42
        assert values["Started"] == "2025-01-15T10:00:00.000+0000"
        assert values["Status"] == "New" and values["Report"] is None
        missing = http.post(
            "/api/arsys/v1/entry/RSB:Session", headers=headers, json={"values": {"Duration": 1}}
        )
        assert missing.json()[0]["messageNumber"] == 326
        wrong_type = http.post(
            "/api/arsys/v1/entry/RSB:Session",
            headers=headers,
            json={"values": {"Session Key": "k", "Duration": "many"}},
        )
        assert wrong_type.json()[0]["messageNumber"] == 306


@pytest.mark.parametrize(
    "definition",
    [
        {"fields": []},
        {"name": "X", "fields": [{"id": 5, "name": "A", "type": "blob"}]},
        {"name": "X", "fields": [{"name": "no id"}]},
    ],
)
def test_bad_definitions_are_refused(definition: dict[str, Any]) -> None:
    with pytest.raises(FormDefinitionError):
        load_forms([definition])


def test_a_view_needs_its_store() -> None:
    state = SimRemedyState()
    with pytest.raises(ValueError, match="store"):
        state.define_forms(load_forms([{"name": "V", "store": "Missing", "fields": []}]))
    assert "V" not in state.forms


def test_dates_outside_what_ar_stores_are_refused() -> None:
    state = SimRemedyState()
    seed_forms(state)
    state.define_forms(load_forms([SESSION_FORM]))
    for started in ("99999999999999", "not a date", -5):
        with pytest.raises(ARError) as caught:
            state.create("RSB:Session", {"Session Key": "k", "Started": started}, "u")
        assert caught.value.number == 306
