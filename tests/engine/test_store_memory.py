"""The store contract against the in-memory backend, and open_store()."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsbridge.engine.store import MemoryStore, SQLiteStore, open_store
from rsbridge.engine.store.base import Store
from rsbridge.engine.store.postgresql import PostgreSQLStore
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
    "url", ["postgresql://x/y?bogus=1", "mysql://x/y", "sqlite://", "sqlite:///", ""]
)
def test_open_store_refuses_what_it_cannot_open(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_store(url)


def test_open_store_picks_postgresql_for_its_urls() -> None:
    for url in ("postgresql://rsbridge@db/rsbridge", "postgres://db/rsbridge?sslmode=require"):
        store = open_store(url)
        assert isinstance(store, PostgreSQLStore) and store.url == url


@pytest.mark.parametrize(
    "url",
    [
        "mysql://rsb:hunter22@db/x",
        "postgresql://rsb:hunter22@db/x?bogus=1",
        "postgresql://rsb:hunter22@db/x?password=hunter22&bogus=1",
        "postgresql://rsb:hunter22@[db/x",
    ],
)
def test_open_store_errors_never_show_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_store(url)
    assert "hunter22" not in str(caught.value)
    assert "rsb:***@db" in str(caught.value) or "cannot be parsed" in str(caught.value)
