"""Finding connectors by name: built-ins, entry points, and the errors."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors import registry
from rsbridge.connectors.base import (
    CheckResult,
    Connector,
    NoteDelivery,
    SessionDelivery,
    SurveyDelivery,
    Ticket,
    WriteResult,
)
from rsbridge.connectors.jsonl import JsonlConnector
from rsbridge.connectors.registry import BUILTIN, ENTRY_POINT_GROUP, available, connector_class
from rsbridge.connectors.servicenow import ServiceNowConnector
from rsbridge.connectors.webhook import WebhookConnector
from rsbridge.errors import ConfigurationError

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


class ThirdPartyConnector(Connector):
    """What a package would declare under the entry-point group."""

    name = "thirdparty"
    title = "Third party"

    async def check(self) -> CheckResult:
        return CheckResult("ok")

    async def find_ticket(self, reference: str, *, source: str = "external_key") -> Ticket:
        return Ticket(reference)

    async def create_ticket(
        self, session: SupportSession, fields: Mapping[str, str], *, key: str
    ) -> Ticket:
        return Ticket(key)

    async def write_session_report(
        self, ticket: Ticket | None, delivery: SessionDelivery
    ) -> WriteResult:
        return WriteResult(delivery.key)

    async def write_survey(self, ticket: Ticket | None, delivery: SurveyDelivery) -> WriteResult:
        return WriteResult(delivery.key)

    async def write_note(self, ticket: Ticket, note: NoteDelivery) -> WriteResult:
        return WriteResult(note.key)


class NotAConnector:
    name = "nope"


@pytest.fixture
def extra_entry_points(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Entry points the registry sees, on top of none installed (tests fill it)."""
    declared: dict[str, str] = {}

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        assert group == ENTRY_POINT_GROUP
        return [EntryPoint(name, value, group) for name, value in declared.items()]

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    return declared


def test_builtins_are_found() -> None:
    assert connector_class("jsonl") is JsonlConnector
    assert connector_class("webhook") is WebhookConnector
    assert connector_class("servicenow") is ServiceNowConnector
    assert {"jsonl", "servicenow", "webhook"} <= set(available())


def test_builtins_are_declared_as_entry_points() -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert declared == BUILTIN


def test_an_unknown_name_lists_the_available_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown connector 'nosuch'") as caught:
        connector_class("nosuch")
    # Every connector, built in or installed, by name (a new connector package joins the list).
    assert f"available: {', '.join(sorted(available()))})" in str(caught.value)
    assert {"jsonl", "servicenow", "webhook"} <= set(available())


def test_without_installed_metadata_builtins_still_load(extra_entry_points: dict[str, str]) -> None:
    assert available() == BUILTIN
    assert connector_class("jsonl") is JsonlConnector


def test_a_third_party_entry_point(extra_entry_points: dict[str, str]) -> None:
    extra_entry_points["thirdparty"] = f"{__name__}:ThirdPartyConnector"
    assert connector_class("thirdparty") is ThirdPartyConnector
    listed = ", ".join(sorted([*BUILTIN, "thirdparty"]))
    with pytest.raises(ConfigurationError, match=f"available: {listed}"):
        connector_class("other")


def test_an_entry_point_wins_over_a_builtin(extra_entry_points: dict[str, str]) -> None:
    extra_entry_points["jsonl"] = f"{__name__}:ThirdPartyConnector"
    with pytest.raises(ConfigurationError, match="declares name 'thirdparty', not 'jsonl'"):
        connector_class("jsonl")


def test_an_entry_point_that_is_not_a_connector(extra_entry_points: dict[str, str]) -> None:
    extra_entry_points["nope"] = f"{__name__}:NotAConnector"
    with pytest.raises(ConfigurationError, match="is not a Connector class"):
        connector_class("nope")


DOCS = PYPROJECT.parent / "docs"


def test_builtins_include_every_connector_package() -> None:
    assert {"jsonl", "servicenow", "webhook"} <= set(BUILTIN)
    assert BUILTIN["servicenow"] == "rsbridge.connectors.servicenow:plugin"


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_settings_are_documented(name: str) -> None:
    """docs/connectors.md (or the connector's own docs/NAME.md) has a row per setting whose
    type, default and help match the code."""
    cls = connector_class(name)
    own = DOCS / f"{name}.md"
    doc = (DOCS / "connectors.md").read_text() + (own.read_text() if own.exists() else "")
    section = doc.split(f"## `{cls.name}`: {cls.title}\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1:]
    assert set(rows) == {s.name for s in cls.settings}
    for setting in cls.settings:
        kind, default, secret, help_text = rows[setting.name]
        assert kind == f"`{setting.type}`", setting.name
        if setting.required:
            expected_default = "required"
        elif setting.default is None:
            expected_default = "none"
        else:
            expected_default = f"`{json.dumps(setting.default)}`"
        assert default == expected_default, setting.name
        assert secret == ("**yes**" if setting.secret else "no"), setting.name
        assert help_text.replace("`", "") == setting.help.replace("`", ""), setting.name
