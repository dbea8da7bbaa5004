"""``rsbridge agiloft setup``: the checklist and the table definitions, merged by the
simulated KB (``rsbridge sim agiloft --tables``) and then written by the connector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
import uvicorn
from typer.testing import CliRunner

from rsbridge.connectors.agiloft.commands import agiloft_app
from rsbridge.connectors.agiloft.connector import AgiloftConnector
from rsbridge.connectors.agiloft.setup import SETUP_FILE, TABLES_FILE
from rsbridge.connectors.agiloft.tables import SESSIONS, TABLES, Names, rsbridge_definitions
from rsbridge.sim.agiloft.cli import serve
from rsbridge.sim.serve import serve_in_thread


def _setup(out: Path, *args: str) -> Any:
    return CliRunner().invoke(agiloft_app, ["setup", "--out", str(out), *args])


def test_setup_writes_the_checklist_and_refuses_to_overwrite(tmp_path: Path) -> None:
    result = _setup(tmp_path, "--actions-url", "https://rsb.example.com")
    assert result.exit_code == 0, result.output
    checklist = (tmp_path / SETUP_FILE).read_text()
    for table in TABLES:
        for column in table.columns:
            if column.added or table.added:
                assert f"`{column.column}`" in checklist, column.column
    assert "https://rsb.example.com/actions/session-key" in checklist
    definitions = json.loads((tmp_path / TABLES_FILE).read_text())
    assert definitions == rsbridge_definitions(Names.build())
    again = _setup(tmp_path)
    assert again.exit_code == 1 and "--force" in again.output
    assert _setup(tmp_path, "--force").exit_code == 0


def test_renamed_names_reach_the_files(tmp_path: Path) -> None:
    config = tmp_path / "rsbridge.toml"
    config.write_text(
        """
[[appliances]]
id = "default"
host = "support.example.com"
client_id = "id"
client_secret = "secret"

[signing]
secret = "0123456789abcdef0123456789abcdef"

[[integrations]]
name = "kb"
connector = "agiloft"
[integrations.settings]
kb_url = "https://kb.example.com"
kb = "Demo"
login = "u"
password = "p"
tables = ["sessions=remote_sessions"]
fields = ["sessions.chat_transcript=chat_text"]
""",
        encoding="utf-8",
    )
    result = _setup(tmp_path / "out", "--config", str(config))
    assert result.exit_code == 0, result.output
    checklist = (tmp_path / "out" / SETUP_FILE).read_text()
    assert "`remote_sessions`" in checklist and "`chat_text`" in checklist
    assert f"`{SESSIONS.name}`" not in checklist


async def test_the_simulator_merges_the_file_and_the_connector_checks_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: dict[str, Any] = {}

    def capture(asgi: Any, **options: Any) -> None:
        served["app"] = asgi  # uvicorn.run blocks: serve the app on a test port instead

    monkeypatch.setattr(uvicorn, "run", capture)
    assert _setup(tmp_path).exit_code == 0
    sim = typer.Typer()
    sim.command("agiloft")(serve)
    tables = tmp_path / TABLES_FILE
    result = CliRunner().invoke(sim, ["--tables", str(tables)])
    assert result.exit_code == 0, result.output
    assert f"Merged {tables}" in result.output
    with serve_in_thread(served["app"]) as url:
        connector = AgiloftConnector(
            AgiloftConnector.validate_settings(
                {"kb_url": url, "kb": "Demo", "login": "rsbridge", "password": "rsbridge-sim"}
            )
        )
        try:
            assert "KB Demo" in (await connector.check()).summary
        finally:
            await connector.aclose()
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x"}', encoding="utf-8")
    failed = CliRunner().invoke(sim, ["--tables", str(broken)])
    assert failed.exit_code == 1 and "broken.json" in failed.output


async def test_without_the_merge_check_names_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda asgi, **o: served.update(app=asgi))
    sim = typer.Typer()
    sim.command("agiloft")(serve)
    assert CliRunner().invoke(sim, []).exit_code == 0
    with serve_in_thread(served["app"]) as url:
        connector = AgiloftConnector(
            AgiloftConnector.validate_settings(
                {"kb_url": url, "kb": "Demo", "login": "rsbridge", "password": "rsbridge-sim"}
            )
        )
        try:
            with pytest.raises(Exception, match="bomgar_import_key is missing") as caught:
                await connector.check()
            assert "customer_survey is missing" in str(caught.value)
        finally:
            await connector.aclose()
