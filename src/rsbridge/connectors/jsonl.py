"""The ``jsonl`` connector: every delivery appended as one JSON object per line to a file.

It needs no ticketing system, so it serves for trying rsbridge out, for the demo, as
an audit trail next to a real connector, and as a hand-off to tools that tail a file.

Each write appends one line (see docs/connectors.md for the record shape)::

    {"kind": "session_report", "key": "...", "at": "2024-05-01T10:00:00.000+00:00",
     "ticket": {"id": "INC0010001", "number": null, "url": null}, "lsid": "...",
     "text": "...", "html": "...", "parts": {...}, "session": {...}}

Upserts on an append-only file: the connector indexes the (kind, key) pairs already
in the file, scanning it once on first use, and a write whose pair is there returns
the earlier :class:`~rsbridge.connectors.base.WriteResult` without appending. The
index follows changes behind the connector's back (it compares the file's device, inode
and size before each write): lines appended by another connector of the process (two
integrations with one path) are read, a replaced or truncated file is read again. One
file must have one writer process, though: two processes appending to the same file
do not see each other's keys.

Crash safety: a line goes out in one ``write()`` of the whole line and its newline on
a descriptor opened with ``O_APPEND``, then ``fsync`` (setting ``fsync``). A process
killed mid-write can leave a partial last line without its newline; the next load
cuts it off (with a warning) so the file stays valid JSON Lines, and the engine's
retry then writes the record again whole.

The record builders (:func:`session_report_record` and the others) are shared with
the webhook connector, so that a line of the file and a webhook body are the same
JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx

from rsbridge.appliance.report_json import WrittenSession, session_data
from rsbridge.appliance.report_model import SupportSession, to_jsonable
from rsbridge.connectors.base import (
    Association,
    CheckResult,
    Connector,
    ConnectorSettings,
    NoteDelivery,
    SessionDelivery,
    Setting,
    SurveyDelivery,
    Ticket,
    WriteResult,
    virtual_ticket,
)
from rsbridge.errors import (
    ConfigurationError,
    ConnectorError,
    ConnectorPermanentError,
    ConnectorRetryableError,
)

__all__ = [
    "JsonlConnector",
    "note_record",
    "read_deliveries",
    "session_report_record",
    "survey_record",
    "ticket_jsonable",
    "ticket_record",
]

log = logging.getLogger(__name__)

_TICKET_ID = re.compile(r"JSONL-(\d+)")
# Errors that retrying cannot cure: the operator has to fix the path or permissions.
_PERMANENT_OS_ERRORS = (PermissionError, FileNotFoundError, IsADirectoryError, NotADirectoryError)


# --- the record shape, shared with the webhook connector -------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def ticket_jsonable(ticket: Ticket) -> dict[str, str | None]:
    """A ticket as JSON: ``{"id", "number", "url"}``."""
    return {"id": ticket.id, "number": ticket.number, "url": ticket.url}


def _record(kind: str, key: str, ticket: Ticket | None) -> dict[str, Any]:
    # Every record has these keys, null when the kind has no value for them, so that
    # consumers can read all kinds the same way.
    return {
        "kind": kind,
        "key": key,
        "at": _now(),
        "ticket": None if ticket is None else ticket_jsonable(ticket),
        "appliance_id": None,
        "integration": None,
        "lsid": None,
        "text": None,
        "html": None,
    }


def association_jsonable(association: Association) -> dict[str, Any]:
    """How the ticket was chosen and whether it is trusted (docs/security.md): a reader of
    the file (or a webhook receiver) can tell a customer-named ticket from a trusted one."""
    return {"source": association.source or None, "trusted": association.trusted}


def session_report_record(
    ticket: Ticket | None,
    delivery: SessionDelivery,
    *,
    include_session: bool,
    native: bool = False,
) -> dict[str, Any]:
    """The record of a session report: the rendered report, its parts, the session.

    ``native``: the session as :func:`~rsbridge.appliance.report_json.session_data`, for
    :func:`~rsbridge.appliance.report_json.compact_json` (the same JSON, without first
    converting every value), instead of :func:`to_jsonable`'s data; as its JSON when the
    rendering brought that (``delivery.report.session_json``).
    """
    record = _record("session_report", delivery.key, ticket)
    record.update(
        appliance_id=delivery.appliance_id,
        integration=delivery.integration,
        lsid=delivery.session.lsid,
        text=delivery.report.full.text,
        html=delivery.report.full.html,
        parts={
            name: {"text": part.text, "html": part.html}
            for name, part in delivery.report.parts.items()
        },
        association=association_jsonable(delivery.association),
    )
    if include_session:
        session = delivery.session
        if not native:
            record["session"] = to_jsonable(session)
        elif delivery.report.session_json is not None:
            record["session"] = WrittenSession(delivery.report.session_json)
        else:
            record["session"] = session_data(session)
    return record


def survey_record(ticket: Ticket | None, delivery: SurveyDelivery) -> dict[str, Any]:
    """The record of an exit survey: ``survey`` holds its kind, gsnumber and answers."""
    record = _record("survey", delivery.key, ticket)
    record.update(
        appliance_id=delivery.appliance_id,
        integration=delivery.integration,
        lsid=delivery.session.lsid,
        text=delivery.rendered.text,
        html=delivery.rendered.html,
        survey={"kind": delivery.kind, **to_jsonable(delivery.survey)},
        association=association_jsonable(delivery.association),
    )
    return record


def note_record(ticket: Ticket, note: NoteDelivery) -> dict[str, Any]:
    """The record of a note (``html`` is null for a text-only note)."""
    record = _record("note", note.key, ticket)
    record.update(text=note.text, html=note.html)
    return record


def ticket_record(
    session: SupportSession, fields: Mapping[str, str], *, key: str, ticket: Ticket | None
) -> dict[str, Any]:
    """The record of a ticket creation: the session's lsid and the requested fields."""
    record = _record("ticket", key, ticket)
    record.update(lsid=session.lsid, fields=dict(fields))
    return record


# Line ends that JSON leaves raw but some line readers split on (Python's str.splitlines,
# JavaScript, log shippers): escaped, so that every reader sees one record per line. They
# can only occur inside JSON strings, where the \uXXXX form means the same character.
_LINE_BREAKS_JSON_KEEPS = str.maketrans(
    {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}
)


def _dumps(record: Mapping[str, Any]) -> bytes:
    # ensure_ascii=False keeps the file readable; JSON escapes every control character
    # below U+0020 and the translation the other line breaks, so the only line break in
    # the line is its own newline.
    text = json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.translate(_LINE_BREAKS_JSON_KEEPS).encode("utf-8") + b"\n"


# --- reading ---------------------------------------------------------------------------


def read_deliveries(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record in the JSON Lines file at ``path``, in file order.

    Blank lines and a partial last line (an interrupted write) are skipped; the file is
    not changed. A missing file has no records.

    Raises:
        ValueError: a complete line is not a JSON object.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    records: list[dict[str, Any]] = []
    for number, raw in enumerate(lines[:-1], start=1):  # lines[-1]: after the last newline
        if raw.strip():
            records.append(_parse_line(raw, path, number))
    tail = lines[-1]
    if tail.strip():
        # A torn write is skipped; the connector cuts it off on its next load.
        with contextlib.suppress(ValueError):
            records.append(_parse_line(tail, path, len(lines)))
    return records


def _parse_line(raw: bytes, path: object, number: int) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} line {number} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} line {number} is not a JSON object")
    return value


# --- the index -------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    line: int
    ticket_id: str | None = None


@dataclass(slots=True)
class _Index:
    """What the file holds, by (kind, key); ``identity`` says which file state it reflects."""

    entries: dict[tuple[str, str], _Entry] = field(default_factory=dict)
    lines: int = 0
    last_ticket: int = 0
    identity: tuple[int, int, int] | None = None

    def add(self, record: Mapping[str, Any], line: int) -> _Entry | None:
        kind, key = record.get("kind"), record.get("key")
        if not (isinstance(kind, str) and isinstance(key, str)):
            return None
        ticket_id = None
        if kind == "ticket" and isinstance(record.get("ticket"), dict):
            ticket_id = str(record["ticket"].get("id"))
            match = _TICKET_ID.fullmatch(ticket_id)
            if match:
                self.last_ticket = max(self.last_ticket, int(match.group(1)))
        # The first line with a pair wins, as it is the one an earlier write returned.
        return self.entries.setdefault((kind, key), _Entry(line, ticket_id))


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size)


def _grew(before: tuple[int, int, int], now: tuple[int, int, int]) -> bool:
    """Whether ``now`` is the same file as ``before``, only longer."""
    return before[:2] == now[:2] and now[2] > before[2]


# One lock per file for every connector of the process, so that two integrations
# configured with the same path never interleave their index checks and appends.
_FILE_LOCKS: dict[str, threading.Lock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_lock(path: Path) -> threading.Lock:
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(os.path.realpath(path), threading.Lock())


def _os_error(path: Path, action: str, exc: OSError) -> ConnectorError:
    message = f"jsonl: cannot {action} {path}: {exc.strerror or exc}"
    if isinstance(exc, _PERMANENT_OS_ERRORS):
        return ConnectorPermanentError(message)
    return ConnectorRetryableError(message)  # ENOSPC, EIO, ...: may pass


# --- the connector ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Options:
    path: Path
    fsync: bool
    include_session: bool


def _options(config: ConnectorSettings) -> _Options:
    values = config.model_dump()
    raw_path = values.get("path")
    if not isinstance(raw_path, str) or not raw_path.strip():
        raise ConfigurationError("connector settings (jsonl): path: must not be empty")
    fsync, include_session = values.get("fsync"), values.get("include_session")
    return _Options(
        path=Path(raw_path).expanduser(),
        fsync=True if fsync is None else bool(fsync),
        include_session=True if include_session is None else bool(include_session),
    )


class JsonlConnector(Connector):
    """Appends each delivery as a JSON line to a file; tickets are virtual."""

    name: ClassVar[str] = "jsonl"
    title: ClassVar[str] = "JSON Lines file"
    settings: ClassVar[tuple[Setting, ...]] = (
        Setting(
            "path",
            "path",
            required=True,
            help="The file to append to; it is created (mode 0600) on the first write. "
            "Its directory must exist.",
        ),
        Setting(
            "fsync",
            "bool",
            default=True,
            help="fsync the file after each line, so that a written delivery survives a "
            "power loss. Turn off only for throwaway files.",
        ),
        Setting(
            "include_session",
            "bool",
            default=True,
            help="Include the whole session model as JSON (`session`) in session report "
            "lines, not only the rendered text and HTML.",
        ),
    )

    def __init__(self, config: ConnectorSettings, *, http: httpx.AsyncClient | None = None):
        super().__init__(config, http=http)
        self._options = _options(config)
        self._index: _Index | None = None
        # The asyncio lock keeps waiting writers off the thread pool; the file lock keeps
        # file and index consistent even when a cancelled caller leaves its thread running,
        # and across connectors of this process that share the file.
        self._lock = asyncio.Lock()
        self._file_lock = _file_lock(self._options.path)

    @classmethod
    def validate_settings(
        cls, raw: Mapping[str, object], *, where: str = "connector settings"
    ) -> ConnectorSettings:
        """Validate ``raw``; the path must also be non-empty."""
        config = super().validate_settings(raw, where=where)
        _options(config)
        return config

    @property
    def path(self) -> Path:
        """The file this connector appends to."""
        return self._options.path

    def __repr__(self) -> str:
        return f"JsonlConnector(path={str(self.path)!r})"

    # --- the contract ------------------------------------------------------------------

    async def check(self) -> CheckResult:
        """The file's directory exists and the file can be written (nothing is created)."""
        return await asyncio.to_thread(self._check)

    def _check(self) -> CheckResult:
        path = self.path
        directory = path.parent
        if not directory.is_dir():
            raise ConnectorPermanentError(f"jsonl: directory {directory} of {path} does not exist")
        if path.exists():
            if not path.is_file():
                raise ConnectorPermanentError(f"jsonl: {path} exists and is not a regular file")
            if not os.access(path, os.W_OK):
                raise ConnectorPermanentError(f"jsonl: {path} is not writable by this process")
            return CheckResult(f"{path} ({path.stat().st_size} bytes), writable")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise ConnectorPermanentError(
                f"jsonl: cannot create {path}: directory {directory} is not writable"
            )
        return CheckResult(f"{path} (will be created), directory writable")

    async def find_ticket(self, reference: str, *, source: str = "external_key") -> Ticket:
        """Tickets are virtual: a reference that is a plain id is a ticket with that id."""
        return virtual_ticket(reference, "jsonl")

    async def create_ticket(
        self, session: SupportSession, fields: Mapping[str, str], *, key: str
    ) -> Ticket:
        """Record a ``ticket`` line with a new id ``JSONL-<n>``, once per ``key``."""

        def make(index: _Index) -> dict[str, Any]:
            ticket = Ticket(id=f"JSONL-{index.last_ticket + 1}")
            return ticket_record(session, fields, key=key, ticket=ticket)

        entry = await self._upsert("ticket", key, make)
        if entry.ticket_id is None:  # only a hand-edited line can lack it
            raise ConnectorPermanentError(
                f"jsonl: {self.path} line {entry.line}: ticket record without a ticket id"
            )
        return Ticket(id=entry.ticket_id)

    async def write_session_report(
        self, ticket: Ticket | None, delivery: SessionDelivery
    ) -> WriteResult:
        """Append a ``session_report`` line, unless one with this key is in the file."""
        include = self._options.include_session
        return await self._write(
            "session_report",
            delivery.key,
            lambda: session_report_record(ticket, delivery, include_session=include),
        )

    async def write_survey(self, ticket: Ticket | None, delivery: SurveyDelivery) -> WriteResult:
        """Append a ``survey`` line, unless one with this key is in the file."""
        return await self._write("survey", delivery.key, lambda: survey_record(ticket, delivery))

    async def write_note(self, ticket: Ticket, note: NoteDelivery) -> WriteResult:
        """Append a ``note`` line, unless one with this key is in the file."""
        return await self._write("note", note.key, lambda: note_record(ticket, note))

    # --- the file ------------------------------------------------------------------------

    async def _write(self, kind: str, key: str, build: Callable[[], dict[str, Any]]) -> WriteResult:
        entry = await self._upsert(kind, key, lambda _index: build())
        return WriteResult(
            ref=f"line {entry.line}", detail={"path": str(self.path), "line": str(entry.line)}
        )

    async def _upsert(
        self,
        kind: str,
        key: str,
        make: Callable[[_Index], dict[str, Any]],
    ) -> _Entry:
        if not key:
            raise ConnectorPermanentError(f"jsonl: a {kind} write needs an idempotency key")
        async with self._lock:
            return await asyncio.to_thread(self._upsert_sync, kind, key, make)

    def _upsert_sync(
        self,
        kind: str,
        key: str,
        make: Callable[[_Index], dict[str, Any]],
    ) -> _Entry:
        with self._file_lock:
            index = self._current_index()
            existing = index.entries.get((kind, key))
            if existing is not None:
                return existing
            record = make(index)
            data = _dumps(record)
            try:
                index.identity = self._append(data)
            except OSError as exc:
                # The file may now end in a partial line: rescan (and cut it) next time.
                self._index = None
                raise _os_error(self.path, "append to", exc) from exc
            index.lines += 1
            entry = index.add(record, index.lines)
            assert entry is not None  # records always carry a string kind and key
            return entry

    def _current_index(self) -> _Index:
        """The index, brought up to date with the file first if the file has changed."""
        try:
            st: os.stat_result | None = self.path.stat()
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise _os_error(self.path, "read", exc) from exc
        current = None if st is None else _identity(st)
        index = self._index
        if index is not None and index.identity == current:
            return index
        self._index = None  # until it is consistent with the file again
        if current is None:
            index = _Index()
        elif index is not None and index.identity is not None and _grew(index.identity, current):
            # Another connector in this process appends to the same file (two integrations
            # with one path): read only what it added.
            self._load(index, offset=index.identity[2])
        else:
            if index is not None and index.identity is not None:
                log.warning("%s was replaced or truncated; re-reading it", self.path)
            index = self._load(_Index(), offset=0)
        self._index = index
        return index

    def _load(self, index: _Index, *, offset: int) -> _Index:
        """Add the lines from byte ``offset`` on to ``index`` (a torn last line is cut)."""
        path = self.path
        try:
            with open(path, "r+b") as f:
                f.seek(offset)
                for raw in f:
                    if not raw.endswith(b"\n"):
                        self._repair_tail(f, raw, offset, index)
                        break
                    index.lines += 1
                    offset += len(raw)
                    if raw.strip():
                        try:
                            index.add(_parse_line(raw, path, index.lines), index.lines)
                        except ValueError as exc:
                            raise ConnectorPermanentError(
                                f"jsonl: {exc}; fix or move the file"
                            ) from None
                index.identity = _identity(os.fstat(f.fileno()))
        except OSError as exc:
            raise _os_error(path, "read", exc) from exc
        return index

    def _repair_tail(self, f: io.BufferedRandom, raw: bytes, offset: int, index: _Index) -> None:
        """Deal with a last line that has no newline: complete it or cut it off."""
        try:
            record = _parse_line(raw, self.path, index.lines + 1)
        except ValueError:
            record = None
        if record is not None and isinstance(record.get("key"), str):
            # A whole record that only lost its newline (an editor, or a crash between
            # the two): keep it rather than lose a delivery that was made.
            f.write(b"\n")
            index.lines += 1
            index.add(record, index.lines)
            log.warning("%s: added the missing newline after line %d", self.path, index.lines)
        else:
            f.truncate(offset)
            log.warning(
                "%s: cut off a partial last line (%d bytes) left by an interrupted write",
                self.path,
                len(raw),
            )
        f.flush()
        if self._options.fsync:
            os.fsync(f.fileno())

    def _append(self, data: bytes) -> tuple[int, int, int]:
        """Append one line with a single write; returns the file's identity afterwards."""
        path = self.path
        created = not path.exists()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags, 0o600)  # deliveries hold chat transcripts: owner only
        try:
            written = os.write(fd, data)
            while written < len(data):  # a short write (rare: signals, full disk)
                written += os.write(fd, data[written:])
            if self._options.fsync:
                os.fsync(fd)
            identity = _identity(os.fstat(fd))
        finally:
            os.close(fd)
        if created and self._options.fsync:
            # Make the new directory entry durable too, or the whole file could vanish.
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return identity
