"""MeteredStore passes the console's store methods through (the console contract runs
against it) and times their writes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rsbridge.engine.store.base import ConsoleSignIn, Store
from rsbridge.engine.store.memory import MemoryStore
from rsbridge.engine.store.metered import MeteredStore
from rsbridge.metrics import Metrics

from .store_console_contract import T0, StoreConsoleContract


class TestMeteredConsole(StoreConsoleContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[Store]:
        metered = MeteredStore(MemoryStore(), Metrics())
        await metered.open()
        yield metered
        await metered.close()


async def test_console_writes_are_timed() -> None:
    metrics = Metrics()
    store = MeteredStore(MemoryStore(), metrics)
    await store.add_sign_in(ConsoleSignIn("d", "olga", "c", T0, T0 + 10))
    await store.sign_in_failed("mallory", window=60, limit=1, now=T0)
    await store.check_lockout("mallory", now=T0)
    await store.write_audit("olga", "sign-in", now=T0)
    await store.end_sign_in("d")
    await store.prune_console(T0 + 100, limit=10)
    text = (await metrics.exposition(store)).decode()
    counted = {
        s.labels["operation"]
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "rsbridge_store_write_seconds_count" and s.value > 0
    }
    assert counted == {
        "add_sign_in",
        "sign_in_failed",
        "check_lockout",
        "write_audit",
        "end_sign_in",
        "prune_console",
    }
