"""`rsbridge servicenow tables`: the importable definition, with a configuration's names."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from rsbridge.cli import app
from rsbridge.sim.servicenow import SimServiceNowState

CONFIG = """
[[appliances]]
host = "support.example.com"
client_id = "x"
client_secret = "y"

[[integrations]]
name = "snow"
connector = "servicenow"

[integrations.settings]
instance_url = "https://acme.example.com"
username = "u"
password = "p"
tables = ["session=u_acme_session"]
"""


def test_the_tables_import_into_an_instance_with_the_configured_names(tmp_path: Path) -> None:
    config = tmp_path / "rsbridge.toml"
    config.write_text(CONFIG)
    out = tmp_path / "tables.xml"
    result = CliRunner().invoke(app, ["servicenow", "tables", "-c", str(config), "-o", str(out)])
    assert result.exit_code == 0, result.output
    state = SimServiceNowState()
    state.import_unload_xml(out.read_text())
    assert state.has_table("u_acme_session") and state.has_table("u_rs_session_event")
    assert not state.has_table("u_rs_session")


def test_a_bad_rename_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "rsbridge.toml"
    config.write_text(CONFIG.replace("session=u_acme_session", "nosuch=u_x"))
    result = CliRunner().invoke(app, ["servicenow", "tables", "-c", str(config)])
    assert result.exit_code != 0
    assert "tables" in result.output
