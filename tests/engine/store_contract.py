"""The contract every :class:`~rsbridge.engine.store.base.Store` backend must keep.

A backend's test module subclasses :class:`StoreContract` and implements
:meth:`StoreContract.make_store`; pytest then runs every test below against it. Time
is driven through the ``now`` parameters (from :data:`T0`), never slept.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rsbridge.engine.store.base import (
    RANK_SESSION_END,
    RANK_SURVEY,
    AttemptOutcome,
    EventFilter,
    EventStatus,
    Finish,
    IncomingEvent,
    Job,
    JobFilter,
    JobSpec,
    JobStatus,
    LedgerEntry,
    LedgerKey,
    PruneCounts,
    RetentionPolicy,
    Store,
)

from .store_console_contract import StoreConsoleContract
from .store_finish_contract import StoreFinishContract
from .store_search_contract import StoreSearchContract
from .store_stats_contract import StoreStatsContract

T0 = 1_700_000_000.0
END = "support_conference_end"
SURVEY = "support_conference_customer_exit_survey_completed"


def event(
    dedup_key: str,
    *,
    lsid: str | None = "L1",
    event_type: str = END,
    appliance_id: str = "a1",
    form: tuple[tuple[str, str], ...] = (),
) -> IncomingEvent:
    """An outbound event; by default the end of session L1 on appliance a1."""
    return IncomingEvent(
        appliance_id=appliance_id,
        event_type=event_type,
        source="outbound",
        dedup_key=dedup_key,
        lsid=lsid,
        form=form,
    )


def ledger_entry(effect: str, *, lsid: str = "L1", created_at: float = T0) -> LedgerEntry:
    return LedgerEntry(
        key=LedgerKey("a1", lsid, END, "sn", effect),
        ticket_id="INC001",
        ref=f"note-{effect}",
        created_at=created_at,
        detail={"table": "incident"},
    )


def ids(jobs: list[Job]) -> list[int]:
    return [job.id for job in jobs]


DONE = Finish(AttemptOutcome.DONE)


class StoreContract(
    StoreStatsContract, StoreConsoleContract, StoreSearchContract, StoreFinishContract
):
    """Tests of the :class:`Store` docstrings; subclasses provide :meth:`make_store`."""

    def make_store(self, tmp_path: Path) -> Store:
        """A new, not yet opened, empty store of the backend under test."""
        raise NotImplementedError

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[Store]:
        store = self.make_store(tmp_path)
        await store.open()
        try:
            yield store
        finally:
            await store.close()

    async def _one(
        self,
        store: Store,
        key: str,
        spec: JobSpec,
        *,
        lsid: str | None = "L1",
        event_type: str = END,
        appliance_id: str = "a1",
    ) -> int:
        """Record an event with one job at T0; the job's id."""
        incoming = event(key, lsid=lsid, event_type=event_type, appliance_id=appliance_id)
        result = await store.record_event(incoming, [spec], now=T0)
        (job_id,) = result.job_ids
        return job_id

    # --- lifecycle -----------------------------------------------------------------

    async def test_close_is_idempotent(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        await store.open()
        await store.record_event(event("k"), [JobSpec("sn")], now=T0)
        await store.close()
        await store.close()

    # --- record_event ----------------------------------------------------------------

    async def test_record_event_stores_event_and_jobs(self, store: Store) -> None:
        form = (("lsid", "L1"), ("type", END), ("z", "last"), ("a", "first-letter"))
        incoming = IncomingEvent(
            appliance_id="a1",
            event_type=END,
            source="outbound",
            dedup_key="k1",
            lsid="L1",
            external_key="INC42",
            timestamp=1_699_999_999,
            form=form,
        )
        result = await store.record_event(
            incoming, [JobSpec("sn"), JobSpec("audit", RANK_SURVEY)], now=T0
        )
        assert not result.duplicate
        assert len(result.job_ids) == 2

        stored = await store.get_event(result.event_id)
        assert stored is not None
        assert stored.id == result.event_id
        assert stored.received_at == T0
        assert (stored.appliance_id, stored.event_type, stored.source) == ("a1", END, "outbound")
        assert (stored.dedup_key, stored.lsid, stored.external_key) == ("k1", "L1", "INC42")
        assert stored.timestamp == 1_699_999_999
        assert stored.status is EventStatus.ACCEPTED
        assert stored.deliveries == 1
        assert stored.form == form  # order kept

        sn = await store.get_job(result.job_ids[0])
        assert sn is not None
        assert (sn.event_id, sn.integration, sn.rank) == (result.event_id, "sn", RANK_SESSION_END)
        assert (sn.appliance_id, sn.event_type, sn.lsid) == ("a1", END, "L1")
        assert sn.status is JobStatus.QUEUED
        assert sn.attempts == 0
        assert sn.run_after == sn.created_at == sn.updated_at == T0
        assert (sn.last_error, sn.lease_owner, sn.lease_until) == (None, None, None)
        audit = await store.get_job(result.job_ids[1])
        assert audit is not None and (audit.integration, audit.rank) == ("audit", RANK_SURVEY)

    async def test_duplicate_counts_delivery_and_queues_nothing(self, store: Store) -> None:
        first = await store.record_event(event("k1"), [JobSpec("sn")], now=T0)
        again = await store.record_event(event("k1"), [JobSpec("sn")], now=T0 + 5)
        third = await store.record_event(event("k1"), [JobSpec("other")], now=T0 + 9)
        assert again.duplicate and third.duplicate
        assert again.event_id == third.event_id == first.event_id
        assert again.job_ids == third.job_ids == ()
        stored = await store.get_event(first.event_id)
        assert stored is not None
        assert stored.deliveries == 3
        assert stored.received_at == T0  # the first delivery's
        assert ids(await store.list_jobs(JobFilter())) == list(first.job_ids)
        assert (await store.counts())["events"] == 1

    async def test_event_without_jobs_is_ignored(self, store: Store) -> None:
        owner_changed = event("k1", event_type="support_conference_owner_changed")
        result = await store.record_event(owner_changed, [], now=T0)
        assert not result.duplicate and result.job_ids == ()
        stored = await store.get_event(result.event_id)
        assert stored is not None and stored.status is EventStatus.IGNORED
        assert await store.list_jobs(JobFilter()) == []
        assert await store.claim("w", limit=10, lease=30, now=T0) == []
        counts = await store.counts()
        assert (counts["events"], counts["ignored"]) == (1, 1)

    async def test_concurrent_records_all_land(self, store: Store) -> None:
        results = await asyncio.gather(
            *(
                store.record_event(event(f"k{i}", lsid=f"L{i}"), [JobSpec("sn")], now=T0)
                for i in range(50)
            )
        )
        assert len({r.event_id for r in results}) == 50
        assert len({r.job_ids[0] for r in results}) == 50
        for i, result in enumerate(results):
            stored = await store.get_event(result.event_id)
            assert stored is not None and stored.dedup_key == f"k{i}"
        assert (await store.counts())["queued"] == 50

    # --- claim -----------------------------------------------------------------------

    async def test_claim_leases_oldest_first_up_to_limit(self, store: Store) -> None:
        job_ids = [await self._one(store, f"k{i}", JobSpec("sn"), lsid=f"L{i}") for i in range(5)]
        claimed = await store.claim("w1", limit=3, lease=30, now=T0 + 1)
        assert ids(claimed) == job_ids[:3]
        for job in claimed:
            assert job.status is JobStatus.RUNNING
            assert (job.lease_owner, job.lease_until) == ("w1", T0 + 31)
            stored = await store.get_job(job.id)
            assert stored is not None
            assert (stored.status, stored.lease_owner, stored.lease_until) == (
                JobStatus.RUNNING,
                "w1",
                T0 + 31,
            )
        rest = await store.claim("w2", limit=10, lease=30, now=T0 + 1)
        assert ids(rest) == job_ids[3:]
        assert await store.claim("w3", limit=10, lease=30, now=T0 + 2) == []

    async def test_claim_leaves_excluded_appliances_for_later(self, store: Store) -> None:
        slow = [
            await self._one(store, f"s{i}", JobSpec("sn"), lsid=f"S{i}", appliance_id="a.slow")
            for i in range(3)
        ]
        healthy = await self._one(store, "h", JobSpec("sn"), lsid="H", appliance_id="a1")
        other = await self._one(store, "o", JobSpec("sn"), lsid="O", appliance_id="a.slower")
        claimed = await store.claim(
            "w", limit=2, lease=30, now=T0 + 1, exclude_appliances={"a.slow", "a.slower"}
        )
        assert ids(claimed) == [healthy]
        # A name that merely contains an excluded one is not excluded.
        assert ids(
            await store.claim("w", limit=5, lease=30, now=T0 + 1, exclude_appliances={"a"})
        ) == [
            *slow,
            other,
        ]

    async def test_claim_with_zero_limit_claims_nothing(self, store: Store) -> None:
        await self._one(store, "k", JobSpec("sn"))
        assert await store.claim("w", limit=0, lease=30, now=T0) == []
        assert len(await store.claim("w", limit=1, lease=30, now=T0)) == 1

    async def test_session_end_before_survey_recorded_earlier(self, store: Store) -> None:
        # The survey event arrives first, but its job (rank 1) waits for the end (rank 0).
        survey = await self._one(store, "s", JobSpec("sn", RANK_SURVEY), event_type=SURVEY)
        end = await self._one(store, "e", JobSpec("sn", RANK_SESSION_END))
        assert survey < end
        assert ids(await store.claim("w", limit=10, lease=30, now=T0)) == [end]
        # While the end runs, the survey is still not runnable.
        assert await store.claim("w", limit=10, lease=30, now=T0) == []
        assert await store.finish(end, "w", DONE, started_at=T0, now=T0 + 1)
        assert ids(await store.claim("w", limit=10, lease=30, now=T0 + 1)) == [survey]

    async def test_survey_runs_after_end_is_dead(self, store: Store) -> None:
        survey = await self._one(store, "s", JobSpec("sn", RANK_SURVEY), event_type=SURVEY)
        end = await self._one(store, "e", JobSpec("sn", RANK_SESSION_END))
        assert ids(await store.claim("w", limit=10, lease=30, now=T0)) == [end]
        dead = Finish(AttemptOutcome.DEAD, error="ticket not found")
        assert await store.finish(end, "w", dead, started_at=T0, now=T0 + 1)
        assert ids(await store.claim("w", limit=10, lease=30, now=T0 + 1)) == [survey]

    async def test_waiting_job_keeps_blocking_its_session(self, store: Store) -> None:
        end = await self._one(store, "e", JobSpec("sn", RANK_SESSION_END))
        survey = await self._one(store, "s", JobSpec("sn", RANK_SURVEY), event_type=SURVEY)
        await store.claim("w", limit=10, lease=30, now=T0)
        wait = Finish(AttemptOutcome.WAIT, run_after=T0 + 60, error="no end time yet")
        assert await store.finish(end, "w", wait, started_at=T0, now=T0 + 1)
        # The end is queued (not runnable before T0 + 60) and still first of its session.
        assert await store.claim("w", limit=10, lease=30, now=T0 + 2) == []
        assert ids(await store.claim("w", limit=10, lease=30, now=T0 + 60)) == [end]
        assert await store.finish(end, "w", DONE, started_at=T0 + 60, now=T0 + 61)
        assert ids(await store.claim("w", limit=10, lease=30, now=T0 + 61)) == [survey]

    async def test_an_end_recorded_after_its_survey_was_handed_out_waits_for_it(
        self, store: Store
    ) -> None:
        # The survey came first and is at work (it may import the session itself): the
        # late end must not run beside it, or both would write the session's report.
        survey = await self._one(store, "s", JobSpec("sn", RANK_SURVEY), event_type=SURVEY)
        assert ids(await store.claim("w1", limit=5, lease=30, now=T0)) == [survey]
        end = await self._one(store, "e", JobSpec("sn"))
        other = await self._one(store, "o", JobSpec("sn"), lsid="L2")
        assert ids(await store.claim("w2", limit=5, lease=30, now=T0 + 1)) == [other]
        assert await store.finish(survey, "w1", DONE, started_at=T0, now=T0 + 2)
        assert ids(await store.claim("w2", limit=5, lease=30, now=T0 + 3)) == [end]

    async def test_an_expired_lease_does_not_block_its_session(self, store: Store) -> None:
        survey = await self._one(store, "s", JobSpec("sn", RANK_SURVEY), event_type=SURVEY)
        await store.claim("dead", limit=5, lease=30, now=T0)
        end = await self._one(store, "e", JobSpec("sn"))
        # The survey's worker died: once its lease is over, the end goes first.
        assert ids(await store.claim("w", limit=5, lease=30, now=T0 + 31)) == [end]
        assert survey not in ids(await store.claim("w", limit=5, lease=30, now=T0 + 32))

    async def test_same_rank_in_a_session_runs_in_id_order(self, store: Store) -> None:
        first = await self._one(store, "s1", JobSpec("sn", RANK_SURVEY), event_type=SURVEY)
        second = await self._one(store, "s2", JobSpec("sn", RANK_SURVEY), event_type=SURVEY)
        assert ids(await store.claim("w", limit=10, lease=30, now=T0)) == [first]
        assert await store.finish(first, "w", DONE, started_at=T0, now=T0)
        assert ids(await store.claim("w", limit=10, lease=30, now=T0)) == [second]

    async def test_ordering_is_per_integration_and_appliance(self, store: Store) -> None:
        survey = await store.record_event(
            event("s", event_type=SURVEY),
            [JobSpec("sn", RANK_SURVEY), JobSpec("audit", RANK_SURVEY)],
            now=T0,
        )
        end = await store.record_event(event("e"), [JobSpec("sn")], now=T0)
        other_appliance = await self._one(
            store, "s2", JobSpec("sn", RANK_SURVEY), event_type=SURVEY, appliance_id="a2"
        )
        claimed = ids(await store.claim("w", limit=10, lease=30, now=T0))
        # audit has no end job for L1; a2's L1 is another session.
        assert claimed == sorted([survey.job_ids[1], end.job_ids[0], other_appliance])

    async def test_independent_sessions_are_claimed_together(self, store: Store) -> None:
        jobs = []
        for n in range(3):
            jobs.append(await self._one(store, f"e{n}", JobSpec("sn"), lsid=f"L{n}"))
            await self._one(store, f"s{n}", JobSpec("sn", RANK_SURVEY), lsid=f"L{n}")
        assert ids(await store.claim("w", limit=10, lease=30, now=T0)) == jobs

    async def test_jobs_without_session_are_not_ordered(self, store: Store) -> None:
        first = await self._one(store, "x1", JobSpec("sn", RANK_SURVEY), lsid=None)
        second = await self._one(store, "x2", JobSpec("sn", RANK_SESSION_END), lsid=None)
        assert ids(await store.claim("w", limit=10, lease=30, now=T0)) == [first, second]

    async def test_concurrent_claims_are_disjoint(self, store: Store) -> None:
        for i in range(40):
            await self._one(store, f"k{i}", JobSpec("sn"), lsid=f"L{i}")
        batches = await asyncio.gather(
            *(store.claim(f"w{n}", limit=7, lease=30, now=T0) for n in range(8))
        )
        claimed = [job.id for batch in batches for job in batch]
        assert len(claimed) == len(set(claimed)) == 40

    async def test_run_after_is_respected(self, store: Store) -> None:
        job = await self._one(store, "k", JobSpec("sn"))
        await store.claim("w", limit=1, lease=30, now=T0)
        retry = Finish(AttemptOutcome.RETRY, run_after=T0 + 100, error="503")
        assert await store.finish(job, "w", retry, started_at=T0, now=T0 + 1)
        assert await store.claim("w", limit=1, lease=30, now=T0 + 99.9) == []
        assert ids(await store.claim("w", limit=1, lease=30, now=T0 + 100)) == [job]

    async def test_expired_lease_is_reclaimed_with_an_expired_attempt(self, store: Store) -> None:
        job = await self._one(store, "k", JobSpec("sn"))
        await store.claim("dead-worker", limit=1, lease=30, now=T0)
        assert await store.claim("w2", limit=1, lease=30, now=T0 + 29) == []
        (again,) = await store.claim("w2", limit=1, lease=30, now=T0 + 30)
        assert again.id == job
        assert (again.lease_owner, again.lease_until, again.attempts) == ("w2", T0 + 60, 0)
        (attempt,) = await store.attempts(job)
        assert attempt.outcome is AttemptOutcome.EXPIRED
        assert (attempt.job_id, attempt.number, attempt.owner) == (job, 1, "dead-worker")
        assert attempt.started_at == T0
        assert attempt.finished_at == T0 + 30

    async def test_extend_lease_keeps_the_job(self, store: Store) -> None:
        job = await self._one(store, "k", JobSpec("sn"))
        await store.claim("w1", limit=1, lease=30, now=T0)
        await store.extend_lease([job], "w1", 30, now=T0 + 25)
        await store.extend_lease([job], "intruder", 1000, now=T0 + 25)  # not its job
        stored = await store.get_job(job)
        assert stored is not None and stored.lease_until == T0 + 55
        assert await store.claim("w2", limit=1, lease=30, now=T0 + 54) == []
        assert await store.finish(job, "w1", DONE, started_at=T0, now=T0 + 54)

    # --- finish ----------------------------------------------------------------------

    async def test_finish_done_records_the_attempt(self, store: Store) -> None:
        job = await self._one(store, "k", JobSpec("sn"))
        await store.claim("w", limit=1, lease=30, now=T0)
        assert await store.finish(job, "w", DONE, started_at=T0 + 1, now=T0 + 2)
        stored = await store.get_job(job)
        assert stored is not None
        assert stored.status is JobStatus.DONE
        assert (stored.attempts, stored.lease_owner, stored.lease_until) == (0, None, None)
        assert stored.updated_at == T0 + 2
        (attempt,) = await store.attempts(job)
        assert (attempt.number, attempt.owner, attempt.outcome) == (1, "w", AttemptOutcome.DONE)
        assert (attempt.started_at, attempt.finished_at, attempt.error) == (T0 + 1, T0 + 2, None)
        # Final: not claimable, not finishable again.
        assert await store.claim("w", limit=1, lease=30, now=T0 + 1000) == []
        assert not await store.finish(job, "w", DONE, started_at=T0, now=T0 + 3)

    async def test_finish_by_non_owner_changes_nothing(self, store: Store) -> None:
        job = await self._one(store, "k", JobSpec("sn"))
        await store.claim("w1", limit=1, lease=30, now=T0)
        await store.claim("w2", limit=1, lease=30, now=T0 + 31)  # w1's lease expired
        assert not await store.finish(job, "w1", DONE, started_at=T0, now=T0 + 32)
        assert not await store.finish(job, "nobody", DONE, started_at=T0, now=T0 + 32)
        stored = await store.get_job(job)
        assert stored is not None
        assert (stored.status, stored.lease_owner) == (JobStatus.RUNNING, "w2")
        assert [a.outcome for a in await store.attempts(job)] == [AttemptOutcome.EXPIRED]
        assert await store.finish(job, "w2", DONE, started_at=T0 + 31, now=T0 + 33)

    async def test_finish_of_unclaimed_or_unknown_job_is_false(self, store: Store) -> None:
        job = await self._one(store, "k", JobSpec("sn"))
        assert not await store.finish(job, "w", DONE, started_at=T0, now=T0)
        assert not await store.finish(job + 1000, "w", DONE, started_at=T0, now=T0)
        assert await store.attempts(job) == []

    async def test_finish_as_expired_is_refused(self, store: Store) -> None:
        job = await self._one(store, "k", JobSpec("sn"))
        await store.claim("w", limit=1, lease=30, now=T0)
        with pytest.raises(ValueError, match="expired"):
            await store.finish(job, "w", Finish(AttemptOutcome.EXPIRED), started_at=T0, now=T0)

    async def test_retries_count_attempts(self, store: Store) -> None:
        job = await self._one(store, "k", JobSpec("sn"))
        for n in range(1, 4):
            now = T0 + 10 * n
            await store.claim("w", limit=1, lease=30, now=now)
            retry = Finish(AttemptOutcome.RETRY, run_after=now + 5, error=f"503 #{n}")
            assert await store.finish(job, "w", retry, started_at=now, now=now + 1)
            stored = await store.get_job(job)
            assert stored is not None
            assert (stored.status, stored.attempts) == (JobStatus.QUEUED, n)
            assert (stored.last_error, stored.run_after) == (f"503 #{n}", now + 5)
            assert stored.lease_owner is None
        attempts = await store.attempts(job)
        assert [a.number for a in attempts] == [1, 2, 3]
        assert [a.error for a in attempts] == ["503 #1", "503 #2", "503 #3"]
        assert {a.outcome for a in attempts} == {AttemptOutcome.RETRY}

    async def test_a_success_clears_a_stale_error(self, store: Store) -> None:
        job = await self._one(store, "k", JobSpec("sn"))
        await store.claim("w", limit=1, lease=30, now=T0)
        retry = Finish(AttemptOutcome.RETRY, error="503 service unavailable")
        assert await store.finish(job, "w", retry, started_at=T0, now=T0 + 1)
        await store.claim("w", limit=1, lease=30, now=T0 + 2)
        released = Finish(AttemptOutcome.RELEASED)  # brings no error: the last one stays
        assert await store.finish(job, "w", released, started_at=T0 + 2, now=T0 + 3)
        stored = await store.get_job(job)
        assert stored is not None and stored.last_error == "503 service unavailable"
        await store.claim("w", limit=1, lease=30, now=T0 + 4)
        assert await store.finish(
            job, "w", Finish(AttemptOutcome.DONE), started_at=T0 + 4, now=T0 + 5
        )
        stored = await store.get_job(job)
        assert stored is not None
        assert (stored.status, stored.last_error) == (JobStatus.DONE, None)
        # A success with a note (a skip, "already delivered") keeps the note.
        other = await self._one(store, "k2", JobSpec("sn"))
        await store.claim("w", limit=1, lease=30, now=T0 + 6)
        skipped = Finish(AttemptOutcome.DONE, error="skipped: no ticket")
        assert await store.finish(other, "w", skipped, started_at=T0 + 6, now=T0 + 7)
        noted = await store.get_job(other)
        assert noted is not None and noted.last_error == "skipped: no ticket"

    async def test_retry_without_run_after_is_runnable_now(self, store: Store) -> None:
        job = await self._one(store, "k", JobSpec("sn"))
        await store.claim("w", limit=1, lease=30, now=T0)
        assert await store.finish(
            job, "w", Finish(AttemptOutcome.RETRY, error="x"), started_at=T0, now=T0 + 1
        )
        assert ids(await store.claim("w", limit=1, lease=30, now=T0 + 1)) == [job]

    async def test_wait_and_release_do_not_count(self, store: Store) -> None:
        job = await self._one(store, "k", JobSpec("sn"))
        await store.claim("w", limit=1, lease=30, now=T0)
        wait = Finish(AttemptOutcome.WAIT, run_after=T0 + 5, error="no end time yet")
        assert await store.finish(job, "w", wait, started_at=T0, now=T0 + 1)
        await store.claim("w", limit=1, lease=30, now=T0 + 5)
        released = Finish(AttemptOutcome.RELEASED)
        assert await store.finish(job, "w", released, started_at=T0 + 5, now=T0 + 6)
        stored = await store.get_job(job)
        assert stored is not None
        assert (stored.status, stored.attempts, stored.run_after) == (JobStatus.QUEUED, 0, T0 + 6)
        outcomes = [a.outcome for a in await store.attempts(job)]
        assert outcomes == [AttemptOutcome.WAIT, AttemptOutcome.RELEASED]

    async def test_dead_is_final_and_counts(self, store: Store) -> None:
        job = await self._one(store, "k", JobSpec("sn"))
        await store.claim("w", limit=1, lease=30, now=T0)
        dead = Finish(AttemptOutcome.DEAD, error="400 bad request")
        assert await store.finish(job, "w", dead, started_at=T0, now=T0 + 1)
        stored = await store.get_job(job)
        assert stored is not None
        assert (stored.status, stored.attempts) == (JobStatus.DEAD, 1)
        assert stored.last_error == "400 bad request"
        assert await store.claim("w", limit=1, lease=30, now=T0 + 10_000) == []

    async def test_release_gives_back_only_the_owners_jobs(self, store: Store) -> None:
        mine = [await self._one(store, f"k{i}", JobSpec("sn"), lsid=f"L{i}") for i in range(3)]
        theirs = await self._one(store, "t", JobSpec("sn"), lsid="LT")
        await store.claim("me", limit=3, lease=30, now=T0)
        await store.claim("them", limit=1, lease=30, now=T0)
        assert await store.finish(mine[0], "me", DONE, started_at=T0, now=T0 + 1)
        assert await store.release("me", now=T0 + 2) == 2
        assert await store.release("me", now=T0 + 3) == 0
        for job_id in mine[1:]:
            stored = await store.get_job(job_id)
            assert stored is not None
            assert (stored.status, stored.lease_owner, stored.attempts) == (
                JobStatus.QUEUED,
                None,
                0,
            )
            (attempt,) = await store.attempts(job_id)
            assert (attempt.outcome, attempt.owner) == (AttemptOutcome.RELEASED, "me")
            assert (attempt.started_at, attempt.finished_at) == (T0, T0 + 2)
        other = await store.get_job(theirs)
        assert other is not None and other.lease_owner == "them"
        assert ids(await store.claim("next", limit=10, lease=30, now=T0 + 2)) == mine[1:]

    # --- ledger ----------------------------------------------------------------------

    async def test_ledger_put_then_get(self, store: Store) -> None:
        entry = ledger_entry("session_report")
        assert await store.ledger_get(entry.key) is None
        assert await store.ledger_put(entry) == entry
        assert await store.ledger_get(entry.key) == entry
        other = LedgerKey("a1", "L1", END, "sn", "survey:customer:0")
        assert await store.ledger_get(other) is None

    async def test_ledger_put_keeps_the_first_entry(self, store: Store) -> None:
        first = ledger_entry("session_report")
        later = LedgerEntry(first.key, "INC999", "other-note", T0 + 50, {"x": "y"})
        assert await store.ledger_put(first) == first
        assert await store.ledger_put(later) == first
        assert await store.ledger_get(first.key) == first

    async def test_concurrent_ledger_puts_agree_on_one_winner(self, store: Store) -> None:
        key = LedgerKey("a1", "L1", END, "sn", "ticket")
        entries = [LedgerEntry(key, f"INC{n}", f"r{n}", T0 + n) for n in range(10)]
        results = await asyncio.gather(*(store.ledger_put(e) for e in entries))
        assert all(result == results[0] for result in results)
        assert results[0] in entries
        assert await store.ledger_get(key) == results[0]

    async def test_ledger_for_session(self, store: Store) -> None:
        late = ledger_entry("survey:customer:0", created_at=T0 + 20)
        early = ledger_entry("session_report", created_at=T0 + 10)
        elsewhere = ledger_entry("session_report", lsid="L2", created_at=T0)
        other_appliance = LedgerEntry(
            LedgerKey("a2", "L1", END, "sn", "session_report"), "INC7", "n", T0
        )
        for entry in (late, early, elsewhere, other_appliance):
            await store.ledger_put(entry)
        assert await store.ledger_for_session("a1", "L1") == [early, late]
        assert await store.ledger_for_session("a1", "L2") == [elsewhere]
        assert await store.ledger_for_session("a1", "nope") == []

    # --- watermarks ------------------------------------------------------------------

    async def test_watermarks(self, store: Store) -> None:
        assert await store.get_watermark("a1:poll") is None
        await store.set_watermark("a1:poll", T0)
        await store.set_watermark("a2:poll", T0 + 1)
        await store.set_watermark("a1:poll", T0 + 60.5)
        assert await store.get_watermark("a1:poll") == T0 + 60.5
        assert await store.get_watermark("a2:poll") == T0 + 1

    # --- operations ------------------------------------------------------------------

    async def test_get_unknown_is_none(self, store: Store) -> None:
        assert await store.get_event(12345) is None
        assert await store.get_job(12345) is None
        assert await store.attempts(12345) == []

    async def test_list_events_filters_and_pages(self, store: Store) -> None:
        recorded = []
        for i in range(7):
            result = await store.record_event(
                event(
                    f"k{i}",
                    lsid=f"L{i % 2}",
                    appliance_id="a2" if i == 6 else "a1",
                    event_type=SURVEY if i % 3 == 0 else END,
                ),
                [] if i == 5 else [JobSpec("sn")],
                now=T0 + i,
            )
            recorded.append(result.event_id)

        async def select(selection: EventFilter) -> list[int]:
            return [e.id for e in await store.list_events(selection)]

        newest_first = recorded[::-1]
        assert await select(EventFilter()) == newest_first
        assert await select(EventFilter(limit=3)) == newest_first[:3]
        page2 = await select(EventFilter(limit=3, before_id=newest_first[2]))
        assert page2 == newest_first[3:6]
        assert await select(EventFilter(lsid="L1")) == [recorded[5], recorded[3], recorded[1]]
        assert await select(EventFilter(appliance_id="a2")) == [recorded[6]]
        surveys = [recorded[6], recorded[3], recorded[0]]
        assert await select(EventFilter(event_type=SURVEY)) == surveys
        assert await select(EventFilter(status=EventStatus.IGNORED)) == [recorded[5]]
        assert await select(EventFilter(lsid="L0", event_type=SURVEY, appliance_id="a1")) == [
            recorded[0]
        ]
        assert await select(EventFilter(limit=0)) == []

    async def test_list_jobs_filters(self, store: Store) -> None:
        first = await store.record_event(
            event("k1"), [JobSpec("sn"), JobSpec("audit", RANK_SURVEY)], now=T0
        )
        second = await store.record_event(event("k2", lsid="L2"), [JobSpec("sn")], now=T0)
        sn1, audit1 = first.job_ids
        (sn2,) = second.job_ids
        await store.claim("w", limit=1, lease=30, now=T0)
        assert await store.finish(sn1, "w", DONE, started_at=T0, now=T0)

        async def select(selection: JobFilter) -> list[int]:
            return ids(await store.list_jobs(selection))

        assert await select(JobFilter()) == [sn2, audit1, sn1]
        assert await select(JobFilter(limit=2)) == [sn2, audit1]
        assert await select(JobFilter(status=JobStatus.DONE)) == [sn1]
        assert await select(JobFilter(status=JobStatus.QUEUED)) == [sn2, audit1]
        assert await select(JobFilter(integration="sn")) == [sn2, sn1]
        assert await select(JobFilter(event_id=first.event_id)) == [audit1, sn1]
        assert await select(JobFilter(lsid="L2")) == [sn2]
        assert await select(JobFilter(lsid="L1", integration="audit")) == [audit1]
        assert await select(JobFilter(status=JobStatus.DEAD)) == []
        assert await select(JobFilter(before_id=sn2)) == [audit1, sn1]
        assert await select(JobFilter(before_id=audit1, integration="sn")) == [sn1]
        assert await select(JobFilter(updated_since=T0)) == [sn2, audit1, sn1]
        assert await select(JobFilter(updated_since=T0 + 1)) == []

    async def test_retry_job_only_for_dead_jobs(self, store: Store) -> None:
        job = await self._one(store, "k", JobSpec("sn"))
        assert not await store.retry_job(job, now=T0)  # queued
        await store.claim("w", limit=1, lease=30, now=T0)
        assert not await store.retry_job(job, now=T0)  # running
        for _ in range(2):
            retry = Finish(AttemptOutcome.RETRY, run_after=T0, error="503")
            assert await store.finish(job, "w", retry, started_at=T0, now=T0)
            await store.claim("w", limit=1, lease=30, now=T0)
        dead = Finish(AttemptOutcome.DEAD, error="retries exhausted")
        assert await store.finish(job, "w", dead, started_at=T0, now=T0 + 1)
        assert await store.retry_job(job, now=T0 + 500)
        stored = await store.get_job(job)
        assert stored is not None
        assert (stored.status, stored.attempts, stored.run_after) == (JobStatus.QUEUED, 0, T0 + 500)
        assert not await store.retry_job(job, now=T0 + 500)  # queued again
        assert not await store.retry_job(job + 1000, now=T0)  # unknown
        assert await store.claim("w", limit=1, lease=30, now=T0 + 499) == []
        assert ids(await store.claim("w", limit=1, lease=30, now=T0 + 500)) == [job]
        assert len(await store.attempts(job)) == 3  # history kept

    async def test_replay_event_queues_new_jobs(self, store: Store) -> None:
        first = await store.record_event(event("k1"), [JobSpec("sn")], now=T0)
        await store.claim("w", limit=1, lease=30, now=T0)
        assert await store.finish(first.job_ids[0], "w", DONE, started_at=T0, now=T0)
        replayed = await store.replay_event(
            first.event_id, [JobSpec("sn"), JobSpec("audit", RANK_SURVEY)], now=T0 + 10
        )
        assert len(replayed) == 2 and first.job_ids[0] not in replayed
        for job_id in replayed:
            job = await store.get_job(job_id)
            assert job is not None
            assert (job.event_id, job.lsid, job.appliance_id, job.event_type) == (
                first.event_id,
                "L1",
                "a1",
                END,
            )
            assert (job.status, job.run_after, job.created_at) == (
                JobStatus.QUEUED,
                T0 + 10,
                T0 + 10,
            )
        assert sorted(ids(await store.claim("w", limit=10, lease=30, now=T0 + 10))) == replayed
        stored = await store.get_event(first.event_id)
        assert stored is not None and stored.deliveries == 1

    async def test_replay_of_ignored_event_accepts_it(self, store: Store) -> None:
        ignored = await store.record_event(event("k1"), [], now=T0)
        assert len(await store.replay_event(ignored.event_id, [JobSpec("sn")], now=T0)) == 1
        stored = await store.get_event(ignored.event_id)
        assert stored is not None and stored.status is EventStatus.ACCEPTED

    async def test_replay_of_unknown_event_raises(self, store: Store) -> None:
        with pytest.raises(KeyError):
            await store.replay_event(4242, [JobSpec("sn")], now=T0)

    async def test_counts(self, store: Store) -> None:
        empty = await store.counts()
        assert empty == {"queued": 0, "running": 0, "done": 0, "dead": 0, "events": 0, "ignored": 0}
        jobs = [await self._one(store, f"k{i}", JobSpec("sn"), lsid=f"L{i}") for i in range(4)]
        await store.record_event(event("ign"), [], now=T0)
        await store.record_event(event("k0"), [JobSpec("sn")], now=T0)  # duplicate
        await store.claim("w", limit=3, lease=30, now=T0)
        assert await store.finish(jobs[0], "w", DONE, started_at=T0, now=T0)
        dead = Finish(AttemptOutcome.DEAD, error="x")
        assert await store.finish(jobs[1], "w", dead, started_at=T0, now=T0)
        assert await store.counts() == {
            "queued": 1,
            "running": 1,
            "done": 1,
            "dead": 1,
            "events": 5,
            "ignored": 1,
        }

    # --- retention -------------------------------------------------------------------

    async def _finished(
        self,
        store: Store,
        key: str,
        *,
        at: float,
        outcomes: tuple[AttemptOutcome, ...] = (AttemptOutcome.DONE,),
        lsid: str | None = "L1",
        appliance_id: str = "a1",
    ) -> int:
        """An event received at ``at`` whose jobs (one per outcome) finished at ``at + 1``."""
        specs = [JobSpec(f"i{n}") for n in range(len(outcomes))]
        incoming = event(key, lsid=lsid, appliance_id=appliance_id)
        result = await store.record_event(incoming, specs, now=at)
        claimed = await store.claim("w", limit=len(specs), lease=30, now=at)
        assert sorted(ids(claimed)) == sorted(result.job_ids)
        for job_id, outcome in zip(result.job_ids, outcomes, strict=True):
            finish = Finish(outcome, error=None if outcome is AttemptOutcome.DONE else "x")
            assert await store.finish(job_id, "w", finish, started_at=at, now=at + 1)
        return result.event_id

    async def _prune_all(self, store: Store, policy: RetentionPolicy) -> PruneCounts:
        total = PruneCounts()
        while step := await store.prune(policy, limit=1000):
            total += step
        return total

    async def test_prune_removes_finished_events_with_jobs_and_attempts(self, store: Store) -> None:
        two_jobs = await self._finished(
            store, "k1", at=T0, outcomes=(AttemptOutcome.DONE, AttemptOutcome.DONE)
        )
        jobs = ids(await store.list_jobs(JobFilter(event_id=two_jobs)))
        ignored = (await store.record_event(event("k2"), [], now=T0 + 5)).event_id
        recent = await self._finished(store, "k3", at=T0 + 100)
        counts = await self._prune_all(store, RetentionPolicy(finished_before=T0 + 50))
        assert counts == PruneCounts(events=2, jobs=2, attempts=2, ledger=0)
        assert await store.get_event(two_jobs) is None
        assert await store.get_event(ignored) is None
        for job_id in jobs:
            assert await store.get_job(job_id) is None
            assert await store.attempts(job_id) == []
        assert await store.get_event(recent) is not None
        assert (await store.counts())["events"] == 1
        assert (await store.counts())["ignored"] == 0

    async def test_prune_never_removes_an_unfinished_event(self, store: Store) -> None:
        queued = await self._one(store, "q", JobSpec("sn"), lsid="LQ")
        running = await self._one(store, "r", JobSpec("sn"), lsid="LR")
        waiting = await self._one(store, "w", JobSpec("sn"), lsid="LW")
        await store.claim("w", limit=10, lease=30, now=T0)
        await store.release("w", now=T0)  # all queued again
        await store.claim("w", limit=1, lease=30, now=T0)  # q is running
        await store.claim("w2", limit=2, lease=30, now=T0)  # r and w running
        retry = Finish(AttemptOutcome.RETRY, run_after=T0 + 10**6, error="503")
        assert await store.finish(waiting, "w2", retry, started_at=T0, now=T0 + 1)
        # Half done: one of its two jobs still queued.
        half = await store.record_event(event("h", lsid="LH"), [JobSpec("a"), JobSpec("b")], now=T0)
        [a, b] = half.job_ids
        await store.claim("w3", limit=10, lease=30, now=T0 + 2)
        assert await store.finish(a, "w3", DONE, started_at=T0, now=T0 + 2)
        await store.release("w3", now=T0 + 2)
        policy = RetentionPolicy(finished_before=T0 + 10**7, dead_before=T0 + 10**7)
        assert await store.count_prunable(policy) == PruneCounts()
        assert await store.prune(policy, limit=100) == PruneCounts()
        for job_id in (queued, running, waiting, a, b):
            assert await store.get_job(job_id) is not None
        assert (await store.counts())["events"] == 4

    async def test_prune_counts_age_from_the_last_finish(self, store: Store) -> None:
        # Received long ago, finished (after retries) only recently: kept until the
        # retention has passed since it finished.
        job = await self._one(store, "k", JobSpec("sn"))
        await store.claim("w", limit=1, lease=30, now=T0 + 999)
        assert await store.finish(job, "w", DONE, started_at=T0 + 999, now=T0 + 1000)
        assert await store.prune(RetentionPolicy(T0 + 1000), limit=10) == PruneCounts()
        assert (await store.prune(RetentionPolicy(T0 + 1000.5), limit=10)).events == 1

    async def test_dead_letters_are_kept_unless_given_their_own_age(self, store: Store) -> None:
        dead = await self._finished(store, "d", at=T0, outcomes=(AttemptOutcome.DEAD,))
        mixed = await self._finished(
            store, "m", at=T0, outcomes=(AttemptOutcome.DONE, AttemptOutcome.DEAD), lsid="L2"
        )
        late = T0 + 10**6
        assert await store.prune(RetentionPolicy(late), limit=10) == PruneCounts()
        assert await store.prune(RetentionPolicy(late, dead_before=T0 + 1), limit=10) == (
            PruneCounts()
        )
        counts = await store.prune(RetentionPolicy(late, dead_before=T0 + 1.5), limit=10)
        assert counts == PruneCounts(events=2, jobs=3, attempts=3)
        assert await store.get_event(dead) is None and await store.get_event(mixed) is None

    async def test_a_retried_dead_letter_is_not_pruned(self, store: Store) -> None:
        kept = await self._finished(store, "d", at=T0, outcomes=(AttemptOutcome.DEAD,))
        [job] = await store.list_jobs(JobFilter(event_id=kept))
        assert await store.retry_job(job.id, now=T0 + 2)
        policy = RetentionPolicy(T0 + 10**6, dead_before=T0 + 10**6)
        assert await store.prune(policy, limit=10) == PruneCounts()
        assert await store.get_job(job.id) is not None

    async def test_prune_takes_bounded_steps_oldest_first(self, store: Store) -> None:
        events = [
            await self._finished(store, f"k{n}", at=T0 + 10 * n, lsid=f"L{n}") for n in range(5)
        ]
        policy = RetentionPolicy(T0 + 1000)
        assert (await store.prune(policy, limit=2)).events == 2
        assert [await store.get_event(e) is None for e in events] == [
            True,
            True,
            False,
            False,
            False,
        ]
        assert (await store.prune(policy, limit=2)).events == 2
        assert (await store.prune(policy, limit=2)).events == 1
        assert await store.prune(policy, limit=2) == PruneCounts()

    async def test_a_pruned_delivery_is_recorded_again_with_a_new_id(self, store: Store) -> None:
        first = await self._finished(store, "k", at=T0)
        later = await self._finished(store, "other", at=T0 + 1, lsid="L9")
        assert (await store.prune(RetentionPolicy(T0 + 1.5), limit=10)).events == 1
        again = await store.record_event(event("k"), [JobSpec("sn")], now=T0 + 50)
        # Recorded as new (the ledger keeps its effects once-only); ids are never reused.
        assert not again.duplicate and len(again.job_ids) == 1
        assert again.event_id > later > first
        assert min(again.job_ids) > max(ids(await store.list_jobs(JobFilter(event_id=later))))

    async def test_the_ledger_is_kept_unless_asked(self, store: Store) -> None:
        await self._finished(store, "k", at=T0)
        entry = await store.ledger_put(ledger_entry("session_report", created_at=T0))
        assert (await self._prune_all(store, RetentionPolicy(T0 + 10**6))).ledger == 0
        assert await store.ledger_get(entry.key) == entry

    async def test_a_sessions_ledger_goes_whole_and_after_its_events(self, store: Store) -> None:
        # L1: an event still queued. L2: finished. L3: no event ever (an action's key).
        await self._finished(store, "done", at=T0, lsid="L2")
        await self._one(store, "q", JobSpec("sn"))
        for lsid in ("L1", "L2", "L3"):
            await store.ledger_put(ledger_entry("ticket", lsid=lsid, created_at=T0))
            await store.ledger_put(ledger_entry("session_report", lsid=lsid, created_at=T0 + 100))
        # The same lsid on another appliance is another session.
        await store.ledger_put(
            LedgerEntry(LedgerKey("a2", "L3", END, "sn", "ticket"), "INC9", "r", T0 + 500)
        )
        # L2's event goes, but not every entry of a session is old enough: no entry goes.
        policy = RetentionPolicy(T0 + 10**6, ledger_before=T0 + 100)
        assert await self._prune_all(store, policy) == PruneCounts(1, 1, 1, ledger=0)
        assert await store.ledger_for_session("a1", "L2") != []
        policy = RetentionPolicy(T0 + 10**6, ledger_before=T0 + 200)
        assert await self._prune_all(store, policy) == PruneCounts(ledger=4)
        assert await store.ledger_for_session("a1", "L2") == []
        assert await store.ledger_for_session("a1", "L3") == []
        assert len(await store.ledger_for_session("a1", "L1")) == 2  # its event is stored
        assert len(await store.ledger_for_session("a2", "L3")) == 1

    async def test_count_prunable_counts_what_prune_removes_and_removes_nothing(
        self, store: Store
    ) -> None:
        await self._finished(store, "a", at=T0, lsid="L1")
        await self._finished(store, "b", at=T0, outcomes=(AttemptOutcome.DEAD,), lsid="L2")
        await self._finished(store, "c", at=T0 + 10**6, lsid="L3")
        await self._one(store, "q", JobSpec("sn"), lsid="L4")
        await store.record_event(event("i", lsid="L5"), [], now=T0)
        for lsid in ("L1", "L2", "L3", "L4", "L5", "L6"):
            await store.ledger_put(ledger_entry("ticket", lsid=lsid, created_at=T0))
        policy = RetentionPolicy(T0 + 10, ledger_before=T0 + 10)
        expected = PruneCounts(events=2, jobs=1, attempts=1, ledger=3)  # L1, L5, L6
        before = await store.counts()
        assert await store.count_prunable(policy) == expected
        assert await store.counts() == before
        assert len(await store.ledger_for_session("a1", "L1")) == 1
        assert await self._prune_all(store, policy) == expected
