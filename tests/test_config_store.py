"""``[engine] store``: a file path anchored next to the configuration, or a URL kept as is."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsbridge.config import parse_config
from rsbridge.errors import ConfigurationError


def store_of(value: str, base: Path) -> Path | str:
    return parse_config({"engine": {"store": value}}, base_dir=base).engine.store


def test_a_relative_path_is_anchored_next_to_the_configuration(tmp_path: Path) -> None:
    assert store_of("data/rsbridge.db", tmp_path) == tmp_path / "data/rsbridge.db"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://rsbridge@db.example.com:5432/rsbridge?sslmode=verify-full",
        "postgres://db/rsbridge",
        "sqlite:////var/lib/rsbridge/rsbridge.db",
        "memory:",
    ],
)
def test_a_url_is_kept_as_written(url: str, tmp_path: Path) -> None:
    assert store_of(url, tmp_path) == url


@pytest.mark.parametrize(
    "url", ["mysql://rsb:hunter22@db/rsbridge", "postgresql://rsb:hunter22@db/x?bogus=1"]
)
def test_a_bad_url_is_refused_without_its_password(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        store_of(url, tmp_path)
    assert "engine.store" in caught.value.message
    assert "hunter22" not in caught.value.message and "rsb:***@db" in caught.value.message
