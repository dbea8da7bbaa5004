"""The jsonl connector: the shared contract, the line format, and crash recovery."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from rsbridge.appliance.report_model import to_jsonable
from rsbridge.connectors.base import Association, Connector, Ticket
from rsbridge.connectors.jsonl import JsonlConnector, read_deliveries
from rsbridge.errors import ConfigurationError, ConnectorPermanentError, TicketNotFoundError

from .contract import (
    APPLIANCE_ID,
    INTEGRATION,
    ConnectorContract,
    note_delivery,
    sample_session,
    session_delivery,
    survey_delivery,
)

TICKET = Ticket(id="INC0010001")

Factory = Callable[..., JsonlConnector]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Factory]:
    """Build connectors on ``tmp_path/deliveries.jsonl`` (or another path); closes them."""
    made: list[JsonlConnector] = []

    def factory(path: Path | None = None, **settings: object) -> JsonlConnector:
        raw = {"path": str(path or tmp_path / "deliveries.jsonl"), **settings}
        connector = JsonlConnector(JsonlConnector.validate_settings(raw))
        made.append(connector)
        return connector

    yield factory
    for connector in made:
        await connector.aclose()


class TestJsonlContract(ConnectorContract):
    connector_class = JsonlConnector
    unknown_ticket_ref = "  "

    @pytest.fixture
    async def connector(self, make: Factory) -> Connector:
        connector = make()  # ``make`` closes it
        self.path = connector.path
        return connector

    def valid_settings(self) -> dict[str, object]:
        return {"path": "/tmp/rsbridge-contract.jsonl"}

    def effects(self, key: str) -> int:
        return sum(1 for record in read_deliveries(self.path) if record["key"] == key)


def lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data.split(b"\n")[:-1]


# --- the records -------------------------------------------------------------------------


async def test_session_report_line(make: Factory) -> None:
    connector = make()
    delivery = session_delivery("report-1")
    result = await connector.write_session_report(TICKET, delivery)
    assert result.ref == "line 1"
    assert result.detail == {"path": str(connector.path), "line": "1"}
    [record] = read_deliveries(connector.path)
    assert record["kind"] == "session_report"
    assert record["key"] == "report-1"
    assert record["ticket"] == {"id": "INC0010001", "number": None, "url": None}
    assert datetime.fromisoformat(record["at"]).utcoffset() is not None
    assert record["appliance_id"] == APPLIANCE_ID
    assert record["integration"] == INTEGRATION
    assert record["lsid"] == delivery.session.lsid
    assert record["text"] == delivery.report.full.text
    assert record["html"] == delivery.report.full.html
    assert record["parts"] == {
        "chat": {"text": "Chat transcript", "html": "<p>Chat transcript</p>"}
    }
    assert record["session"] == json.loads(json.dumps(to_jsonable(delivery.session)))


async def test_records_say_how_far_their_ticket_is_trusted(make: Factory) -> None:
    connector = make()
    named = Association("custom:ticket_id", trusted=False)
    await connector.write_session_report(TICKET, session_delivery("r", association=named))
    await connector.write_survey(TICKET, survey_delivery("s", association=named))
    await connector.write_session_report(None, session_delivery("u"))
    records = read_deliveries(connector.path)
    assert [r["association"] for r in records] == [
        {"source": "custom:ticket_id", "trusted": False},
        {"source": "custom:ticket_id", "trusted": False},
        {"source": None, "trusted": False},
    ]


async def test_include_session_off(make: Factory) -> None:
    connector = make(include_session=False)
    await connector.write_session_report(TICKET, session_delivery("report-1"))
    [record] = read_deliveries(connector.path)
    assert "session" not in record
    assert record["text"]


async def test_survey_note_and_ticket_lines(make: Factory) -> None:
    connector = make()
    await connector.write_survey(TICKET, survey_delivery("survey-1", "rep"))
    await connector.write_note(TICKET, note_delivery("note-1"))
    ticket = await connector.create_ticket(sample_session(), {"caller": "Ann"}, key="t-1")
    survey, note, created = read_deliveries(connector.path)
    assert survey["kind"] == "survey"
    assert survey["survey"] == {
        "kind": "rep",
        "gsnumber": 7,
        "answers": [
            {"name": "rating", "value": "5"},
            {"name": "comments", "value": "Quick fix"},
        ],
    }
    assert survey["text"].startswith("Rating: 5")
    assert survey["lsid"] == sample_session().lsid
    assert note["kind"] == "note"
    assert (note["text"], note["html"]) == ("A note from rsbridge", "<p>A note from rsbridge</p>")
    assert note["lsid"] is None
    assert created["kind"] == "ticket"
    assert created["ticket"]["id"] == ticket.id == "JSONL-1"
    assert created["fields"] == {"caller": "Ann"}
    assert created["lsid"] == sample_session().lsid


async def test_one_line_per_record_whatever_the_text(make: Factory) -> None:
    connector = make()
    awkward = 'two\nlines\r\n "quoted" \\ \u2028 \u2029 \x00 tab\t é 🙂 </script>'
    await connector.write_note(TICKET, note_delivery("awkward", awkward))
    await connector.write_note(TICKET, note_delivery("plain"))
    assert len(lines(connector.path)) == 2
    assert read_deliveries(connector.path)[0]["text"] == awkward


async def test_every_line_reader_sees_one_record_per_line(make: Factory) -> None:
    # str.splitlines (and JavaScript, and some log shippers) also end a line at U+2028,
    # U+2029 and U+0085, which JSON leaves raw: they must be escaped in the file.
    connector = make()
    separators = "a\u2028b\u2029c\x85d\x1ce\x0bf\x0cg"
    await connector.write_note(TICKET, note_delivery("seps", separators))
    await connector.write_session_report(
        TICKET, session_delivery("report\u2028key", text=separators, html=separators)
    )
    await connector.write_note(TICKET, note_delivery("plain"))
    text = connector.path.read_text(encoding="utf-8")
    for raw in ("\u2028", "\u2029", "\x85"):
        assert raw not in text
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["key"] for r in records] == ["seps", "report\u2028key", "plain"]
    assert records[0]["text"] == separators
    assert records[1]["text"] == records[1]["html"] == separators
    assert records == read_deliveries(connector.path)
    # A new instance indexes the keys (escaped in the file) as they are.
    again = make()
    result = await again.write_note(TICKET, note_delivery("seps", "other text"))
    assert result.ref == "line 1"
    assert len(text.splitlines()) == len(connector.path.read_text(encoding="utf-8").splitlines())


async def test_refs_are_line_numbers(make: Factory) -> None:
    connector = make()
    refs = [(await connector.write_note(TICKET, note_delivery(f"n{i}"))).ref for i in range(3)]
    assert refs == ["line 1", "line 2", "line 3"]


async def test_same_key_for_different_kinds_are_different_lines(make: Factory) -> None:
    # The index is by (kind, key): a key reused across kinds never swallows a delivery.
    connector = make()
    await connector.write_note(TICKET, note_delivery("shared"))
    await connector.write_survey(TICKET, survey_delivery("shared"))
    assert [r["kind"] for r in read_deliveries(connector.path)] == ["note", "survey"]


async def test_file_is_private(make: Factory) -> None:
    connector = make()
    await connector.write_note(TICKET, note_delivery("n"))
    assert connector.path.stat().st_mode & 0o777 == 0o600


async def test_find_ticket_is_virtual(make: Factory) -> None:
    connector = make()
    assert await connector.find_ticket(" 00001026 ") == Ticket(id="00001026")
    with pytest.raises(TicketNotFoundError):
        await connector.find_ticket("")


# --- restarts and the index ----------------------------------------------------------------


async def test_a_new_instance_finds_earlier_keys(make: Factory) -> None:
    first = make()
    written = await first.write_session_report(TICKET, session_delivery("report-1"))
    ticket = await first.create_ticket(sample_session(), {}, key="t-1")

    # As after a crash between the write and the engine's ledger entry.
    second = make()
    assert await second.write_session_report(TICKET, session_delivery("report-1")) == written
    assert await second.create_ticket(sample_session(), {}, key="t-1") == ticket
    assert (await second.create_ticket(sample_session(), {}, key="t-2")).id == "JSONL-2"
    assert len(lines(second.path)) == 3


async def test_ticket_numbers_continue_after_the_highest(make: Factory, tmp_path: Path) -> None:
    path = tmp_path / "deliveries.jsonl"
    record = {"kind": "ticket", "key": "old", "ticket": {"id": "JSONL-41"}}
    path.write_text(json.dumps(record) + "\n")
    connector = make()
    assert (await connector.create_ticket(sample_session(), {}, key="new")).id == "JSONL-42"


async def test_a_replaced_file_is_read_again(
    make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    connector = make()
    await connector.write_note(TICKET, note_delivery("n1"))
    connector.path.rename(connector.path.with_suffix(".1"))  # rotated away
    with caplog.at_level(logging.WARNING, logger="rsbridge.connectors.jsonl"):
        result = await connector.write_note(TICKET, note_delivery("n1"))
    assert result.ref == "line 1"
    assert [r["key"] for r in read_deliveries(connector.path)] == ["n1"]


async def test_a_changed_file_is_read_again(make: Factory) -> None:
    first, second = make(), make()
    await first.write_note(TICKET, note_delivery("n1"))
    await second.write_note(TICKET, note_delivery("n2"))
    # ``first`` sees the size change and re-reads: n2 is known, n3 gets line 3.
    assert (await first.write_note(TICKET, note_delivery("n2"))).ref == "line 2"
    assert (await first.write_note(TICKET, note_delivery("n3"))).ref == "line 3"


async def test_two_connectors_sharing_a_file_keep_correct_line_numbers(make: Factory) -> None:
    # Two integrations configured with one path, writing at the same time.
    first, second = make(), make()
    results = await asyncio.gather(
        *(
            (first if i % 2 else second).write_note(TICKET, note_delivery(f"n{i}"))
            for i in range(20)
        )
    )
    keys = [json.loads(line)["key"] for line in lines(first.path)]
    assert sorted(keys) == sorted(f"n{i}" for i in range(20))
    for i, result in enumerate(results):
        assert keys[int(result.ref.removeprefix("line ")) - 1] == f"n{i}"
    # Each sees the other's keys.
    assert await first.write_note(TICKET, note_delivery("n0")) == results[0]


# --- crash recovery -----------------------------------------------------------------------


async def test_a_torn_last_line_is_cut_off(make: Factory, caplog: pytest.LogCaptureFixture) -> None:
    first = make()
    await first.write_note(TICKET, note_delivery("n1"))
    await first.write_note(TICKET, note_delivery("n2"))
    intact = first.path.read_bytes()
    with first.path.open("ab") as f:  # killed in the middle of writing n3
        f.write(b'{"kind":"note","key":"n3","text":"half a li')

    assert [r["key"] for r in read_deliveries(first.path)] == ["n1", "n2"]
    assert first.path.read_bytes().startswith(intact)  # reading changes nothing

    second = make()
    with caplog.at_level(logging.WARNING, logger="rsbridge.connectors.jsonl"):
        result = await second.write_note(TICKET, note_delivery("n3"))
    assert result.ref == "line 3"
    assert "partial last line" in caplog.text
    assert second.path.read_bytes().startswith(intact)
    assert [json.loads(line)["key"] for line in lines(second.path)] == ["n1", "n2", "n3"]


async def test_a_whole_last_line_without_newline_is_kept(make: Factory, tmp_path: Path) -> None:
    path = tmp_path / "deliveries.jsonl"
    kept = {"kind": "note", "key": "kept", "text": "edited by hand"}
    path.write_text(json.dumps({"kind": "note", "key": "n0"}) + "\n" + json.dumps(kept))
    connector = make()
    assert (await connector.write_note(TICKET, note_delivery("kept"))).ref == "line 2"
    assert (await connector.write_note(TICKET, note_delivery("n3"))).ref == "line 3"
    assert [json.loads(line)["key"] for line in lines(path)] == ["n0", "kept", "n3"]


async def test_a_corrupt_line_inside_the_file_is_a_permanent_error(
    make: Factory, tmp_path: Path
) -> None:
    path = tmp_path / "deliveries.jsonl"
    path.write_text('{"kind": "note", "key": "n1"}\n\nnot json\n{"kind": "note", "key": "n4"}\n')
    connector = make()
    with pytest.raises(ConnectorPermanentError, match=r"line 3 is not valid JSON"):
        await connector.write_note(TICKET, note_delivery("n5"))
    with pytest.raises(ValueError, match="line 3"):
        read_deliveries(path)


@pytest.mark.parametrize(("fsync", "expected"), [(True, [2, 1]), (False, [0, 0])])
async def test_fsync_setting(
    make: Factory, monkeypatch: pytest.MonkeyPatch, fsync: bool, expected: list[int]
) -> None:
    calls: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: Any) -> None:
        calls.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    connector = make(fsync=fsync)
    counts = []
    for key in ("n1", "n2"):  # the first write creates the file: its directory too
        before = len(calls)
        await connector.write_note(TICKET, note_delivery(key))
        counts.append(len(calls) - before)
    assert counts == expected


# --- check and failures -------------------------------------------------------------------


async def test_check_reports_the_file(make: Factory, tmp_path: Path) -> None:
    connector = make()
    assert "will be created" in (await connector.check()).summary
    assert os.listdir(tmp_path) == []  # check creates nothing
    await connector.write_note(TICKET, note_delivery("n1"))
    assert "writable" in (await connector.check()).summary


async def test_check_fails_without_the_directory(make: Factory, tmp_path: Path) -> None:
    connector = make(tmp_path / "missing" / "deliveries.jsonl")
    with pytest.raises(ConnectorPermanentError, match=r"missing.* does not exist"):
        await connector.check()
    assert os.listdir(tmp_path) == []


async def test_check_fails_on_a_directory(make: Factory, tmp_path: Path) -> None:
    (tmp_path / "deliveries.jsonl").mkdir()
    with pytest.raises(ConnectorPermanentError, match="not a regular file"):
        await make().check()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
async def test_check_fails_on_a_read_only_directory(make: Factory, tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir(mode=0o500)
    try:
        with pytest.raises(ConnectorPermanentError, match="not writable"):
            await make(directory / "deliveries.jsonl").check()
    finally:
        directory.chmod(0o700)


async def test_a_write_into_a_vanished_directory_is_permanent(
    make: Factory, tmp_path: Path
) -> None:
    directory = tmp_path / "gone"
    directory.mkdir()
    connector = make(directory / "deliveries.jsonl")
    directory.rmdir()
    with pytest.raises(ConnectorPermanentError, match=r"cannot append to .*gone"):
        await connector.write_note(TICKET, note_delivery("n1"))


def test_an_empty_path_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="path"):
        JsonlConnector.validate_settings({"path": " "})


def test_read_deliveries_of_a_missing_file(tmp_path: Path) -> None:
    assert read_deliveries(tmp_path / "none.jsonl") == []
