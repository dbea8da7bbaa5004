"""The fast paths outside the renderer (rsbridge.fastpaths): the same results as the old
ones, which the switch brings back."""

from __future__ import annotations

import dataclasses
import json
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from rsbridge import fastpaths
from rsbridge.appliance import report_model
from rsbridge.appliance.report_json import WrittenSession, compact_json, session_data
from rsbridge.appliance.report_model import Endpoint, SessionEvent, SupportSession, to_jsonable
from rsbridge.connectors.base import RenderedPart, RenderedReport
from rsbridge.connectors.jsonl import session_report_record
from rsbridge.engine.render import Renderer
from rsbridge.sim.appliance.scenarios import SessionGenerator
from tests import strategies
from tests.connectors.contract import session_delivery


def _both(obj: Any) -> tuple[str, str]:
    fast = json.dumps(to_jsonable(obj), ensure_ascii=False)
    with fastpaths.turned_off():
        old = json.dumps(to_jsonable(obj), ensure_ascii=False)
    return fast, old


def test_to_jsonable_gives_the_same_json_on_both_paths() -> None:
    generator = SessionGenerator(seed=3, include_unknown_events=True, system_info_rows=(1, 5))
    sessions = list(generator.sessions(20))
    fast, old = _both(sessions)
    assert fast == old
    # Every kind of value a session holds was converted: times, durations, endpoints.
    first = json.loads(fast)[0]
    assert isinstance(first["start_time"], str) and isinstance(first["duration"], float)
    assert any(isinstance(c["public_ip"], str) for s in json.loads(fast) for c in s["customers"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session=strategies.session)
def test_any_session_converts_the_same(session: SupportSession) -> None:
    fast, old = _both(session)
    assert fast == old


def _record_both_ways(session: SupportSession) -> tuple[Any, Any]:
    """A session report record as the webhook's fast path and its old path write it."""
    delivery = session_delivery("k", session=session)
    fast = compact_json(session_report_record(None, delivery, include_session=True, native=True))
    old = json.dumps(session_report_record(None, delivery, include_session=True))
    return json.loads(fast), json.loads(old)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session=strategies.session)
def test_any_session_record_is_the_same_json_from_compact_json(session: SupportSession) -> None:
    fast, old = _record_both_ways(session)
    fast.pop("at"), old.pop("at")
    assert fast == old


def test_a_rendering_carries_the_imported_sessions_json_when_asked() -> None:
    session = next(iter(SessionGenerator(seed=4).sessions(1)))
    renderer = Renderer(import_events=("chat message",))
    assert renderer.render(session).session_json is None
    written = renderer.render(session, frozenset({"chat.txt"}), session_json=True).session_json
    imported = renderer.imported_session(session)
    assert 0 < len(imported.events) < len(session.events)
    assert written == compact_json(session_data(imported))
    assert json.loads(written or b"") == json.loads(json.dumps(to_jsonable(imported)))
    # Text with a lone surrogate cannot be UTF-8: none written, the writer meets it itself.
    broken = dataclasses.replace(session, external_key="\ud800")
    assert renderer.render(broken, session_json=True).session_json is None


def test_a_session_json_written_ahead_takes_the_standard_librarys_path_too() -> None:
    # orjson refuses the record (an integer past 64 bits beside the session): the
    # standard library writes it, the session's written JSON as its data.
    session = next(iter(SessionGenerator(seed=4).sessions(1)))
    ahead = {"n": 2**70, "session": WrittenSession(compact_json(session_data(session)))}
    plain = {"n": 2**70, "session": session_data(session)}
    assert compact_json(ahead) == compact_json(plain)
    assert json.loads(compact_json(ahead))["session"]["lsid"] == session.lsid


class _Stamp(datetime):
    """A datetime subclass: not the exact type the fast path dispatches on."""


class _Items(list[Any]):
    pass


@dataclasses.dataclass
class _Other:
    when: datetime
    where: Endpoint
    took: timedelta
    items: tuple[Any, ...]


def test_values_the_fast_path_does_not_know_take_the_general_one() -> None:
    stamp = _Stamp(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    value = {
        1: _Items([stamp, Endpoint("::1", 8443)]),
        "other": _Other(stamp, Endpoint("10.0.0.1"), timedelta(seconds=90), (None, True, 1.5)),
        "event": SessionEvent(stamp, "Chat Message", body="hi"),
        "type": SessionEvent,
    }
    converted = to_jsonable(value)
    with fastpaths.turned_off():
        assert converted == to_jsonable(value)
    assert converted["1"] == ["2026-01-02T03:04:05+00:00", "[::1]:8443"]
    assert converted["other"] == {
        "when": "2026-01-02T03:04:05+00:00",
        "where": "10.0.0.1",
        "took": 90.0,
        "items": [None, True, 1.5],
    }
    assert converted["type"] is SessionEvent


def test_the_switch_turns_the_fast_paths_off_and_back_on() -> None:
    assert fastpaths.enabled()
    with fastpaths.turned_off():
        assert not fastpaths.enabled()
        assert Renderer().fast_paths is False
    assert fastpaths.enabled()
    assert Renderer().fast_paths is True
    # The fast converter is what runs when the switch is on.
    report_model._FIELD_NAMES.pop(SessionEvent, None)
    to_jsonable(SessionEvent(datetime(2026, 1, 1, tzinfo=UTC), "x"))
    assert SessionEvent in report_model._FIELD_NAMES


def test_every_report_model_class_pickles_as_its_class_and_field_values() -> None:
    """Sessions go to render processes as pickles (rsbridge.engine.render_pool), and
    their renderings come back so."""
    models = [
        cls
        for cls in vars(report_model).values()
        if isinstance(cls, type) and dataclasses.is_dataclass(cls)
    ]
    assert len(models) >= 19
    for cls in [*models, RenderedPart, RenderedReport]:
        assert cls.__reduce__.__name__ == "reduce", cls
    event = SessionEvent(datetime(2026, 1, 1, tzinfo=UTC), "x", body="hi")
    values = tuple(getattr(event, f.name) for f in dataclasses.fields(SessionEvent))
    assert event.__reduce__() == (SessionEvent, values)


def test_renderings_pickle_equal() -> None:
    rendered = Renderer().render(next(iter(SessionGenerator(seed=2).sessions(1))))
    copy = pickle.loads(pickle.dumps(rendered, protocol=pickle.HIGHEST_PROTOCOL))  # noqa: S301
    assert copy == rendered
    assert type(copy.full) is RenderedPart


def test_a_class_that_cannot_be_rebuilt_from_its_fields_is_refused() -> None:
    @dataclasses.dataclass(slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            self.value += 1

    @dataclasses.dataclass(slots=True)
    class Derived:
        value: int
        twice: int = dataclasses.field(init=False, default=0)

    for cls in (Checked, Derived):
        with pytest.raises(TypeError, match="cannot be pickled by calling it"):
            report_model.pickled_by_field_values(cls)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session=strategies.session)
def test_a_session_pickles_and_unpickles_equal(session: SupportSession) -> None:
    copy = pickle.loads(pickle.dumps(session, protocol=pickle.HIGHEST_PROTOCOL))  # noqa: S301
    assert copy == session
    assert [type(e) for e in copy.events] == [type(e) for e in session.events]


def test_generated_sessions_pickle_equal_with_frozen_parts() -> None:
    generator = SessionGenerator(seed=4, include_unknown_events=True, system_info_rows=(1, 5))
    for session in generator.sessions(20):
        copy = pickle.loads(pickle.dumps(session))  # noqa: S301 (our own pickle)
        assert copy == session
        assert all(type(c.public_ip) is Endpoint for c in copy.customers if c.public_ip)
