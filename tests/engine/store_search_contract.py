"""Contract tests of the console's store queries (``activity``, ``search_sessions``).

Mixed into :class:`~tests.engine.store_contract.StoreContract`, so every backend runs them.
Time is driven through ``now`` parameters from :data:`T0`.
"""

from __future__ import annotations

import math

import pytest

from rsbridge.engine.store.base import (
    AttemptOutcome,
    Finish,
    IncomingEvent,
    JobSpec,
    LedgerEntry,
    LedgerKey,
    SessionFilter,
    SessionRow,
    SessionState,
    Store,
)

T0 = 1_700_000_000.0
END = "support_conference_end"
SURVEY = "support_conference_customer_exit_survey_completed"


async def _record(
    store: Store,
    key: str,
    lsid: str,
    integrations: tuple[str, ...],
    *,
    at: float = T0,
    appliance_id: str = "a1",
    event_type: str = END,
) -> tuple[int, ...]:
    incoming = IncomingEvent(
        appliance_id=appliance_id,
        event_type=event_type,
        source="outbound",
        dedup_key=key,
        lsid=lsid,
    )
    result = await store.record_event(incoming, [JobSpec(i) for i in integrations], now=at)
    return result.job_ids


async def _finish(store: Store, job_id: int, finish: Finish, *, at: float) -> None:
    """Claim exactly ``job_id`` (every other runnable job is claimed and given back) and end
    its attempt at ``at``."""
    owner = f"w{job_id}"
    claimed = await store.claim(owner, limit=100, lease=60, now=at)
    assert job_id in [j.id for j in claimed], f"job {job_id} was not runnable at {at}"
    for job in claimed:
        if job.id != job_id:
            released = Finish(AttemptOutcome.RELEASED, run_after=at)
            assert await store.finish(job.id, owner, released, started_at=at, now=at)
    assert await store.finish(job_id, owner, finish, started_at=at, now=at)


async def _ticket(
    store: Store, lsid: str, integration: str, ticket_id: str, number: str | None = None
) -> None:
    detail = {"number": number} if number else {}
    key = LedgerKey("a1", lsid, "ticket", integration, "ticket")
    await store.ledger_put(LedgerEntry(key, ticket_id, "", T0, detail))


def _where(rows: list[SessionRow]) -> list[tuple[str, str]]:
    return [(r.lsid, r.integration) for r in rows]


class StoreSearchContract:
    """The overview's charts and the session search; needs the ``store`` fixture."""

    # --- activity -------------------------------------------------------------------

    async def test_activity_counts_deliveries_failures_and_latency_per_bucket(
        self, store: Store
    ) -> None:
        # Bucket 0 [T0, T0+60): three deliveries of 1 s, 2 s and 40 s; one retry.
        # Bucket 2 [T0+120, T0+180): one dead letter. Bucket 1 stays empty.
        fast, mid, slow, flaky, dead = [
            (await _record(store, f"k{i}", f"L{i}", ("sn",), at=T0 + start))[0]
            for i, start in enumerate((0, 0, 10, 0, 0))
        ]
        await _finish(store, fast, Finish(AttemptOutcome.DONE), at=T0 + 1)
        await _finish(store, mid, Finish(AttemptOutcome.DONE), at=T0 + 2)
        retry = Finish(AttemptOutcome.RETRY, run_after=T0 + 900, error="503")
        await _finish(store, flaky, retry, at=T0 + 30)
        await _finish(store, slow, Finish(AttemptOutcome.DONE), at=T0 + 50)
        await _finish(store, dead, Finish(AttemptOutcome.DEAD, error="400"), at=T0 + 130)

        buckets = await store.activity(T0, T0 + 180, 60)

        assert [b.start for b in buckets] == [T0, T0 + 60, T0 + 120]
        assert [b.delivered for b in buckets] == [3, 0, 0]
        assert [b.failures for b in buckets] == [1, 0, 1]
        first = buckets[0]
        assert first.latency_p50 is not None and first.latency_p95 is not None
        # Histogram bins are sqrt(2) wide: the median (2 s) and p95 (40 s) within that.
        assert 2 / math.sqrt(2) <= first.latency_p50 <= 2 * math.sqrt(2)
        assert 40 / math.sqrt(2) <= first.latency_p95 <= 40 * math.sqrt(2)
        assert buckets[1].latency_p50 is None and buckets[1].latency_p95 is None

    async def test_activity_leaves_out_skipped_sessions_and_other_times(self, store: Store) -> None:
        skipped, late = [(await _record(store, k, k, ("sn",)))[0] for k in ("s", "l")]
        await _finish(
            store, skipped, Finish(AttemptOutcome.DONE, error="skipped: no ticket"), at=T0 + 5
        )
        await _finish(store, late, Finish(AttemptOutcome.DONE), at=T0 + 70)
        [bucket] = await store.activity(T0, T0 + 60, 60)
        assert (bucket.delivered, bucket.failures, bucket.latency_p50) == (0, 0, None)
        [later] = await store.activity(T0 + 60, T0 + 120, 60)
        assert later.delivered == 1

    async def test_activity_refuses_unbounded_work(self, store: Store) -> None:
        with pytest.raises(ValueError, match="buckets"):
            await store.activity(T0, T0 + 10_000, 1)
        with pytest.raises(ValueError, match="positive step"):
            await store.activity(T0, T0 + 60, 0)

    # --- search_sessions ----------------------------------------------------------------

    async def test_search_gives_one_row_per_session_and_integration_newest_first(
        self, store: Store
    ) -> None:
        await _record(store, "e1", "L1", ("sn", "sf"))
        await _record(store, "s1", "L1", ("sn",), event_type=SURVEY)
        await _record(store, "e2", "L2", ("sn",))
        rows = await store.search_sessions(SessionFilter(), now=T0)
        assert _where(rows) == [("L2", "sn"), ("L1", "sn"), ("L1", "sf")]
        assert all(r.state == "queued" and r.appliance_id == "a1" for r in rows)
        assert rows[1].key > rows[2].key  # the survey's job stands for L1/sn

    async def test_search_pages_with_before(self, store: Store) -> None:
        for i in range(5):
            await _record(store, f"e{i}", f"L{i}", ("sn",))
        first = await store.search_sessions(SessionFilter(limit=2), now=T0)
        second = await store.search_sessions(SessionFilter(limit=2, before=first[-1].key), now=T0)
        third = await store.search_sessions(SessionFilter(limit=2, before=second[-1].key), now=T0)
        lsids = [r.lsid for r in first + second + third]
        assert lsids == ["L4", "L3", "L2", "L1", "L0"]

    async def test_search_state_is_the_most_active_job_of_the_session(self, store: Store) -> None:
        (done,) = await _record(store, "d", "Ld", ("sn",))
        (dead,) = await _record(store, "x", "Lx", ("sn",))
        (skip,) = await _record(store, "s", "Ls", ("sn",))
        (wait,) = await _record(store, "w", "Lw", ("sn",))
        (run,) = await _record(store, "r", "Lr", ("sn",))
        await _record(store, "q", "Lq", ("sn",))
        await _finish(store, done, Finish(AttemptOutcome.DONE), at=T0 + 1)
        await _finish(store, dead, Finish(AttemptOutcome.DEAD, error="400 bad field"), at=T0 + 2)
        await _finish(
            store, skip, Finish(AttemptOutcome.DONE, error="skipped: unmatched"), at=T0 + 3
        )
        await _finish(
            store, wait, Finish(AttemptOutcome.RETRY, run_after=T0 + 500, error="503"), at=T0 + 4
        )
        claimed = await store.claim("busy", limit=100, lease=600, now=T0 + 5)
        for job in claimed:
            if job.id != run:
                assert await store.finish(
                    job.id, "busy", Finish(AttemptOutcome.RELEASED), started_at=T0, now=T0 + 5
                )
        # A survey of the dead session, done later: the dead letter still shows.
        (survey,) = await _record(store, "xs", "Lx", ("sn",), event_type=SURVEY, at=T0 + 6)
        await _finish(store, survey, Finish(AttemptOutcome.DONE), at=T0 + 7)

        rows = {r.lsid: r for r in await store.search_sessions(SessionFilter(), now=T0 + 10)}
        assert {lsid: r.state for lsid, r in rows.items()} == {
            "Ld": "done",
            "Lx": "dead",
            "Ls": "skipped",
            "Lw": "waiting",
            "Lr": "running",
            "Lq": "queued",
        }
        assert rows["Lx"].last_error == "400 bad field"
        assert rows["Lw"].last_error == "503"
        assert rows["Ls"].last_error is None  # a skip is a note, not an error
        expected: list[tuple[SessionState, str]] = [
            ("done", "Ld"),
            ("dead", "Lx"),
            ("skipped", "Ls"),
            ("waiting", "Lw"),
            ("running", "Lr"),
            ("queued", "Lq"),
        ]
        for state, lsid in expected:
            found = await store.search_sessions(SessionFilter(state=state), now=T0 + 10)
            assert [r.lsid for r in found] == [lsid], state
        # The dead row stands for the dead job, not for the survey done after it.
        [dead_row] = await store.search_sessions(SessionFilter(state="dead"), now=T0 + 10)
        assert dead_row.key == dead

    async def test_search_by_integration_lsid_and_time(self, store: Store) -> None:
        await _record(store, "e1", "L1", ("sn", "sf"), at=T0)
        await _record(store, "e2", "L2", ("sn",), at=T0 + 100)
        await _record(store, "e3", "L3", ("sf",), at=T0 + 200)
        assert _where(await store.search_sessions(SessionFilter(integration="sf"), now=T0)) == [
            ("L3", "sf"),
            ("L1", "sf"),
        ]
        assert _where(await store.search_sessions(SessionFilter(lsid="L1"), now=T0)) == [
            ("L1", "sf"),  # queued after sn's job, in the same event
            ("L1", "sn"),
        ]
        window = SessionFilter(since=T0 + 50, until=T0 + 200)
        assert _where(await store.search_sessions(window, now=T0)) == [("L2", "sn")]
        both = SessionFilter(integration="sn", since=T0 + 50)
        assert _where(await store.search_sessions(both, now=T0)) == [("L2", "sn")]

    async def test_search_by_ticket_id_or_number_gives_the_ticket(self, store: Store) -> None:
        await _record(store, "e1", "L1", ("sn", "sf"))
        await _record(store, "e2", "L2", ("sn",))
        # An effect without the number, recorded first, then the ticket with it.
        report = LedgerKey("a1", "L1", END, "sn", "session_report")
        await store.ledger_put(LedgerEntry(report, "9d3f0c", "note-1", T0 - 1, {}))
        await _ticket(store, "L1", "sn", "9d3f0c", "INC0010001")
        await _ticket(store, "L1", "sf", "500XY", "00001026")
        by_number = await store.search_sessions(SessionFilter(ticket="INC0010001"), now=T0)
        assert _where(by_number) == [("L1", "sn")]
        assert (by_number[0].ticket_id, by_number[0].ticket_number) == ("9d3f0c", "INC0010001")
        by_id = await store.search_sessions(SessionFilter(ticket="500XY"), now=T0)
        assert _where(by_id) == [("L1", "sf")]
        assert await store.search_sessions(SessionFilter(ticket="INC9"), now=T0) == []
        [untouched] = await store.search_sessions(SessionFilter(lsid="L2"), now=T0)
        assert (untouched.ticket_id, untouched.ticket_number) == (None, None)
