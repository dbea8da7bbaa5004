"""``rsbridge report parse --json``: orjson output with the structure of ``to_jsonable``.

The reference is what the command wrote before it moved to orjson: the standard library's
``json.dumps(to_jsonable(session), ensure_ascii=False, indent=2)`` per session.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from typer.testing import CliRunner

from rsbridge.appliance import report_model as m
from rsbridge.appliance.report_json import ENDPOINT_HOLDERS, session_json
from rsbridge.appliance.report_parser import iter_sessions
from rsbridge.cli import app
from rsbridge.sim.appliance.report_xml import session_list, session_list_chunks
from rsbridge.sim.appliance.scenarios import SessionGenerator
from tests import strategies


def stdlib_json(session: m.SupportSession) -> bytes:
    return json.dumps(m.to_jsonable(session), ensure_ascii=False, indent=2).encode()


def run_json(path: Path) -> bytes:
    result = CliRunner().invoke(app, ["report", "parse", "--json", str(path)])
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def write_report(path: Path, sessions: Iterator[m.SupportSession]) -> Path:
    with path.open("wb") as fh:
        for chunk in session_list_chunks(sessions):
            fh.write(chunk)
    return path


def test_realistic_report_is_the_same_json_as_before(tmp_path: Path) -> None:
    # Benchmark-sized sessions, as benchmarks/parse.py builds them (hundreds of chat
    # messages and system-information rows each, customers and reps with endpoints).
    generator = SessionGenerator(7, large=True)
    path = write_report(tmp_path / "r.xml", (generator.session() for _ in range(6)))
    out = run_json(path)
    parsed = list(iter_sessions(path))
    assert len(parsed) == 6 and any(c.public_ip for s in parsed for c in s.customers)
    assert json.loads(out) == [m.to_jsonable(s) for s in parsed]
    # Byte for byte what the standard library's encoder wrote, too.
    assert out == b"[\n" + b",\n".join(stdlib_json(s) for s in parsed) + b"\n]\n"


def test_empty_report_is_an_empty_array(tmp_path: Path) -> None:
    path = tmp_path / "r.xml"
    path.write_bytes(session_list([]))
    assert json.loads(run_json(path)) == []


def hostile_session() -> m.SupportSession:
    # XML text carries no C0 control but tab, newline and CR; chat bodies carry any
    # character (as base64 in encoded_body).
    nasty = '\t\r\n\x7f\x85"\\</script>\u2028\u2029\ufeff😀𝄞'
    controls = "".join(chr(c) for c in range(32)) + nasty
    huge = ("x" * 1000 + "😀\n") * 3000  # about 3 MB of chat in one message
    customer = m.Customer(
        gsnumber=1,
        username=nasty,
        public_ip=m.Endpoint("2001:db8::1", 443),
        private_ip=m.Endpoint("10.0.0.4"),
        info={"name": nasty, "😀": "𝄞"},
    )
    rep = m.Representative(
        gsnumber=2, display_name="Ren\u0301e", public_ip=m.Endpoint("1.2.3.4", 5)
    )
    when = datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    return m.SupportSession(
        lsid="f" * 32,
        start_time=when,
        end_time=when + timedelta(seconds=75),
        duration=timedelta(seconds=75),
        customers=[customer],
        representatives=[rep],
        events=[
            m.SessionEvent(when, m.EventType.CHAT_MESSAGE, body=controls),
            m.SessionEvent(when, m.EventType.CHAT_MESSAGE, body=huge),
            m.SessionEvent(when, "Not A Known Type", data={nasty: nasty}),
        ],
        extra={"unknown_child": nasty},
    )


def test_hostile_values_survive_the_cli(tmp_path: Path) -> None:
    original = hostile_session()
    path = write_report(tmp_path / "r.xml", iter([original]))
    out = run_json(path)
    [parsed] = list(iter_sessions(path))
    [data] = json.loads(out)
    assert data == m.to_jsonable(parsed)
    # Control characters travel as base64 in the report and come out escaped, not raw.
    assert data["events"][0]["body"] == original.events[0].body
    assert data["events"][1]["body"] == original.events[1].body
    assert data["customers"][0]["public_ip"] == "[2001:db8::1]:443"
    assert not any(byte < 0x20 and byte != 0x0A for byte in out)
    assert "😀𝄞".encode() in out  # non-BMP text stays UTF-8, unescaped


def test_an_integer_past_64_bits_falls_back_to_the_standard_library(tmp_path: Path) -> None:
    # A report can hold one (a file size, a count) and the parser keeps it exact; orjson
    # refuses it, so that session is written by the standard library, as before.
    generator = SessionGenerator(11)
    sessions = [generator.session() for _ in range(3)]
    sessions[1].file_transfer_count = 2**70
    sessions[1].customers[0].username = "Zoë 😀"
    path = write_report(tmp_path / "r.xml", iter(sessions))
    parsed = list(iter_sessions(path))
    assert parsed[1].file_transfer_count == 2**70
    out = run_json(path)
    assert out == b"[\n" + b",\n".join(stdlib_json(s) for s in parsed) + b"\n]\n"


def test_a_lone_surrogate_is_escaped() -> None:
    # Not from the parser (XML and its UTF-8 bodies carry none), from a model made by code.
    session = m.SupportSession(lsid="a" * 32, external_key="lone \ud800 surrogate, Zoë")
    out = session_json(session)
    assert json.loads(out) == m.to_jsonable(session)
    assert out.isascii() and b"\\ud800" in out


@settings(max_examples=150, deadline=None)
@given(strategies.session)
def test_any_session_has_the_same_json_as_to_jsonable(session: m.SupportSession) -> None:
    assert session_json(session) == stdlib_json(session)


def _endpoint_paths(cls: type, seen: frozenset[type] = frozenset()) -> set[str]:
    """Dotted field paths under ``cls`` whose type mentions :class:`Endpoint`."""
    found: set[str] = set()
    for name, hint in typing.get_type_hints(cls).items():
        for arg in _flatten(hint):
            if arg is m.Endpoint:
                found.add(name)
            elif hasattr(arg, "__dataclass_fields__") and arg not in seen | {cls}:
                found |= {f"{name}.{p}" for p in _endpoint_paths(arg, seen | {cls})}
    return found


def _flatten(hint: Any) -> Iterator[Any]:
    yield hint
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is not None:
        for arg in typing.get_args(hint):
            yield from _flatten(arg)


def test_endpoints_occur_only_where_the_serialiser_looks() -> None:
    # orjson would write an Endpoint anywhere else as an object instead of "ip:port".
    lists = {"customers": m.Customer, "representatives": m.Representative}
    assert set(ENDPOINT_HOLDERS) == set(lists.values())
    assert _endpoint_paths(m.SupportSession) == {
        f"{field}.{name}" for field, cls in lists.items() for name in ENDPOINT_HOLDERS[cls]
    }
    hints = typing.get_type_hints(m.SupportSession)
    assert hints["customers"] == list[m.Customer]
    assert hints["representatives"] == list[m.Representative]


def test_a_report_failing_half_way_leaves_no_complete_looking_array(tmp_path: Path) -> None:
    generator = SessionGenerator(3)
    whole = session_list([generator.session() for _ in range(3)])
    path = tmp_path / "cut.xml"
    path.write_bytes(whole[: len(whole) * 2 // 3])  # the connection dropped mid-report
    result = CliRunner().invoke(app, ["report", "parse", "--json", str(path)])
    assert result.exit_code == 1
    assert str(path) in result.stderr
    assert result.stdout_bytes.startswith(b"[\n{")
    assert not result.stdout_bytes.rstrip().endswith(b"]")
