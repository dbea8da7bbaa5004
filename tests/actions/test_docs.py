"""The actions' configuration fields, routes and CLI are documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel
from starlette.routing import Route

from rsbridge.actions.models import (
    AutoCreateRequest,
    JumpRequest,
    PullRequest,
    SessionKeyRequest,
    SupportNowRequest,
)
from rsbridge.config import (
    ActionsClientConfig,
    ActionsConfig,
    Config,
    IntegrationActionsConfig,
    IntegrationConfig,
    SmtpConfig,
)
from rsbridge.web.actions import action_routes

DOCS = Path(__file__).resolve().parents[2] / "docs"
CONFIGURATION = (DOCS / "configuration.md").read_text(encoding="utf-8")
ACTIONS = (DOCS / "actions.md").read_text(encoding="utf-8")


def rows(doc: str) -> set[str]:
    return set(re.findall(r"^\| `([a-z_]+)` \|", doc, flags=re.MULTILINE))


@pytest.mark.parametrize(
    "model", [ActionsConfig, ActionsClientConfig, SmtpConfig, IntegrationActionsConfig]
)
def test_every_field_has_a_row(model: type[BaseModel]) -> None:
    assert set(model.model_fields) <= rows(CONFIGURATION)


def test_the_new_sections_are_in_the_top_level_tables() -> None:
    assert {"actions", "smtp"} <= set(Config.model_fields)
    assert "actions" in IntegrationConfig.model_fields
    assert {"actions", "smtp"} <= rows(CONFIGURATION)


def test_every_route_is_documented() -> None:
    routes = action_routes(Config(), lambda: None)
    assert len(routes) == 8
    for route in routes:
        assert isinstance(route, Route) and route.methods is not None
        for method in route.methods - {"HEAD"}:
            assert f"## `{method} {route.path}" in ACTIONS, (method, route.path)


@pytest.mark.parametrize(
    "model", [SessionKeyRequest, JumpRequest, SupportNowRequest, AutoCreateRequest, PullRequest]
)
def test_every_request_field_is_documented(model: type[BaseModel]) -> None:
    assert set(model.model_fields) <= rows(ACTIONS)
