"""Contract tests of the store's counting methods (``job_stats``, ``last_failures``).

Mixed into :class:`~tests.engine.store_contract.StoreContract`, so every backend runs them.
"""

from __future__ import annotations

from rsbridge.engine.store.base import (
    AttemptOutcome,
    Finish,
    IncomingEvent,
    JobSpec,
    JobStats,
    LastFailure,
    Store,
)

T0 = 1_700_000_000.0


def _event(key: str, lsid: str, appliance_id: str = "a1") -> IncomingEvent:
    return IncomingEvent(
        appliance_id=appliance_id,
        event_type="support_conference_end",
        source="outbound",
        dedup_key=key,
        lsid=lsid,
    )


async def _job(store: Store, key: str, integration: str, *, appliance_id: str = "a1") -> int:
    result = await store.record_event(
        _event(key, f"L-{key}", appliance_id), [JobSpec(integration)], now=T0
    )
    (job_id,) = result.job_ids
    return job_id


async def _run(store: Store, job_id: int, finish: Finish, at: float) -> None:
    (claimed,) = await store.claim(f"w{job_id}", limit=1, lease=30, now=at)
    assert claimed.id == job_id
    assert await store.finish(job_id, f"w{job_id}", finish, started_at=at, now=at + 1)


class StoreStatsContract:
    """Counting per appliance and integration; needs the ``store`` fixture."""

    async def test_job_stats_of_an_empty_store(self, store: Store) -> None:
        assert await store.job_stats(now=T0) == []
        assert await store.last_failures() == []

    async def test_job_stats_count_each_state_per_appliance_and_integration(
        self, store: Store
    ) -> None:
        done = await _job(store, "d", "sn")
        dead = await _job(store, "x", "sn")
        retried = await _job(store, "r", "sn")
        running = await _job(store, "u", "sn")
        await _job(store, "q", "sn")  # stays queued, runnable
        await _job(store, "o", "sf", appliance_id="a2")
        await _run(store, done, Finish(AttemptOutcome.DONE), T0 + 10)
        await _run(store, dead, Finish(AttemptOutcome.DEAD, error="400 bad"), T0 + 20)
        await _run(
            store, retried, Finish(AttemptOutcome.RETRY, run_after=T0 + 500, error="503"), T0 + 30
        )
        # Oldest runnable first: the jobs before it were taken one by one above.
        (claimed,) = await store.claim("w", limit=1, lease=30, now=T0 + 40)
        assert claimed.id == running
        stats = await store.job_stats(now=T0 + 100)
        assert stats == [
            JobStats(
                "a1",
                "sn",
                queued=1,
                waiting=1,
                running=1,
                done=1,
                dead=1,
                oldest_unfinished_at=T0,
                last_done_at=T0 + 11,
            ),
            JobStats("a2", "sf", queued=1, oldest_unfinished_at=T0),
        ]
        # Later, the retried job's backoff is over: runnable, no longer waiting.
        later = await store.job_stats(now=T0 + 600)
        assert (later[0].queued, later[0].waiting) == (2, 0)

    async def test_last_failures_is_the_newest_retry_or_dead(self, store: Store) -> None:
        first = await _job(store, "1", "sn")
        second = await _job(store, "2", "sn")
        other = await _job(store, "3", "sf")
        await _run(store, first, Finish(AttemptOutcome.DEAD, error="old"), T0 + 10)
        await _run(
            store, second, Finish(AttemptOutcome.RETRY, run_after=T0 + 50, error="new"), T0 + 20
        )
        # Waits and successes are no failures.
        await _run(
            store, second, Finish(AttemptOutcome.WAIT, run_after=T0 + 90, error="no end"), T0 + 60
        )
        await _run(store, other, Finish(AttemptOutcome.DONE), T0 + 30)
        assert await store.last_failures() == [LastFailure("a1", "sn", T0 + 21, "new")]
