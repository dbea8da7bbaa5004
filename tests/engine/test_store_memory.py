"""The store contract against the in-memory backend, and open_store()."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsbridge.engine.store import MemoryStore, SQLiteStore, open_store
from rsbridge.engine.store.base import Store
from rsbridge.errors import ConfigurationError

from .store_contract import StoreContract


class TestMemoryStore(StoreContract):
    def make_store(self, tmp_path: Path) -> Store:
        return MemoryStore()


def test_open_store_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_store("memory:"), MemoryStore)
    by_path = open_store(str(tmp_path / "a.db"))
    assert isinstance(by_path, SQLiteStore) and by_path.path == tmp_path / "a.db"
    by_pathlib = open_store(tmp_path / "b.db", synchronous="normal")
    assert isinstance(by_pathlib, SQLiteStore) and by_pathlib.synchronous == "normal"
    absolute = open_store(f"sqlite:///{tmp_path}/c.db")  # sqlite:////abs/path
    assert isinstance(absolute, SQLiteStore) and absolute.path == tmp_path / "c.db"
    relative = open_store("sqlite:///data/d.db")
    assert isinstance(relative, SQLiteStore) and relative.path == Path("data/d.db")


@pytest.mark.parametrize(
    "url", ["postgresql://rsbridge@db/rsbridge", "mysql://x/y", "sqlite://", "sqlite:///", ""]
)
def test_open_store_refuses_what_it_cannot_open(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_store(url)


def test_open_store_says_postgres_is_not_supported_yet() -> None:
    with pytest.raises(ConfigurationError, match="not supported yet"):
        open_store("postgresql://rsbridge@db/rsbridge")
