"""Every configuration field is documented in docs/configuration.md, and its example is real."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from rsbridge.config import (
    AdminConfig,
    AdminUserConfig,
    ApplianceConfig,
    AssociationConfig,
    Config,
    EngineConfig,
    IntegrationConfig,
    SigningConfig,
)

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
EXAMPLE = ROOT / "examples" / "rsbridge.toml"

MODELS: list[type[BaseModel]] = [
    Config,
    EngineConfig,
    ApplianceConfig,
    IntegrationConfig,
    AssociationConfig,
    SigningConfig,
    AdminConfig,
    AdminUserConfig,
]


def undocumented(doc: str) -> list[str]:
    """``model.field`` for every field whose name is not in ``doc`` as inline code."""
    return [
        f"{model.__name__}.{name}"
        for model in MODELS
        for name in model.model_fields
        if f"`{name}`" not in doc
    ]


def test_every_field_is_documented() -> None:
    assert undocumented(DOC) == []


def test_the_check_notices_a_missing_field() -> None:
    assert undocumented(DOC.replace("`poll_lookback_hours`", "`x`")) == [
        "EngineConfig.poll_lookback_hours"
    ]


@pytest.mark.parametrize(
    "model",
    [
        EngineConfig,
        ApplianceConfig,
        IntegrationConfig,
        AssociationConfig,
        SigningConfig,
        AdminConfig,
        AdminUserConfig,
    ],
)
def test_every_field_has_a_table_row(model: type[BaseModel]) -> None:
    # A row starts with the field's name; mentions in prose alone do not count.
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", DOC, flags=re.MULTILINE))
    assert set(model.model_fields) <= rows


def test_the_documented_example_is_the_example_file() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOC, flags=re.DOTALL)
    assert EXAMPLE.read_text(encoding="utf-8") in blocks
