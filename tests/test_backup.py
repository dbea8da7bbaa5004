"""The SQLite store's online backup, as docs/operations.md gives it, while the engine writes.

Both documented forms run against a store that is being written to: the sqlite3 shell's
``.backup`` and Python's ``sqlite3.Connection.backup`` (for hosts without the shell). The copy
is a consistent database that rsbridge opens, holding at least what was acknowledged before
the backup began.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from rsbridge.engine.store.base import IncomingEvent, JobSpec
from rsbridge.engine.store.sqlite import SQLiteStore

PYTHON_BACKUP = (
    "import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))"
)


def _event(n: int) -> IncomingEvent:
    return IncomingEvent(
        appliance_id="a1",
        event_type="support_conference_end",
        source="outbound",
        dedup_key=f"k{n}",
        lsid=f"L{n}",
    )


def _backup_commands(db: Path, copy: Path) -> list[list[str]]:
    commands = [[sys.executable, "-c", PYTHON_BACKUP, str(db), str(copy)]]
    shell = shutil.which("sqlite3")
    if shell is not None:
        commands.append([shell, str(db), f".backup '{copy}'"])
    elif os.environ.get("CI") == "true":
        pytest.fail("the sqlite3 shell is not installed")
    return commands


@pytest.mark.parametrize("form", ["python", "sqlite3 shell"])
async def test_online_backup_while_events_arrive(tmp_path: Path, form: str) -> None:
    db, copy = tmp_path / "rsbridge.db", tmp_path / "backup.db"
    commands = _backup_commands(db, copy)
    if form == "sqlite3 shell" and len(commands) < 2:
        pytest.skip("no sqlite3 shell here (Debian: sqlite3)")
    store = SQLiteStore(db)
    await store.open()
    written = 0
    stop, enough = asyncio.Event(), asyncio.Event()

    async def write() -> None:
        nonlocal written
        while not stop.is_set():
            await store.record_event(_event(written), [JobSpec("sn")])
            written += 1
            if written == 200:
                enough.set()

    writer = asyncio.create_task(write())
    try:
        await enough.wait()
        before = written
        proc = await asyncio.create_subprocess_exec(*commands[0 if form == "python" else 1])
        assert await proc.wait() == 0
    finally:
        stop.set()
        await writer
        await store.close()
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    restored = SQLiteStore(copy)
    await restored.open()
    try:
        counts = await restored.counts()
    finally:
        await restored.close()
    assert before <= counts["events"] <= written
    # The live database is whole too, and every acknowledged event is in it.
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (written,)
