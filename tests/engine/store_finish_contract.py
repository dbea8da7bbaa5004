"""Contract tests of ``finish`` with the attempt's effects (:attr:`Finish.ledger`), and of
``ledger_for_sessions`` (the ledger read for a batch of jobs).

Mixed into :class:`~tests.engine.store_contract.StoreContract`, so every backend runs them.
"""

from __future__ import annotations

from dataclasses import replace

from rsbridge.engine.store.base import (
    AttemptOutcome,
    Finish,
    IncomingEvent,
    JobSpec,
    JobStatus,
    LedgerEntry,
    LedgerKey,
    Store,
)

T0 = 1_700_000_000.0


def _entry(effect: str, *, ref: str = "note-1", lsid: str = "L1") -> LedgerEntry:
    return LedgerEntry(
        LedgerKey("a1", lsid, "support_conference_end", "sn", effect),
        "INC001",
        ref,
        T0 + 1,
        {"table": "incident", "quote": 'it\'s "odd" \\ \u00e9'},
    )


async def _claimed(store: Store, key: str, owner: str = "w") -> int:
    event = IncomingEvent("a1", "support_conference_end", "outbound", key, lsid="L1")
    (job_id,) = (await store.record_event(event, [JobSpec("sn")], now=T0)).job_ids
    (job,) = await store.claim(owner, limit=1, lease=30, now=T0)
    assert job.id == job_id
    return job_id


class StoreFinishContract:
    """``finish`` records the effects it carries with the attempt, atomically."""

    async def test_finish_records_its_effects(self, store: Store) -> None:
        job = await _claimed(store, "k")
        report, survey = _entry("session_report"), _entry("survey:customer:0", ref="n2")
        done = Finish(AttemptOutcome.DONE, ledger=(report, survey))
        finished = await store.finish(job, "w", done, started_at=T0, now=T0 + 2)
        assert finished and finished.held
        assert finished.recorded == (report, survey)
        assert await store.ledger_get(report.key) == report
        assert await store.ledger_get(survey.key) == survey
        assert await store.ledger_for_session("a1", "L1") == [report, survey]
        stored = await store.get_job(job)
        assert stored is not None and stored.status is JobStatus.DONE
        assert [a.outcome for a in await store.attempts(job)] == [AttemptOutcome.DONE]

    async def test_an_effect_recorded_before_keeps_its_entry(self, store: Store) -> None:
        job = await _claimed(store, "k")
        first = _entry("session_report", ref="first")
        assert await store.ledger_put(first) == first
        later = _entry("session_report", ref="later")
        finished = await store.finish(
            job, "w", Finish(AttemptOutcome.DONE, ledger=(later,)), started_at=T0, now=T0 + 2
        )
        assert finished.held and finished.recorded == ()
        assert await store.ledger_get(first.key) == first

    async def test_effects_are_recorded_even_when_the_lease_was_lost(self, store: Store) -> None:
        # The effect happened, whoever holds the job now: a later run must find it.
        job = await _claimed(store, "k", "w1")
        assert [j.id for j in await store.claim("w2", limit=1, lease=30, now=T0 + 31)] == [job]
        report = _entry("session_report")
        finished = await store.finish(
            job, "w1", Finish(AttemptOutcome.DONE, ledger=(report,)), started_at=T0, now=T0 + 32
        )
        assert not finished
        assert finished.recorded == (report,)
        assert await store.ledger_get(report.key) == report
        stored = await store.get_job(job)
        assert stored is not None
        assert (stored.status, stored.lease_owner) == (JobStatus.RUNNING, "w2")

    async def test_a_failed_attempt_records_the_effects_it_delivered(self, store: Store) -> None:
        job = await _claimed(store, "k")
        survey = _entry("survey:customer:0")
        retry = Finish(AttemptOutcome.RETRY, run_after=T0 + 60, error="boom", ledger=(survey,))
        assert await store.finish(job, "w", retry, started_at=T0, now=T0 + 2)
        assert await store.ledger_get(survey.key) == survey
        stored = await store.get_job(job)
        assert stored is not None
        assert (stored.status, stored.attempts) == (JobStatus.QUEUED, 1)

    async def test_finish_without_effects_records_none(self, store: Store) -> None:
        job = await _claimed(store, "k")
        finished = await store.finish(
            job, "w", Finish(AttemptOutcome.DONE), started_at=T0, now=T0 + 2
        )
        assert finished.held and finished.recorded == ()
        assert await store.ledger_for_session("a1", "L1") == []

    async def test_ledger_for_sessions_answers_for_many_sessions_at_once(
        self, store: Store
    ) -> None:
        survey = replace(_entry("survey:customer:0"), created_at=T0 + 5)
        report = _entry("session_report")
        elsewhere = _entry("session_report", lsid="L2")
        other_appliance = replace(elsewhere, key=replace(elsewhere.key, appliance_id="a2"))
        not_asked = _entry("session_report", lsid="L9")
        for entry in (survey, report, elsewhere, other_appliance, not_asked):
            await store.ledger_put(entry)
        asked = [("a1", "L1"), ("a1", "L2"), ("a1", "nope"), ("a1", "L1")]
        # Each session's entries oldest first, as ledger_for_session gives them; every
        # session asked for is answered, and nothing else.
        assert await store.ledger_for_sessions(asked) == {
            ("a1", "L1"): [report, survey],
            ("a1", "L2"): [elsewhere],
            ("a1", "nope"): [],
        }
        assert await store.ledger_for_sessions([("a2", "L2")]) == {("a2", "L2"): [other_appliance]}
        assert await store.ledger_for_sessions([]) == {}
