"""ReportCache: complete reports only, served only to jobs that became runnable before the
report was asked for, bounded in number and age."""

from __future__ import annotations

import dataclasses

from rsbridge.engine.report_cache import ReportCache
from rsbridge.sim.appliance.scenarios import SessionGenerator


def test_a_report_serves_only_jobs_runnable_before_it_was_asked_for() -> None:
    cache = ReportCache()
    session = SessionGenerator(1).session()
    cache.put("default", session, asked_at=100.0)
    assert cache.get("default", session.lsid, asked_since=99.0, now=101.0) is not None
    assert cache.get("default", session.lsid, asked_since=100.0, now=101.0) is not None
    # A job that became runnable later (it waited for something the report lacked).
    assert cache.get("default", session.lsid, asked_since=100.5, now=101.0) is None
    assert cache.get("other", session.lsid, asked_since=0.0, now=101.0) is None
    assert cache.hits == 2


def test_incomplete_reports_are_not_kept_and_newer_answers_win() -> None:
    cache = ReportCache()
    session = SessionGenerator(2).session()
    cache.put("default", dataclasses.replace(session, end_time=None), asked_at=100.0)
    assert len(cache) == 0
    cache.put("default", session, asked_at=200.0)
    cache.put("default", session, asked_at=150.0)  # an older answer arriving late
    found = cache.get("default", session.lsid, asked_since=0.0, now=201.0)
    assert found is not None and found.asked_at == 200.0


def test_the_cache_is_bounded_in_entries_and_age() -> None:
    cache = ReportCache(entries=3, max_age=60.0)
    sessions = list(SessionGenerator(3).sessions(5))
    for n, session in enumerate(sessions):
        cache.put("default", session, asked_at=100.0 + n)
    assert len(cache) == 3
    assert cache.get("default", sessions[0].lsid, asked_since=0.0, now=110.0) is None
    assert cache.get("default", sessions[4].lsid, asked_since=0.0, now=110.0) is not None
    assert cache.get("default", sessions[4].lsid, asked_since=0.0, now=200.0) is None
    assert len(cache) == 2


def test_a_margin_keeps_a_report_asked_for_just_after_from_standing_in() -> None:
    # The job's time may come from another node's clock: a report asked for within the
    # margin after it is not trusted to hold what the job's event announced.
    cache = ReportCache(margin=1.0)
    session = SessionGenerator(1).session()
    cache.put("default", session, asked_at=100.0)
    assert cache.get("default", session.lsid, asked_since=99.5, now=101.0) is None
    assert cache.get("default", session.lsid, asked_since=99.0, now=101.0) is not None
