"""The worker's store round trips per job: one ledger read per claimed batch, used
before the fetch and while processing, the ticket and the last effect recorded with the
job's finish, and once-only when the node dies in between."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rsbridge.connectors.base import Ticket
from rsbridge.engine.ledger_check import REPORT_EFFECT
from rsbridge.engine.runtime import Engine
from rsbridge.engine.store.base import (
    Finish,
    Finished,
    JobFilter,
    JobStatus,
    LedgerKey,
)
from rsbridge.engine.store.memory import MemoryStore
from rsbridge.errors import StoreUnavailableError
from rsbridge.sim.appliance.scenarios import SessionGenerator

from .conftest import Hook, SimAppliance, record_ends, webhook_config


class _CountingStore(MemoryStore):
    """Counts the ledger and finish calls; the first ``failing`` finishes fail (the node
    dies after its last delivery, before the finish reaches the store)."""

    def __init__(self, failing: int = 0, *, batch_read_fails: bool = False) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.finishes: list[Finish] = []
        self.failing = failing
        self.batch_read_fails = batch_read_fails

    async def ledger_get(self, key: LedgerKey) -> Any:
        self.calls["ledger_get"] += 1
        return await super().ledger_get(key)

    async def ledger_for_sessions(self, sessions: Any) -> Any:
        self.calls["ledger_for_sessions"] += 1
        if self.batch_read_fails:
            raise StoreUnavailableError("the store database is unreachable (test)")
        return await super().ledger_for_sessions(sessions)

    async def ledger_for_session(self, appliance_id: str, lsid: str) -> Any:
        self.calls["ledger_for_session"] += 1
        return await super().ledger_for_session(appliance_id, lsid)

    async def ledger_put(self, entry: Any) -> Any:
        self.calls["ledger_put"] += 1
        return await super().ledger_put(entry)

    async def finish(self, job_id: int, owner: str, finish: Finish, **kw: Any) -> Finished:
        if self.failing > 0:
            self.failing -= 1
            raise StoreUnavailableError("the store database is unreachable (test)")
        self.calls["finish"] += 1
        self.finishes.append(finish)
        return await super().finish(job_id, owner, finish, **kw)


async def _run_end(
    tmp_path: Path, sim: SimAppliance, hook: Hook, store: MemoryStore, sessions: int = 1
) -> Engine:
    config = webhook_config(tmp_path, sim, hook.url, settings={"max_attempts": 1, "timeout": 0.5})
    engine = Engine(config, store=store)
    await engine.open()
    await record_ends(store, config, sim, list(SessionGenerator(1).sessions(sessions)))
    assert engine.worker is not None
    await engine.worker.run_until_idle()
    return engine


async def test_session_ends_cost_one_ledger_read_a_batch_and_record_with_the_finish(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    store = _CountingStore()
    engine = await _run_end(tmp_path, sim, hook, store, sessions=3)
    try:
        jobs = await store.list_jobs(JobFilter())
        assert [job.status for job in jobs] == [JobStatus.DONE] * 3
        # One read for the claimed batch: before the fetch (is any done already?) and
        # while processing (which effects are recorded?).
        assert store.calls["ledger_for_sessions"] == 1
        assert store.calls["ledger_get"] == 0
        assert store.calls["ledger_for_session"] == 0
        # The ticket and the report, recorded by the finish in the same transaction.
        assert store.calls["ledger_put"] == 0
        assert store.calls["finish"] == 3
        effects = [[e.key.effect for e in f.ledger] for f in store.finishes]
        assert effects == [["ticket", REPORT_EFFECT]] * 3
        for job in jobs:
            entries = await store.ledger_for_session("default", job.lsid or "")
            assert {e.key.effect for e in entries} == {"ticket", REPORT_EFFECT}
    finally:
        await engine.aclose()
    assert len(hook.state.of_kind("session_report")) == 3


async def test_when_the_batch_read_fails_each_job_reads_its_own_ledger(
    tmp_path: Path, sim: SimAppliance, hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    store = _CountingStore(batch_read_fails=True)
    engine = await _run_end(tmp_path, sim, hook, store, sessions=3)
    try:
        jobs = await store.list_jobs(JobFilter())
        assert [job.status for job in jobs] == [JobStatus.DONE] * 3
        assert store.calls["ledger_for_sessions"] == 1
        # Is it done already (before the fetch), and which effects are recorded: per job.
        assert store.calls["ledger_get"] == 3
        assert store.calls["ledger_for_session"] == 3
        assert "the ledger could not be read: StoreUnavailableError" in caplog.text
    finally:
        await engine.aclose()
    assert len(hook.state.of_kind("session_report")) == 3


async def test_a_node_dying_between_delivery_and_finish_repeats_the_write_not_the_effect(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    store = _CountingStore(failing=1)
    engine = await _run_end(tmp_path, sim, hook, store)
    try:
        [job] = await store.list_jobs(JobFilter())
        [delivered] = hook.state.of_kind("session_report")
        # Neither the finish nor the ticket's and report's entries reached the store.
        assert job.status is JobStatus.RUNNING
        assert await store.ledger_for_session("default", job.lsid or "") == []
        [created] = hook.state.of_kind("ticket")  # the session has no reference
        # The node is gone: its jobs go back (as its lease runs out) and run again.
        assert job.lease_owner is not None
        assert await store.release(job.lease_owner) == 1
        assert engine.worker is not None
        await engine.worker.run_until_idle()
        [job] = await store.list_jobs(JobFilter())
        assert job.status is JobStatus.DONE
        entries = {
            e.key.effect: e for e in await store.ledger_for_session("default", job.lsid or "")
        }
        assert set(entries) == {"ticket", REPORT_EFFECT}
    finally:
        await engine.aclose()
    # The ticket created again under the same key is the same ticket, and the report
    # written again under the same key went to it: one effect each.
    assert created.key is not None and delivered.key is not None
    assert hook.state.of_kind("ticket") == [created]
    assert hook.state.repeats == {created.key: 1, delivered.key: 1}
    assert entries["ticket"].ticket_id == delivered.body["ticket"]["id"]


async def test_a_ticket_created_before_a_failed_write_is_remembered_for_the_retry(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    store = _CountingStore()
    config = webhook_config(tmp_path, sim, hook.url, settings={"max_attempts": 1})
    engine = Engine(config, store=store)
    await engine.open()
    try:
        connector = engine.connectors["hook"]
        create = connector.create_ticket

        async def then_refuse_the_next(*args: Any, **kwargs: Any) -> Ticket:
            ticket = await create(*args, **kwargs)
            hook.state.fail_next(503)  # the report's write, right after
            return ticket

        connector.create_ticket = then_refuse_the_next  # type: ignore[method-assign]
        [session] = SessionGenerator(1).sessions(1)
        assert session.external_key is None  # no reference: a ticket is created
        await record_ends(store, config, sim, [session])
        assert engine.worker is not None
        await engine.worker.run_until_idle()
        [job] = await store.list_jobs(JobFilter())
        assert job.status is JobStatus.DONE and job.attempts == 1
        # The failed attempt's finish recorded the ticket; the retry wrote to it and
        # created none again (a second create would have been a repeat of its key).
        assert [[e.key.effect for e in f.ledger] for f in store.finishes] == [
            ["ticket"],
            [REPORT_EFFECT],
        ]
        [created] = hook.state.of_kind("ticket")
        [report] = hook.state.of_kind("session_report")
        assert created.key is not None and created.key not in hook.state.repeats
        assert report.body["ticket"]["id"] == store.finishes[0].ledger[0].ticket_id
    finally:
        await engine.aclose()
