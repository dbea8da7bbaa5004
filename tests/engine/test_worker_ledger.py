"""The worker's store round trips per job: one ledger read per claimed batch before the
fetch, one while processing, the last effect recorded with the job's finish, and
once-only when the node dies in between."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from rsbridge.appliance.events import END
from rsbridge.engine.intake import job_specs
from rsbridge.engine.ledger_check import REPORT_EFFECT
from rsbridge.engine.runtime import Engine
from rsbridge.engine.store.base import (
    Finish,
    Finished,
    IncomingEvent,
    JobFilter,
    JobStatus,
    LedgerKey,
)
from rsbridge.engine.store.memory import MemoryStore
from rsbridge.errors import StoreUnavailableError
from rsbridge.sim.appliance.scenarios import SessionGenerator

from .conftest import Hook, SimAppliance, engine_config


class _CountingStore(MemoryStore):
    """Counts the ledger and finish calls; the first ``failing`` finishes fail (the node
    dies after its last delivery, before the finish reaches the store)."""

    def __init__(self, failing: int = 0) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.finishes: list[Finish] = []
        self.failing = failing

    async def ledger_get(self, key: LedgerKey) -> Any:
        self.calls["ledger_get"] += 1
        return await super().ledger_get(key)

    async def ledger_recorded(self, keys: Any) -> Any:
        self.calls["ledger_recorded"] += 1
        return await super().ledger_recorded(keys)

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
    config = engine_config(
        tmp_path,
        sim,
        integrations=[
            {
                "name": "hook",
                "connector": "webhook",
                "association": {"on_unmatched": "create"},
                "settings": {"url": hook.url, "max_attempts": 1, "timeout": 0.5},
            }
        ],
    )
    engine = Engine(config, store=store)
    await engine.open()
    for session in SessionGenerator(1).sessions(sessions):
        sim.state.add_report(session)
        await store.record_event(
            IncomingEvent("default", END, "outbound", f"end/{session.lsid}", lsid=session.lsid),
            job_specs(config, "default", END, polled=False),
        )
    assert engine.worker is not None
    await engine.worker.run_until_idle()
    return engine


async def test_session_ends_cost_one_ledger_read_each_and_record_the_report_with_the_finish(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    store = _CountingStore()
    engine = await _run_end(tmp_path, sim, hook, store, sessions=3)
    try:
        jobs = await store.list_jobs(JobFilter())
        assert [job.status for job in jobs] == [JobStatus.DONE] * 3
        # Before the fetch, is any done already? One read for the claimed batch ...
        assert store.calls["ledger_recorded"] == 1
        assert store.calls["ledger_get"] == 0
        # ... and while processing, one read of each session's entries.
        assert store.calls["ledger_for_session"] == 3
        # The ticket (its entry may be another worker's: the answer is used) ...
        assert store.calls["ledger_put"] == 3
        # ... and the report, recorded by the finish in the same transaction.
        assert store.calls["finish"] == 3
        assert [[e.key.effect for e in f.ledger] for f in store.finishes] == [[REPORT_EFFECT]] * 3
        for job in jobs:
            entries = await store.ledger_for_session("default", job.lsid or "")
            assert {e.key.effect for e in entries} == {"ticket", REPORT_EFFECT}
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
        # Neither the finish nor the report's entry reached the store: both or neither.
        assert job.status is JobStatus.RUNNING
        effects = {e.key.effect for e in await store.ledger_for_session("default", job.lsid or "")}
        assert effects == {"ticket"}
        # The node is gone: its jobs go back (as its lease runs out) and run again.
        assert job.lease_owner is not None
        assert await store.release(job.lease_owner) == 1
        assert engine.worker is not None
        await engine.worker.run_until_idle()
        [job] = await store.list_jobs(JobFilter())
        assert job.status is JobStatus.DONE
        effects = {e.key.effect for e in await store.ledger_for_session("default", job.lsid or "")}
        assert effects == {"ticket", REPORT_EFFECT}
    finally:
        await engine.aclose()
    # Written again under the same key, answered from the receiver's record: one effect.
    assert delivered.key is not None
    assert hook.state.effects(delivered.key) == 1
    assert hook.state.repeats == {delivered.key: 1}
