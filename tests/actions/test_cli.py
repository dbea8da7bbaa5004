"""``rsbridge actions ...`` as a user runs it: a TOML file, the simulator, an SMTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from typer.testing import CliRunner, Result

from rsbridge.cli import app
from tests.actions.conftest import TOKEN, Mailbox, Sim, new_table, sim_server, smtp_server
from tests.actions.connector import Table
from tests.conftest import SIGNING_SECRET

SECRET_VAR = "RSBRIDGE_ACTIONS_CLI_SECRET"
SIGNING_VAR = "RSBRIDGE_ACTIONS_CLI_SIGNING"


@pytest.fixture
def setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Sim, Mailbox, Table]]:
    with sim_server() as sim, smtp_server() as box:
        monkeypatch.setenv(SECRET_VAR, sim.client_secret)
        monkeypatch.setenv(SIGNING_VAR, SIGNING_SECRET)
        path = tmp_path / "rsbridge.toml"
        path.write_text(
            f"""
[engine]
store = "engine.db"

[[appliances]]
host = "{sim.host}"
client_id = "{sim.client_id}"
client_secret = {{ env = "{SECRET_VAR}" }}
use_plain_http = true

[actions]
enabled = true
tokens = ["{TOKEN}"]
public_url = "https://rsbridge.example.com"
link_secret = "cli-link-secret-0123456789"

[signing]
secret = {{ env = "{SIGNING_VAR}" }}

[smtp]
host = "127.0.0.1"
port = {box.port}
security = "none"
from_address = "rsbridge@example.com"

[[integrations]]
name = "desk"
connector = "actiontest"

[integrations.actions]
self_service_enabled = true
company_site_name = "examplecorp"

[integrations.settings]
table = "desk"
"""
        )
        yield path, sim, box, new_table()


def run(path: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["actions", *args, "--config", str(path)])


def test_session_key(setup: tuple[Path, Sim, Mailbox, Table]) -> None:
    path, sim, box, table = setup
    result = run(
        path, "session-key", "-i", "desk", "--ticket", "INC0010001", "--user", "abel.admin",
        "--email", "--request-id", "cli-1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("session key ") and lines[0].endswith("(queue rep:2)")
    short_key = lines[0].split()[2]
    assert sim.state.session_keys[short_key].custom["external_key"] == "INC0010001"
    assert "work note: written" in result.output
    assert "e-mail: sent (abel.tuter@example.com)" in result.output
    assert len(box.received()) == 1
    again = run(
        path, "session-key", "-i", "desk", "--ticket", "INC0010001", "--user", "abel.admin",
        "--email", "--request-id", "cli-1", "--json",
    )  # fmt: skip
    body = json.loads(again.stdout)  # the document alone on stdout
    assert body["short_key"] == short_key and body["repeated"] is True
    assert len(box.received()) == 1 and len(table.notes_on("sys-inc1")) == 1


def test_session_key_refusals(setup: tuple[Path, Sim, Mailbox, Table]) -> None:
    path, *_ = setup
    closed = run(path, "session-key", "-i", "desk", "--ticket", "INC0010002", "--user", "x")
    assert closed.exit_code == 1
    assert "error: ticket INC0010002 is closed" in closed.output
    unknown = run(path, "session-key", "-i", "Default", "--ticket", "INC0010001")
    assert unknown.exit_code == 1
    assert "appliance configuration not found" in unknown.output
    bad = run(path, "session-key", "-i", "desk", "--ticket", "INC0010001", "--assignment", "x")
    assert bad.exit_code == 1 and "assignment" in bad.output
    busy = run(path, "session-key", "-i", "desk", "--ticket", "INC0010001", "--user", "mary")
    assert busy.exit_code == 1
    assert "Requested support representative is not available at this time" in busy.output


def test_jump(setup: tuple[Path, Sim, Mailbox, Table], tmp_path: Path) -> None:
    path, *_ = setup
    url = run(path, "jump", "-i", "desk", "--ticket", "INC0010001", "--kind", "rdp")
    assert url.exit_code == 0, url.output
    params = dict(parse_qsl(urlsplit(url.output.strip()).query))
    assert params["action"] == "start_rdp_session"
    target = tmp_path / "jump.brcs-examplecorp"
    saved = run(
        path, "jump", "-i", "desk", "--ci", "SRV-DB01", "--output", "brcs", "--save", str(target),
        "--method", "pinned",
    )  # fmt: skip
    assert saved.exit_code == 0, saved.output
    assert target.read_text().startswith("BRCS1.0\naction=start_jump_item_session")
    as_json = run(path, "jump", "-i", "desk", "--ci", "SRV-DB01", "--json")
    assert json.loads(as_json.output)["configuration_item"]["host"] == "10.0.0.5"


def test_issues_and_support_now(setup: tuple[Path, Sim, Mailbox, Table]) -> None:
    path, *_ = setup
    issues = run(path, "issues", "-i", "desk")
    assert issues.exit_code == 0, issues.output
    assert "vpn\tVPN access\t(team Network)" in issues.output
    assert "4 issue(s) offered, 4 on the appliance" in issues.output
    start = run(
        path, "support-now", "-i", "desk", "--ticket", "INC0010001", "--issue", "vpn",
        "--start-type", "full", "--customer-name", "Abel", "--details", "help", "--no-note",
    )  # fmt: skip
    assert start.exit_code == 0, start.output
    params = dict(parse_qsl(urlsplit(start.output.strip()).query))
    assert params["codeName"] == "vpn" and "c2cjs" not in params
    assert params["customer.name"] == "Abel"
    noted = run(
        path, "support-now", "-i", "desk", "--ticket", "INC0010001", "--issue", "vpn",
        "--note", "--request-id", "n1", "--json",
    )  # fmt: skip
    assert json.loads(noted.stdout)["note"]["written"]


def test_links_and_auto_create(setup: tuple[Path, Sim, Mailbox, Table]) -> None:
    path, sim, _, table = setup
    links = run(path, "links", "-i", "desk")
    assert links.exit_code == 0, links.output
    assert "rsbridge: create ticket\n  https://rsbridge.example.com/actions/auto-create?" in (
        links.output
    )
    assert json.loads(run(path, "links", "-i", "desk", "--json").output)["links"]
    key = sim.state.generate_session_key(queue_id="general")
    lsid = sim.state.start_session(key.short_key)
    created = run(path, "auto-create", "-i", "desk", "--lsid", lsid, "--username", "jsmith")
    assert created.exit_code == 0, created.output
    [ticket] = table.created.values()
    assert created.output.strip() == f"ticket {ticket.number}: {ticket.url}"
    body = json.loads(run(path, "auto-create", "-i", "desk", "--lsid", lsid, "--json").output)
    assert body["ticket"]["id"] == ticket.id


def test_pull(setup: tuple[Path, Sim, Mailbox, Table]) -> None:
    from tests.actions.test_pull import _sessions

    path, sim, *_ = setup
    for session in [*_sessions(5, 2, ago=120), *_sessions(6, 1, ago=2 * 86400)]:
        sim.state.add_report(session)
    first = run(path, "pull", "-i", "desk")
    assert first.exit_code == 0, first.output
    assert "(first pull): 2 session(s) ended, 2 queued, 0 survey(s) queued" in first.output
    again = run(path, "pull", "-i", "desk", "--json")
    assert again.exit_code == 0, again.output
    body = json.loads(again.output)
    assert (body["first_run"], body["sessions_queued"]) == (False, 0)
    unknown = run(path, "pull", "-i", "nope")
    assert unknown.exit_code == 1 and "appliance configuration not found" in unknown.output
