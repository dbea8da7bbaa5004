"""Contract tests of the console's store methods: sign-ins, lock-out, audit log.

Mixed into :class:`~tests.engine.store_contract.StoreContract`, so every backend runs them.
"""

from __future__ import annotations

from rsbridge.config import EngineConfig
from rsbridge.engine.retention import prune, retention_policy
from rsbridge.engine.store.base import AuditFilter, ConsoleSignIn, Lockout, Store

T0 = 1_700_000_000.0
WINDOW = 600.0


def _sign_in(digest: str, user: str = "olga", *, expires_at: float = T0 + 3600) -> ConsoleSignIn:
    return ConsoleSignIn(digest, user, f"csrf-{digest}", T0, expires_at)


async def _fail(store: Store, name: str, times: int, at: float = T0) -> Lockout | None:
    lockout = None
    for n in range(times):
        lockout = await store.sign_in_failed(name, window=WINDOW, limit=3, now=at + n)
    return lockout


class StoreConsoleContract:
    """Sign-ins, failed sign-in counts and the audit log; needs the ``store`` fixture."""

    # --- sign-ins ------------------------------------------------------------------

    async def test_a_sign_in_is_found_by_its_digest_until_it_expires(self, store: Store) -> None:
        await store.add_sign_in(_sign_in("d1"))
        assert await store.find_sign_in("d1", now=T0 + 10) == _sign_in("d1")
        assert await store.find_sign_in("other", now=T0 + 10) is None
        assert await store.find_sign_in("d1", now=T0 + 3600) is None
        # Found expired, it was removed: even a clock turned back does not revive it.
        assert await store.find_sign_in("d1", now=T0) is None

    async def test_ending_a_sign_in_removes_it_and_leaves_the_others(self, store: Store) -> None:
        await store.add_sign_in(_sign_in("d1"))
        await store.add_sign_in(_sign_in("d2", "vic"))
        assert await store.end_sign_in("d1") is True
        assert await store.end_sign_in("d1") is False
        assert await store.find_sign_in("d1", now=T0) is None
        assert await store.find_sign_in("d2", now=T0) == _sign_in("d2", "vic")

    # --- failed sign-ins and lock-out --------------------------------------------------

    async def test_the_limit_th_failure_in_a_row_locks_the_name(self, store: Store) -> None:
        assert await _fail(store, "olga", 2) is None
        assert await store.check_lockout("olga", now=T0 + 5) is None
        assert await _fail(store, "olga", 1, at=T0 + 10) == Lockout(T0 + 10 + WINDOW, 0)
        # Each refused attempt while locked is counted; other names are not locked.
        assert await store.check_lockout("olga", now=T0 + 20) == Lockout(T0 + 10 + WINDOW, 1)
        assert await store.check_lockout("olga", now=T0 + 21) == Lockout(T0 + 10 + WINDOW, 2)
        assert await store.check_lockout("vic", now=T0 + 20) is None
        # The lock runs out; the next failure starts a new streak.
        assert await store.check_lockout("olga", now=T0 + 10 + WINDOW) is None
        assert await _fail(store, "olga", 1, at=T0 + 10 + WINDOW) is None

    async def test_a_failure_while_locked_does_not_extend_the_lock(self, store: Store) -> None:
        await _fail(store, "olga", 3)
        assert await _fail(store, "olga", 1, at=T0 + 100) == Lockout(T0 + 2 + WINDOW, 0)

    async def test_a_sign_in_resets_the_count(self, store: Store) -> None:
        await _fail(store, "olga", 2)
        await store.add_sign_in(_sign_in("d1"))
        assert await _fail(store, "olga", 2, at=T0 + 10) is None

    async def test_failures_further_apart_than_the_window_do_not_add_up(self, store: Store) -> None:
        await _fail(store, "olga", 2)
        assert await _fail(store, "olga", 2, at=T0 + 1 + WINDOW) is None
        assert await _fail(store, "olga", 1, at=T0 + 3 + WINDOW) is not None

    async def test_unknown_names_are_counted_and_cut_to_a_bounded_size(self, store: Store) -> None:
        long_name = "x" * 10_000
        assert await _fail(store, long_name, 3) is not None
        assert await store.check_lockout(long_name, now=T0 + 5) is not None

    async def test_lapsed_counts_and_expired_sign_ins_are_pruned(self, store: Store) -> None:
        await store.add_sign_in(_sign_in("old", expires_at=T0 + 10))
        await store.add_sign_in(_sign_in("live", expires_at=T0 + 10**6))
        await _fail(store, "mallory", 1)  # lapses at T0 + WINDOW
        await _fail(store, "locked", 3)  # locked until T0 + 2 + WINDOW
        assert await store.prune_console(T0 + 1 + WINDOW, limit=1) == 2  # one of each
        assert await store.prune_console(T0 + 1 + WINDOW, limit=10) == 0
        assert await store.check_lockout("locked", now=T0 + 1 + WINDOW) is not None
        assert await store.prune_console(T0 + 3 + WINDOW, limit=10) == 1
        assert await store.check_lockout("locked", now=T0 + 1 + WINDOW) is None
        assert await store.find_sign_in("live", now=T0) is not None

    async def test_retention_prunes_console_rows_and_keeps_recent_audit_entries(
        self, store: Store
    ) -> None:
        await store.add_sign_in(_sign_in("old", expires_at=T0 + 10))
        await store.write_audit("olga", "sign-in", now=T0)
        policy = retention_policy(EngineConfig(), now=T0 + 20)
        await prune(store, policy, batch=1)
        assert await store.prune_console(T0 + 20, limit=10) == 0
        assert len(await store.list_audit(AuditFilter())) == 1

    async def test_audit_entries_past_their_retention_are_pruned_oldest_first(
        self, store: Store
    ) -> None:
        day = 86400.0
        for n in range(5):
            await store.write_audit("olga", "retry", target=f"job {n}", now=T0 + n * day)
        # Kept for 2 days, pruned 4.5 days after the first: the entries of days 0, 1, 2 go.
        config = EngineConfig(audit_retention_days=2)
        policy = retention_policy(config, now=T0 + 4.5 * day)
        assert await store.prune_console(T0, limit=2, audit_before=policy.audit_before) == 2
        left = [e.target for e in await store.list_audit(AuditFilter())]
        assert left == ["job 4", "job 3", "job 2"]
        await prune(store, policy, batch=1)
        assert [e.target for e in await store.list_audit(AuditFilter())] == ["job 4", "job 3"]
        # Without audit_before the log stays.
        assert await store.prune_console(T0 + 10 * day, limit=10) == 0
        assert len(await store.list_audit(AuditFilter())) == 2

    async def test_new_failures_sweep_lapsed_counts_of_other_names(self, store: Store) -> None:
        for n in range(30):
            await store.sign_in_failed(f"guess{n}", window=WINDOW, limit=3, now=T0)
        await store.sign_in_failed("late", window=WINDOW, limit=3, now=T0 + 2 * WINDOW)
        # The sweep took a bounded number of them; prune takes the rest.
        left = await store.prune_console(T0 + 2 * WINDOW, limit=100)
        assert 0 < left < 30

    # --- the audit log -----------------------------------------------------------------

    async def test_the_audit_log_pages_newest_first(self, store: Store) -> None:
        written = [
            await store.write_audit(
                "olga" if n % 2 else "vic",
                "retry",
                target=f"job {n}",
                detail="after the outage",
                remote="192.0.2.7",
                now=T0 + n,
            )
            for n in range(5)
        ]
        assert [e.id for e in written] == sorted({e.id for e in written})
        first = written[0]
        assert (first.at, first.actor, first.action, first.target) == (T0, "vic", "retry", "job 0")
        assert (first.detail, first.remote) == ("after the outage", "192.0.2.7")
        page = await store.list_audit(AuditFilter(limit=2))
        assert page == [written[4], written[3]]
        older = await store.list_audit(AuditFilter(before_id=page[-1].id, limit=2))
        assert older == [written[2], written[1]]
        assert await store.list_audit(AuditFilter(before_id=written[0].id)) == []

    async def test_the_audit_log_finds_one_actors_entries(self, store: Store) -> None:
        await store.write_audit("mallory", "sign-in failed", now=T0)
        await store.write_audit("olga", "sign-in", now=T0 + 1)
        await store.write_audit("mallory", "sign-in failed", now=T0 + 2)
        await store.write_audit("mallory", "sign-in refused (locked)", now=T0 + 3)
        failed = await store.list_audit(AuditFilter(actor="mallory", action="sign-in failed"))
        assert [e.at for e in failed] == [T0 + 2, T0]
        assert len(await store.list_audit(AuditFilter(actor="mallory"))) == 3

    async def test_audit_texts_are_kept_as_given_but_bounded(self, store: Store) -> None:
        hostile = "<script>alert(1)</script>'; DROP TABLE audit_log; --"
        entry = await store.write_audit(hostile, "sign-in failed", detail="d" * 100_000, now=T0)
        (stored,) = await store.list_audit(AuditFilter())
        assert stored == entry
        assert stored.actor == hostile
        assert 0 < len(stored.detail) <= 4000
