"""Tests for the seeded session generator of the simulated appliance."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rsbridge.appliance.report_model import (
    FILE_EVENT_TYPES,
    KNOWN_EVENT_TYPES,
    Actor,
    EventType,
    SupportSession,
)
from rsbridge.errors import ClientScriptError
from rsbridge.sim.appliance.scenarios import DEFAULT_START, SessionGenerator

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CHAT_URL = re.compile(
    r"https://support\.example\.com/session_download\?lsid=l%3D(?P<lsid>[0-9a-f]{32})"
    r"%3Bh%3D[0-9a-f]{40}%3Bt%3Dsd%3Bm%3Dchat&dl_action=chat(?P<view>&view=1)?"
)


@pytest.fixture(scope="module")
def sessions() -> list[SupportSession]:
    return list(SessionGenerator(20241202, include_unknown_events=True).sessions(300))


def _walk(value: Any, path: str = "") -> Any:
    """Yield (path, value) for every str and dict key under a model object."""
    if isinstance(value, str):
        yield path, value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _walk(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            assert IDENTIFIER.fullmatch(key), f"{path}: key {key!r}"
            yield from _walk(item, f"{path}.{key}")


def _check_text(session: SupportSession) -> None:
    for path, text in _walk(session):
        assert text, f"empty string at {path}"
        assert text == text.strip(), f"surrounding whitespace at {path}: {text!r}"


def _check_times(s: SupportSession) -> None:
    assert s.start_time is not None and s.end_time is not None
    times = [s.start_time, *(e.timestamp for e in s.events), s.end_time]
    assert all(t.tzinfo is UTC and t.microsecond == 0 for t in times)
    assert times == sorted(times)
    assert s.events[0].timestamp == s.start_time and s.events[-1].timestamp == s.end_time
    assert s.duration == s.end_time - s.start_time


def _check_people(s: SupportSession, site: str) -> None:
    customers = {c.gsnumber: c for c in s.customers}
    reps = {r.gsnumber: r for r in s.representatives}
    assert len(customers) == len(s.customers) and len(reps) == len(s.representatives)
    assert not customers.keys() & reps.keys()
    for event in s.events:
        for actor in (event.performed_by, event.destination):
            if actor is None:
                continue
            if actor.type == "system":
                assert actor == Actor("system", site, 0)
            elif actor.type == "customer":
                assert actor.gsnumber in customers
            else:
                assert actor.type == "representative"
                assert reps[actor.gsnumber].display_name == actor.name
    assert [r.primary for r in s.representatives].count(True) == 1
    primary = next(r for r in s.representatives if r.primary)
    assert s.primary_rep is not None and primary.session_owner
    assert (s.primary_rep.gsnumber, s.primary_rep.id) == (primary.gsnumber, primary.id)
    assert s.customers[0].primary and not any(c.primary for c in s.customers[1:])
    assert s.primary_customer is not None and s.primary_customer.gsnumber in customers
    assert all(survey.gsnumber in customers for survey in s.customer_surveys)
    assert all(survey.gsnumber in reps for survey in s.rep_surveys)
    assert s.duration is not None
    for rep in s.representatives:
        assert rep.seconds_involved is not None
        assert 0 <= rep.seconds_involved <= s.duration.total_seconds()
    assert {t.name for t in s.teams}


def _check_events(s: SupportSession) -> None:
    assert s.events[0].event_type == EventType.SESSION_START
    assert s.events[-1].event_type == EventType.SESSION_END
    assert s.file_transfer_count == len(s.events_of(EventType.FILE_UPLOAD, EventType.FILE_DOWNLOAD))
    assert s.file_move_count == len(s.events_of(EventType.FILE_MOVED))
    assert s.file_delete_count == len(s.events_of(EventType.FILE_DELETED))
    members = [c.gsnumber for c in s.customers] + [r.gsnumber for r in s.representatives]
    for event_type in (EventType.CONFERENCE_MEMBER_ADDED, EventType.CONFERENCE_MEMBER_DEPARTED):
        destinations = [e.destination for e in s.events_of(event_type)]
        assert Counter(d.gsnumber if d else None for d in destinations) == Counter(members)
    for event in s.events:
        if event.event_type in (EventType.CHAT_MESSAGE, EventType.SESSION_NOTE_ADDED):
            assert event.body
        else:
            assert event.body is None
        if event.event_type in FILE_EVENT_TYPES - {EventType.FILE_MOVED}:
            assert event.filename
        if event.event_type == EventType.SYSTEM_INFORMATION_RETRIEVED:
            assert event.system_information
            for category in event.system_information:
                assert category.rows
                assert all(row.keys() <= category.columns.keys() for row in category.rows)


def test_same_seed_gives_equal_sessions() -> None:
    first = list(SessionGenerator(42).sessions(30))
    assert first == list(SessionGenerator(42).sessions(30))
    assert first != list(SessionGenerator(43).sessions(30))


def test_invariants_hold_for_hundreds_of_sessions(sessions: list[SupportSession]) -> None:
    assert [s.lseq for s in sessions] == list(range(1, len(sessions) + 1))
    assert sessions[0].start_time == DEFAULT_START
    starts = [s.start_time for s in sessions if s.start_time]
    assert len(starts) == len(sessions) and starts == sorted(starts)
    assert len({s.lsid for s in sessions}) == len(sessions)
    for s in sessions:
        assert re.fullmatch(r"[0-9a-f]{32}", s.lsid)
        assert s.ended and s.session_type == "support"
        for url, view in ((s.chat_view_url, True), (s.chat_download_url, False)):
            match = CHAT_URL.fullmatch(url or "")
            assert match and match["lsid"] == s.lsid and bool(match["view"]) == view
        _check_text(s)
        _check_times(s)
        _check_people(s, "Default")
        _check_events(s)


def test_the_series_covers_the_interesting_cases(sessions: list[SupportSession]) -> None:
    events = [e for s in sessions for e in s.events]
    assert len({e.event_type for e in events} & KNOWN_EVENT_TYPES) >= 35
    assert {e.event_type for e in events} - KNOWN_EVENT_TYPES, "no unknown event types"
    bodies = [e.body or "" for e in events]
    assert any("\x1b" in b or "\x07" in b for b in bodies)
    assert any("\n" in b for b in bodies)
    assert any(re.search("[\u3040-\u30ff\u4e00-\u9fff]", b) for b in bodies)
    assert any(re.search("[\u0590-\u06ff]", b) for b in bodies)
    assert any(e.filename and e.filename.startswith("C:\\") for e in events)
    assert any(e.filename and e.filename.startswith("/") for e in events)
    keys = [s.external_key for s in sessions]
    assert None in keys
    for pattern in (r"INC\d{7}", r"CHG\d{7}", r"[0-9a-f]{32}", r"\d{8}"):
        assert any(k and re.fullmatch(pattern, k) for k in keys), pattern
    assert any(s.jump_group and s.jumpoint for s in sessions)
    assert any(s.jump_group is None for s in sessions)
    assert any(len(s.customers) > 1 for s in sessions)
    assert any(r.invited for s in sessions for r in s.representatives)
    assert any(sum(r.session_owner for r in s.representatives) > 1 for s in sessions)
    assert any(c.public_ip and ":" in c.public_ip.ip for s in sessions for c in s.customers)
    assert any(c.private_ip is None or c.os is None for s in sessions for c in s.customers)
    assert any(s.recording for s in sessions) and any(s.command_shell_recordings for s in sessions)
    ratings = [a.value for s in sessions for cs in s.customer_surveys for a in cs.answers]
    assert {"1", "5"} <= set(ratings)
    assert any(rs.answer("task_number") for s in sessions for rs in s.rep_surveys)


def test_unknown_events_only_on_request() -> None:
    for s in SessionGenerator(20241202).sessions(100):
        assert all(e.known for e in s.events)


def test_large_sessions_are_big() -> None:
    small = next(SessionGenerator(1).sessions(1))
    for s in SessionGenerator(1, large=True).sessions(3):
        assert len(s.events_of(EventType.CHAT_MESSAGE)) >= 250
        (info,) = s.events_of(EventType.SYSTEM_INFORMATION_RETRIEVED)
        assert info.system_information is not None
        assert sum(len(c.rows) for c in info.system_information) >= 250
        assert len(s.events) > 5 * len(small.events)


def test_size_parameters_override_defaults() -> None:
    gen = SessionGenerator(3, chat_messages=(7, 7), system_info_rows=(11, 11), jump_ratio=0.0)
    for s in gen.sessions(20):
        assert len(s.events_of(EventType.CHAT_MESSAGE)) == 7
        for info in s.events_of(EventType.SYSTEM_INFORMATION_RETRIEVED):
            assert info.system_information is not None
            processes = next(c for c in info.system_information if c.name == "Processes")
            assert len(processes.rows) == 11


def test_options_shape_urls_site_and_start() -> None:
    start = datetime(2025, 1, 6, 9, 30, 15, 123456, tzinfo=UTC)
    gen = SessionGenerator(5, hostname="rs.corp.test", start=start, site_name="Support Portal")
    s = next(gen.sessions(1))
    assert s.start_time == start.replace(microsecond=0)
    assert s.public_site is not None and s.public_site.name == "Support Portal"
    assert s.chat_view_url and s.chat_view_url.startswith("https://rs.corp.test/session_download?")
    _check_people(s, "Support Portal")
    with pytest.raises(ValueError, match="timezone"):
        SessionGenerator(5, start=datetime(2025, 1, 6))


def test_session_from_key_carries_the_key_and_attributes() -> None:
    gen = SessionGenerator(8)
    info = {"name": "Zoë Dubois", "issue": "VPN"}
    s = gen.session_from_key(
        "INC0010001",
        {"snow_task_id": "a" * 32, "snow_cmdb_ci_id": "b" * 32, "empty": "", "site_code": "P1"},
        customer_info=info,
    )
    assert s.external_key == "INC0010001"
    assert [(a.code_name, a.display_name, a.value) for a in s.custom_attributes] == [
        ("snow_task_id", "ServiceNow Task ID", "a" * 32),
        ("snow_cmdb_ci_id", "ServiceNow CI ID", "b" * 32),
        ("site_code", "Site Code", "P1"),
    ]
    assert s.customers[0].info == info and s.jump_group is None
    assert s.primary_customer is not None and s.primary_customer.name == "Zoë Dubois"
    assert s.lseq == 1 and gen.session().lseq == 2
    bare = gen.session_from_key()
    assert bare.external_key is None and bare.custom_attributes == []


@pytest.mark.parametrize(
    ("key", "custom"),
    [
        ("x" * 1025, {}),
        (None, {"bad name": "x"}),
        (None, {f"field_{i}": "é" * 1000 for i in range(6)}),
    ],
)
def test_session_from_key_enforces_custom_field_limits(
    key: str | None, custom: dict[str, str]
) -> None:
    with pytest.raises(ClientScriptError):
        SessionGenerator(1).session_from_key(key, custom)


def test_sessions_follow_each_other_in_time() -> None:
    a, b = SessionGenerator(4).sessions(2)
    assert a.start_time is not None and b.start_time is not None
    assert timedelta(seconds=30) <= b.start_time - a.start_time <= timedelta(minutes=20)
