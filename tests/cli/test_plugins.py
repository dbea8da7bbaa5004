"""A connector package adds commands, a simulator and a demo story by registration alone.

The fake package in ``tests/cli/fakeplugin`` is declared through a (monkeypatched) entry
point, as an installed third-party package would be; nothing else names it.
"""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint

import pytest
import typer
from typer.testing import CliRunner

from rsbridge import __version__
from rsbridge.cli import app
from rsbridge.cli.plugins import hooks
from rsbridge.connectors import registry
from rsbridge.connectors.registry import ENTRY_POINT_GROUP, connector_class
from tests.cli.fakeplugin import story

HOOK_MODULES = ("tests.cli.fakeplugin.commands", "tests.cli.fakeplugin.sim")


@pytest.fixture
def declared(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Entry points the registry sees besides the built-ins (tests fill it)."""
    extra: dict[str, str] = {}

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        assert group == ENTRY_POINT_GROUP
        return [EntryPoint(name, value, group) for name, value in extra.items()]

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    return extra


@pytest.fixture
def fake(declared: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The fake package installed, its hook modules not imported yet."""
    declared["fake"] = "tests.cli.fakeplugin:plugin"
    for module in HOOK_MODULES:
        monkeypatch.delitem(sys.modules, module, raising=False)
    return declared


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), prog_name="rsbridge")
    return result.exit_code, result.output


def test_the_connector_itself_is_found_through_the_plugin(fake: dict[str, str]) -> None:
    from tests.cli.fakeplugin.connector import FakeConnector

    assert connector_class("fake") is FakeConnector


def test_its_commands_are_listed_without_importing_them(fake: dict[str, str]) -> None:
    code, out = run("--help")
    assert code == 0
    assert "fake" in out and "Fake set-up helpers." in out
    assert "servicenow" in out  # the built-in connector's commands, the same way
    assert not any(m in sys.modules for m in HOOK_MODULES), "--help imported a plugin"
    code, out = run("sim", "--help")
    assert code == 0 and "Serve a simulated fake system." in out and "appliance" in out
    assert not any(m in sys.modules for m in HOOK_MODULES)


def test_its_commands_run_with_their_options(fake: dict[str, str]) -> None:
    assert run("fake", "greet", "--name", "ops") == (0, "hello ops from the fake plugin\n")
    code, out = run("fake", "--help")
    assert code == 0 and "greet" in out


def test_its_simulator_runs_under_sim(fake: dict[str, str]) -> None:
    assert run("sim", "fake", "--port", "4321") == (0, "fake simulator on port 4321\n")


def test_its_demo_story_is_a_target(fake: dict[str, str]) -> None:
    story.told.clear()
    code, out = run("demo", "--target", "fake", "--sessions", "2", "--seed", "5")
    assert code == 0, out
    assert story.told == [{"sessions": 2, "seed": 5}]
    assert "fake story: 2 sessions, seed 5" in out


def test_a_story_error_is_printed_not_raised(fake: dict[str, str]) -> None:
    code, out = run("demo", "--target", "fake", "--sessions", "13")
    assert code == 1
    assert "error: the fake story refuses 13 sessions" in out


def test_an_unknown_demo_target_lists_the_stories(fake: dict[str, str]) -> None:
    code, out = run("demo", "--target", "nosuch")
    assert code == 1
    stories = sorted(n for n, h in hooks("demo").items() if not isinstance(h, Exception))
    assert {"fake", "servicenow"} <= set(stories)
    assert f"no demo for 'nosuch' (available: {', '.join(stories)})" in out


def test_a_broken_plugin_does_not_break_the_command_line(declared: dict[str, str]) -> None:
    declared["broken"] = "tests.cli.no_such_module:plugin"
    code, out = run("--help")
    assert code == 0
    assert "broken" in out and "Unavailable" in out
    assert run("version")[0] == 0
    for args in (["broken"], ["sim", "broken"], ["demo", "--target", "broken"]):
        code, out = run(*args)
        assert code == 1, args
        assert "tests.cli.no_such_module:plugin failed to load: ModuleNotFoundError" in out
    # Not listed under sim: it may not even have a simulator.
    assert "broken" not in run("sim", "--help")[1]


def test_a_hook_of_the_wrong_kind_is_a_clear_error(declared: dict[str, str]) -> None:
    declared["odd"] = "tests.cli.fakeplugin:not_a_typer"
    code, out = run("odd", "--help")
    assert code == 1
    assert "odd: tests.cli.fakeplugin.sim:serve is not a typer.Typer" in out


def test_a_builtin_command_wins_a_name_clash(declared: dict[str, str]) -> None:
    declared["version"] = "tests.cli.fakeplugin:plugin"
    assert run("version") == (0, f"{__version__}\n")
    assert "Fake set-up helpers." not in run("--help")[1]


@pytest.mark.parametrize("name", sorted(registry.BUILTIN))
def test_every_builtin_plugin_loads_and_declares_its_help(name: str) -> None:
    """Registry-wide: each hook loads as what it must be; --help shows its own words."""
    from rsbridge.cli.plugins import load_command

    declared = registry.plugin(name)
    assert connector_class(name).name == name
    if declared.commands is not None:
        loaded = registry.load_hook(declared.commands)
        assert isinstance(loaded, typer.Typer)
        assert loaded.info.help == declared.commands.help
        assert name not in {"report", "sim", "actions", "events", "demo", "version"}
    if declared.simulator is not None:
        command = load_command(name, declared.simulator, "simulator")
        assert (command.help or "").splitlines()[0] == declared.simulator.help
    if declared.demo is not None:
        assert callable(registry.load_hook(declared.demo))


def test_the_builtin_hooks_are_all_there() -> None:
    # ServiceNow brings all three; the file and webhook connectors none.
    for kind in ("commands", "simulator", "demo"):
        found = hooks(kind)
        assert "servicenow" in found and not {"jsonl", "webhook"} & set(found), kind
