"""The store contract against PostgreSQL, plus what only a shared server can show:
migrations, a newer schema refused, several stores (nodes) on one database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from rsbridge.engine.store.base import (
    RANK_SURVEY,
    AttemptOutcome,
    EventFilter,
    JobSpec,
    LedgerEntry,
    LedgerKey,
    Store,
)
from rsbridge.engine.store.postgresql import PostgreSQLStore
from rsbridge.engine.store.sqlite import load_migrations
from rsbridge.engine.store.urls import mask_url
from rsbridge.errors import ConfigurationError
from tests.conftest import free_port

from .store_contract import DONE, END, SURVEY, T0, StoreContract, event


class TestPostgreSQLStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _database(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_store(self, tmp_path: Path) -> Store:
        return PostgreSQLStore(self.url)


# --- helpers ------------------------------------------------------------------------


async def opened(url: str) -> PostgreSQLStore:
    store = PostgreSQLStore(url)
    await store.open()
    return store


@pytest.fixture
async def nodes(postgres_url: str) -> AsyncIterator[tuple[PostgreSQLStore, PostgreSQLStore]]:
    """Two stores on one database, as two engine nodes have."""
    first = await opened(postgres_url)
    second = await opened(postgres_url)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


# --- migrations -----------------------------------------------------------------------


async def test_open_applies_every_migration_once(postgres_url: str) -> None:
    first = await opened(postgres_url)
    await first.close()
    again = await opened(postgres_url)  # nothing left to apply: no error, no duplicate
    await again.close()
    with psycopg.connect(postgres_url) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [m.version for m in load_migrations("postgresql")]


async def test_nodes_starting_together_migrate_once(postgres_url: str) -> None:
    stores = [PostgreSQLStore(postgres_url) for _ in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        await stores[0].record_event(event("k"), [JobSpec("sn")], now=T0)
        assert (await stores[3].counts())["queued"] == 1
    finally:
        await asyncio.gather(*(store.close() for store in stores))


async def test_a_newer_schema_is_refused_before_anything_changes(postgres_url: str) -> None:
    store = await opened(postgres_url)
    await store.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)")
    with pytest.raises(ConfigurationError, match=r"schema version 99.*newer rsbridge"):
        await PostgreSQLStore(postgres_url).open()


async def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    url = f"postgresql://rsb:sup3r-secret@127.0.0.1:{free_port()}/db?password=sup3r-secret"
    store = PostgreSQLStore(url)
    assert "sup3r-secret" not in repr(store)
    with pytest.raises(ConfigurationError) as caught:
        await store.open()
    assert "cannot connect to the store database" in caught.value.message
    assert "sup3r-secret" not in str(caught.value)
    assert "rsb:***@127.0.0.1" in caught.value.message


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:p%40ss@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        (
            "postgres://h/db?sslmode=require&password=x",
            "postgres://h/db?sslmode=require&password=***",
        ),
        # libpq accepts these characters in a password; a URL parser ends the host there.
        ("postgresql://u:pw?with#hash@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u:a/b@h/db", "postgresql://u:***@h/db"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


# --- several nodes ------------------------------------------------------------------


async def test_nodes_claim_disjoint_jobs_and_together_all(
    nodes: tuple[PostgreSQLStore, PostgreSQLStore],
) -> None:
    first, second = nodes
    queued: set[int] = set()
    for n in range(60):
        result = await first.record_event(event(f"k{n}", lsid=f"L{n}"), [JobSpec("sn")], now=T0)
        queued.update(result.job_ids)
    claims = await asyncio.gather(
        *(
            store.claim(f"{name}-{w}", limit=7, lease=60, now=T0)
            for w in range(5)
            for name, store in (("a", first), ("b", second))
        )
    )
    claimed = [job.id for jobs in claims for job in jobs]
    assert len(claimed) == len(set(claimed)) == 60  # 10 claimers x 7 > 60: all, once
    assert set(claimed) == queued


async def test_session_order_holds_across_nodes(
    nodes: tuple[PostgreSQLStore, PostgreSQLStore],
) -> None:
    first, second = nodes
    survey = await first.record_event(
        event("s", event_type=SURVEY), [JobSpec("sn", RANK_SURVEY)], now=T0
    )
    end = await second.record_event(event("e"), [JobSpec("sn")], now=T0)
    got = await asyncio.gather(
        first.claim("a", limit=5, lease=60, now=T0), second.claim("b", limit=5, lease=60, now=T0)
    )
    assert [job.id for jobs in got for job in jobs] == list(end.job_ids)
    # The survey stays behind the end while the other node works on it ...
    assert await first.claim("a", limit=5, lease=60, now=T0 + 1) == []
    holder = "a" if got[0] else "b"
    assert await (first if holder == "a" else second).finish(
        end.job_ids[0], holder, DONE, started_at=T0, now=T0 + 2
    )
    # ... and is handed out once it is done.
    (job,) = await second.claim("b", limit=5, lease=60, now=T0 + 3)
    assert job.id == survey.job_ids[0]


async def test_a_dead_nodes_jobs_are_taken_over_after_its_lease(postgres_url: str) -> None:
    dead = await opened(postgres_url)
    await dead.record_event(event("k1"), [JobSpec("sn")], now=T0)
    (job,) = await dead.claim("node-1", limit=1, lease=30, now=T0)
    await dead.close()  # gone without finishing or releasing
    survivor = await opened(postgres_url)
    try:
        assert await survivor.claim("node-2", limit=1, lease=30, now=T0 + 29) == []
        (taken,) = await survivor.claim("node-2", limit=1, lease=30, now=T0 + 31)
        assert taken.id == job.id and taken.lease_owner == "node-2"
        (attempt,) = await survivor.attempts(job.id)
        assert attempt.outcome is AttemptOutcome.EXPIRED and attempt.owner == "node-1"
        # The dead node's late finish changes nothing.
        assert not await survivor.finish(job.id, "node-1", DONE, started_at=T0, now=T0 + 32)
    finally:
        await survivor.close()


async def test_the_ledger_has_one_winner_across_nodes(
    nodes: tuple[PostgreSQLStore, PostgreSQLStore],
) -> None:
    first, second = nodes
    key = LedgerKey("a1", "L1", END, "sn", "session_report")
    entries = [LedgerEntry(key, f"INC{n}", f"ref{n}", T0) for n in range(10)]
    stood = await asyncio.gather(
        *((first if n % 2 else second).ledger_put(e) for n, e in enumerate(entries))
    )
    assert len({(e.ticket_id, e.ref) for e in stood}) == 1
    assert await first.ledger_get(key) == stood[0] == await second.ledger_get(key)


async def test_an_idle_node_is_woken_when_another_queues_a_job(
    nodes: tuple[PostgreSQLStore, PostgreSQLStore],
) -> None:
    first, second = nodes
    assert not await second.wait_for_jobs(0.2)  # listening now; nothing queued
    waiter = asyncio.create_task(second.wait_for_jobs(30))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await first.record_event(event("k1"), [JobSpec("sn")], now=T0)
    assert await waiter
    assert time.monotonic() - started < 5  # far from the 30 s timeout: woken, not timed out


async def test_finishing_wakes_other_nodes_only_when_a_job_became_claimable(
    nodes: tuple[PostgreSQLStore, PostgreSQLStore],
) -> None:
    first, second = nodes
    assert not await second.wait_for_jobs(0.2)  # listening now
    await first.record_event(event("e1", lsid="L1"), [JobSpec("sn")], now=T0)
    await first.record_event(event("e2", lsid="L2"), [JobSpec("sn")], now=T0)
    survey = event("s2", lsid="L2", event_type=SURVEY)
    await first.record_event(survey, [JobSpec("sn", rank=RANK_SURVEY)], now=T0)
    jobs = await first.claim("w1", limit=10, lease=60, now=T0 + 1)
    assert sorted(j.lsid or "" for j in jobs) == ["L1", "L2"]  # the survey waits
    by_lsid = {j.lsid: j for j in jobs}
    while await second.wait_for_jobs(0.3):  # the wake-ups of the recording
        pass
    # L1 has nothing after it: the other node is not disturbed...
    assert await first.finish(by_lsid["L1"].id, "w1", DONE, started_at=T0, now=T0 + 2)
    assert not await second.wait_for_jobs(1)
    # ...while L2's survey becomes claimable: it is woken.
    assert await first.finish(by_lsid["L2"].id, "w1", DONE, started_at=T0, now=T0 + 2)
    assert await second.wait_for_jobs(10)
    assert [j.event_type for j in await second.claim("w2", limit=10, lease=60, now=T0 + 3)] == [
        SURVEY
    ]


async def test_connections_the_server_dropped_are_replaced_before_use(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await opened(postgres_url)
    try:
        await store.set_watermark("w", 1.0)
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            # Every connection of the pool (this test's database is its own).
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        # Idle for longer than the check's threshold (made short here): checked, replaced.
        monkeypatch.setattr("rsbridge.engine.store.postgresql.CHECK_AFTER_IDLE_S", 0.05)
        await asyncio.sleep(0.1)
        assert await store.get_watermark("w") == 1.0
    finally:
        await store.close()


# --- values PostgreSQL's text refuses --------------------------------------------------


async def test_a_nul_in_a_customer_value_is_recorded_not_refused(
    tmp_path: Path, postgres_url: str
) -> None:
    """A customer can put %00 in the external key (a start URL): PostgreSQL's text refuses
    NUL, and a 503 would hold the appliance's queue until it drops the event."""
    from urllib.parse import urlencode

    import httpx

    from rsbridge.engine.intake import Intake
    from rsbridge.web.app import create_app
    from rsbridge.web.serve import serving

    from .conftest import engine_config

    config = engine_config(tmp_path, None, appliance={"outbound_event_token": "tok"})
    store = await opened(postgres_url)
    form = [
        ("event", "support_conference_end"),
        ("lsid", "5f1e0c5b7a2a4c8e9d0f1a2b3c4d5e6f"),
        ("external_key", "INC0001\x00x"),
        ("session.custom.note", "a\x00b"),
        ("outbound_event_token", "tok"),
    ]
    try:
        async with (
            serving(create_app(Intake(config, store), store)) as url,
            httpx.AsyncClient() as client,
        ):
            answer = await client.post(
                f"{url}/ERSPost?appliance=default",
                content=urlencode(form).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert answer.status_code == 200, answer.text
            # A malformed body with a raw NUL is parked, not refused, too.
            raw = await client.post(
                f"{url}/ERSPost?appliance=default&outbound_event_token=tok",
                content=b"event=support_conference_end&lsid=\x00\xff%zz",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert raw.status_code == 200, raw.text
        events = await store.list_events(EventFilter())
        [ended] = [e for e in events if e.event_type == "support_conference_end"]
        assert ended.external_key == "INC0001\ufffdx"
        assert dict(ended.form)["session.custom.note"] == "a\ufffdb"
        assert len(events) == 2
    finally:
        await store.close()


async def test_connections_keep_alive_both_ways(postgres_url: str) -> None:
    """A node that vanishes without closing its sockets must lose its poll lead (a session
    advisory lock) within about a minute: the server probes its connections."""
    sep = "&" if "?" in postgres_url else "?"
    store = await opened(f"{postgres_url}{sep}options=-c%20statement_timeout%3D60000")
    try:
        own = await store.connect()
        try:
            cur = await own.execute("SHOW tcp_keepalives_idle")
            assert await cur.fetchone() == ("30",)
            cur = await own.execute("SHOW statement_timeout")  # the URL's own options stay
            assert await cur.fetchone() == ("1min",)
        finally:
            await own.close()
        async with store._connection() as pooled:
            cur = await pooled.execute("SHOW tcp_keepalives_count")
            assert await cur.fetchone() == ("3",)
    finally:
        await store.close()


async def test_failed_sign_ins_sent_to_two_nodes_at_once_are_each_counted(
    nodes: tuple[PostgreSQLStore, PostgreSQLStore],
) -> None:
    first, second = nodes

    async def fail(store: PostgreSQLStore, n: int) -> object:
        return await store.sign_in_failed("olga", window=600, limit=20, now=T0 + n / 100)

    # 19 failures at once, spread over both nodes: none is lost to a race, so the
    # 20th (on either node) locks the name for both.
    await asyncio.gather(*(fail(first if n % 2 else second, n) for n in range(19)))
    assert await first.check_lockout("olga", now=T0 + 1) is None
    assert await fail(second, 99) is not None
    assert await first.check_lockout("olga", now=T0 + 2) is not None
