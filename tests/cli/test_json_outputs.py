"""Every ``--json`` output is JSON alone on stdout, so that scripts can parse it.

The test walks the whole command line (built-in commands, and every connector's commands
and simulators, loaded) for commands with a ``--json`` option, and runs each one that
:data:`COVERED` knows how to run: against the simulated appliance, a real SQLite store, a
saved report and the test connector of tests/actions. A new command with ``--json`` that
:data:`COVERED` does not run fails :func:`test_every_json_command_is_covered`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from rsbridge.appliance.events import CUSTOMER_SURVEY, END
from rsbridge.cli import app
from rsbridge.cli.plugins import LazyCommand
from rsbridge.connectors import registry
from rsbridge.engine.store import open_store
from rsbridge.engine.store.base import AttemptOutcome, Finish, IncomingEvent, JobSpec
from rsbridge.sim.appliance.report_xml import session_list
from rsbridge.sim.appliance.scenarios import SessionGenerator
from tests.actions.conftest import TOKEN, Sim, new_table, sim_server, smtp_server
from tests.actions.connector import NAME
from tests.conftest import SIGNING_SECRET

Command = tuple[str, ...]


def _options(command: Any) -> set[str]:
    return {name for param in command.params for name in getattr(param, "opts", ())}


def json_commands() -> set[Command]:
    """The path of every command (built-in or a plugin's, at any depth) with ``--json``."""
    found: set[Command] = set()

    def walk(command: Any, path: Command) -> None:
        if isinstance(command, LazyCommand):
            command = command.load()
        if "--json" in _options(command):
            found.add(path)
        if hasattr(command, "list_commands"):
            ctx = typer.Context(command)
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), (*path, name))

    walk(typer.main.get_command(app), ())
    return found


@dataclass
class Setup:
    """What the commands run against."""

    config: Path
    """The configuration: the simulated appliance, the test connector ``desk``, a store
    holding a job and an ignored event."""
    report: Path
    """A saved Reporting API answer."""
    sim: Sim


Invocation = Callable[[Setup], list[str]]

COVERED: dict[Command, tuple[Invocation, bool]] = {
    ("status",): (lambda s: ["status", "-c", str(s.config)], False),
    ("events", "list"): (lambda s: ["events", "list", "-c", str(s.config)], True),
    ("report", "parse"): (lambda s: ["report", "parse", str(s.report)], False),
    ("actions", "session-key"): (
        lambda s: [
            "actions", "session-key", "-c", str(s.config), "-i", "desk",
            "--ticket", "INC0010001", "--user", "abel.admin", "--email", "--note",
        ],
        False,
    ),
    ("actions", "jump"): (
        lambda s: ["actions", "jump", "-c", str(s.config), "-i", "desk", "--ci", "SRV-DB01"],
        False,
    ),
    ("actions", "issues"): (
        lambda s: ["actions", "issues", "-c", str(s.config), "-i", "desk"], False
    ),
    ("actions", "support-now"): (
        lambda s: [
            "actions", "support-now", "-c", str(s.config), "-i", "desk",
            "--ticket", "INC0010001", "--issue", "vpn", "--note",
        ],
        False,
    ),
    ("actions", "links"): (
        lambda s: ["actions", "links", "-c", str(s.config), "-i", "desk"], False
    ),
    ("actions", "auto-create"): (
        lambda s: [
            "actions", "auto-create", "-c", str(s.config), "-i", "desk",
            "--lsid", _live_session(s.sim), "--username", "jsmith",
        ],
        False,
    ),
    ("actions", "pull"): (lambda s: ["actions", "pull", "-c", str(s.config), "-i", "desk"], False),
}  # fmt: skip
"""How to run each command with ``--json`` (appended), and whether it prints JSON lines
(one document a line) rather than one document."""

EXTRA_RUNS: list[tuple[Command, Invocation]] = [
    # The same command in another mode: the ignored events, and the jobs.
    (("events", "list"), lambda s: ["events", "list", "-c", str(s.config), "--ignored"]),
]


def _live_session(sim: Sim) -> str:
    key = sim.state.generate_session_key(queue_id="general")
    return sim.state.start_session(key.short_key)


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test connector of tests/actions beside the installed ones."""
    entry = EntryPoint(NAME, "tests.actions.connector:ActionTestConnector", "rsbridge.connectors")

    def with_the_test_connector(*, group: str) -> list[EntryPoint]:
        found = list(entry_points(group=group))
        return [*found, entry] if group == registry.ENTRY_POINT_GROUP else found

    monkeypatch.setattr(registry, "entry_points", with_the_test_connector)


def _seed(store_path: Path) -> None:
    async def seed() -> None:
        store = open_store(str(store_path))
        await store.open()
        try:
            job = IncomingEvent("default", END, "outbound", "k1", lsid="L1")
            [job_id] = (await store.record_event(job, [JobSpec("desk")])).job_ids
            assert await store.claim("seed", limit=1, lease=30)
            # Markup and a line break in the error: data, in JSON as anywhere.
            finish = Finish(AttemptOutcome.DEAD, error="[bold]refused[/bold]\nby the peer")
            assert await store.finish(job_id, "seed", finish, started_at=0)
            ignored = IncomingEvent("default", CUSTOMER_SURVEY, "outbound", "k2", lsid="L2")
            await store.record_event(ignored, [])
        finally:
            await store.close()

    asyncio.run(seed())


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registered: None) -> Iterator[Setup]:
    with sim_server() as sim, smtp_server() as box:
        monkeypatch.setenv("RSBRIDGE_JSON_TEST_SECRET", sim.client_secret)
        store = tmp_path / "engine.db"
        config = tmp_path / "rsbridge.toml"
        config.write_text(
            f"""
[engine]
store = "{store}"

[[appliances]]
host = "{sim.host}"
client_id = "{sim.client_id}"
client_secret = {{ env = "RSBRIDGE_JSON_TEST_SECRET" }}
use_plain_http = true

[actions]
enabled = true
tokens = ["{TOKEN}"]
public_url = "https://rsbridge.example.com"
link_secret = "json-test-link-secret-0123456789"

[signing]
secret = "{SIGNING_SECRET}"

[smtp]
host = "127.0.0.1"
port = {box.port}
security = "none"
from_address = "rsbridge@example.com"

[[integrations]]
name = "desk"
connector = "{NAME}"

[integrations.actions]
self_service_enabled = true
company_site_name = "examplecorp"

[integrations.settings]
table = "desk"
""",
            encoding="utf-8",
        )
        new_table()
        _seed(store)
        report = tmp_path / "report.xml"
        report.write_bytes(session_list(SessionGenerator(44).sessions(2)))
        yield Setup(config, report, sim)


def test_every_json_command_is_covered(registered: None) -> None:
    found = json_commands()
    # The walk reaches the plugins' commands: it would see a connector's --json too.
    assert ("actions", "session-key") in found and ("status",) in found
    missing = found - set(COVERED)
    assert not missing, f"commands with --json that this test does not run: {sorted(missing)}"
    # And no entry outlives its command.
    assert set(COVERED) <= found


def test_the_walk_sees_plugin_commands(registered: None) -> None:
    """The walk goes into each connector's commands (not only the built-in ones): a
    --json option there would be found."""
    seen: set[Command] = set()

    def walk(command: Any, path: Command) -> None:
        seen.add(path)
        if isinstance(command, LazyCommand):
            command = command.load()
        if hasattr(command, "list_commands"):
            ctx = typer.Context(command)
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), (*path, name))

    walk(typer.main.get_command(app), ())
    assert ("servicenow",) in seen and ("sim", "servicenow") in seen
    assert any(len(path) == 2 and path[0] == "servicenow" for path in seen), sorted(seen)


RUNS = [
    *((command, invocation) for command, (invocation, _) in COVERED.items()),
    *EXTRA_RUNS,
]


@pytest.mark.parametrize(
    ("command", "invocation"), RUNS, ids=[" ".join(command) for command, _ in RUNS]
)
def test_json_alone_on_stdout(setup: Setup, command: Command, invocation: Invocation) -> None:
    args = [*invocation(setup), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    out = result.stdout
    assert out.strip(), f"{args}: nothing on stdout"
    if COVERED[command][1]:
        documents = [json.loads(line) for line in out.splitlines()]
        assert documents and all(isinstance(d, dict) for d in documents)
    else:
        json.loads(out)
