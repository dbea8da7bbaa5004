"""What a node of a PostgreSQL store keeps connections of its own for: LISTEN and leads.

Neither can use the pool: a LISTEN is heard only on the connection that issued it, and
a session advisory lock is held by its connection, for as long as it lives, which is
what makes a lead go when its node dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import AsyncConnection

from rsbridge.engine.store import postgresql_sql as sql
from rsbridge.engine.store.postgresql_schema import advisory_key
from rsbridge.engine.store.wakeup import Wakeup
from rsbridge.errors import ConfigurationError

__all__ = ["NodeLinks"]

log = logging.getLogger(__name__)

Connection = AsyncConnection[tuple[Any, ...]]


class NodeLinks:
    """The listener and the leads of one node; ``connect`` makes a new connection."""

    def __init__(self, connect: Callable[[], Awaitable[Connection]], label: str) -> None:
        self._connect = connect
        self._label = label
        self._listener: Connection | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._wakeup = Wakeup()
        self._lead_conn: Connection | None = None
        self._leading: set[str] = set()
        self._lead_lock = asyncio.Lock()
        self._slots: dict[str, int] = {}
        """The slots this node takes (name -> how many there are), again after a loss."""
        self._held: dict[str, int | None] = {}
        """The number of the slot held per name on the lead connection (None: all full)."""

    async def close(self) -> None:
        """Stop listening and give up every lead (closing their connection)."""
        task, self._listen_task = self._listen_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()
        async with self._lead_lock:
            lead_conn, self._lead_conn = self._lead_conn, None
            self._leading.clear()
            self._slots.clear()
            self._held.clear()
        if lead_conn is not None:
            await lead_conn.close()

    # --- wake-ups ---------------------------------------------------------------

    async def wait_for_jobs(self, within: float) -> bool:
        """Wait for a notification on ``rsbridge_jobs``, at most ``within`` seconds.

        The first call starts listening; if the connection is lost, waiting falls back
        to the timeout until the next call listens again.
        """
        if self._listen_task is None or self._listen_task.done():
            self._listen_task = asyncio.create_task(self._listen(), name="rsbridge-store-listen")
        return await self._wakeup.wait(within)

    def wake_local(self) -> None:
        """Wake this node's idle workers without a notification to the others."""
        self._wakeup.notify()

    async def _listen(self) -> None:
        try:
            conn = await self._connect()
            self._listener = conn
            await conn.execute(f"LISTEN {sql.NOTIFY_CHANNEL}")
            async for _ in conn.notifies():
                self._wakeup.notify()
        except (psycopg.Error, ConfigurationError) as exc:
            # Workers poll meanwhile; the next wait_for_jobs() listens again.
            log.warning("not listening for new jobs on %s: %s", self._label, exc)

    # --- leads ------------------------------------------------------------------

    async def take_slot(self, name: str, slots: int) -> int | None:
        """Hold one of ``slots`` numbered slots named ``name`` among the processes on this
        database: the first free one's number, or None when every one is held.

        A slot is a session advisory lock on the connection kept for leads, as a lead
        is: the server frees it when this process closes the store or dies. If that
        connection is lost while the process runs, the next call here, to :meth:`lead`
        or to :meth:`keep_slots` connects again and takes a slot again. Taking a slot
        this node holds returns its number (it never holds two of one name).
        """
        async with self._lead_lock:
            conn = await self._lead_connection()
            self._slots[name] = slots
            if self._held.get(name) is None:
                self._held[name] = await _take_one(conn, name, slots)
            return self._held[name]

    async def keep_slots(self) -> dict[str, int | None]:
        """Check the connection that holds this node's slots; when it was lost (the
        server restarted, an operator ended it), connect again and take the slots
        again. The slot held per name now (None: every one is taken by others)."""
        async with self._lead_lock:
            conn = self._lead_conn
            if conn is not None and not conn.closed and not conn.broken:
                try:
                    await conn.execute("SELECT 1")
                except psycopg.OperationalError:
                    await self._drop_lead_connection()
            conn = await self._lead_connection()
            for name, slots in self._slots.items():
                if self._held.get(name) is None:
                    self._held[name] = await _take_one(conn, name, slots)
            return dict(self._held)

    async def _lead_connection(self) -> Connection:
        """The connection for leads and slots; a new one when it was lost, on which the
        slots are taken again (leads are taken again by the next :meth:`lead`)."""
        conn = self._lead_conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        await self._drop_lead_connection()
        self._lead_conn = conn = await self._connect()
        for name, slots in self._slots.items():
            # Only slots taken before are remembered: this is a connection lost.
            number = self._held[name] = await _take_one(conn, name, slots)
            kind = name.split(":", 1)[0]
            if number is None:
                log.error(
                    "lost the store connection holding this node's %s slot, and all %d are "
                    "taken by other processes now",
                    kind,
                    slots,
                )
            else:
                log.warning(
                    "lost the store connection holding this node's %s slot; took slot %d again",
                    kind,
                    number,
                )
        return conn

    async def _drop_lead_connection(self) -> None:
        conn, self._lead_conn = self._lead_conn, None
        self._leading.clear()
        self._held.clear()
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def lead(self, name: str) -> bool:
        """Take, or keep, the lead named ``name`` among the nodes on this database.

        True while this node holds it: a session advisory lock on the connection kept
        for leads, so exactly one node at a time holds it, and the server releases it
        when that node dies or loses its connection; another node's next call then
        takes it over. False when another node holds it, or the connection was lost
        (the next call reconnects and tries again).
        """
        async with self._lead_lock:
            conn = await self._lead_connection()
            try:
                if name in self._leading:
                    await conn.execute("SELECT 1")  # still connected: still held
                    return True
                cur = await conn.execute(sql.TRY_LEAD, (advisory_key(f"lead:{name}"),))
                row = await cur.fetchone()
            except psycopg.OperationalError:
                # Leads and slots are gone with it: the next call takes them again.
                await self._drop_lead_connection()
                return False
            if row is not None and row[0]:
                self._leading.add(name)
                return True
            return False


async def _take_one(conn: Connection, name: str, slots: int) -> int | None:
    """Take the first free of ``slots`` slots ``name`` on ``conn``: its number, or None."""
    for number in range(slots):
        cur = await conn.execute(sql.TRY_LEAD, (advisory_key(f"slot:{name}:{number}"),))
        row = await cur.fetchone()
        if row is not None and row[0]:
            return number
    return None
