"""Sign-ins, lock-out and their audit entries live in the store: they hold across
restarts, across engines sharing a SQLite file, and across nodes sharing PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from rsbridge.config import Config
from rsbridge.engine.store.base import AuditEntry, AuditFilter
from rsbridge.web.admin.auth import hash_password
from tests.admin.conftest import (
    HASHES,
    Console,
    console_config,
    csrf_of,
    serving_console,
    sign_in,
    unmasked,
)
from tests.engine.conftest import SimAppliance

RIGHT = {"olga": "operator-password-1", "vic": "viewer-password-1"}


def reconfigured(config: Config, *, engine: dict[str, Any] | None = None, **admin: Any) -> Config:
    """``config`` with ``[engine]`` and ``[admin]`` settings replaced."""
    data = unmasked(config.model_dump(mode="python"))
    data["engine"].update(engine or {})
    data["admin"].update(admin)
    return Config.model_validate(data)


async def signed_in_cookie(console: Console, name: str) -> str:
    """Sign ``name`` in on ``console``; the session cookie's value."""
    async with console.browser() as browser:
        answer = await sign_in(browser, name, RIGHT[name])
        assert answer.status_code == 303, answer.text
        return answer.cookies["rsbridge_admin"]


async def overview_with(console: Console, cookie: str) -> httpx.Response:
    """``GET /admin/`` from a browser holding session cookie ``cookie``."""
    async with console.browser() as browser:
        browser.cookies.set("rsbridge_admin", cookie)
        return await browser.get("/admin/")


async def audit_of(console: Console, actor: str) -> list[AuditEntry]:
    return await console.engine.store.list_audit(AuditFilter(actor=actor))


# --- durable sign-ins --------------------------------------------------------------


async def test_a_sign_in_outlives_a_restart(tmp_path: Path, sim: SimAppliance) -> None:
    config = console_config(tmp_path, sim)
    async with serving_console(config) as console:
        cookie = await signed_in_cookie(console, "olga")
    async with serving_console(config) as restarted:
        page = await overview_with(restarted, cookie)
        assert page.status_code == 200 and "olga" in page.text


async def test_sign_out_ends_the_sign_in_everywhere(tmp_path: Path, sim: SimAppliance) -> None:
    config = console_config(tmp_path, sim)
    async with serving_console(config) as first, serving_console(config) as second:
        cookie = await signed_in_cookie(first, "vic")
        assert (await overview_with(second, cookie)).status_code == 200
        async with first.browser() as browser:
            browser.cookies.set("rsbridge_admin", cookie)
            page = await browser.get("/admin/")
            out = await browser.post("/admin/sign-out", data={"csrf_token": csrf_of(page.text)})
            assert out.status_code == 303
        # The old cookie value, replayed on either engine, no longer signs anyone in.
        for console in (first, second):
            stale = await overview_with(console, cookie)
            assert stale.status_code == 303
            assert stale.headers["location"].startswith("/admin/sign-in")
        assert [e.action for e in await audit_of(first, "vic")] == ["sign-out", "sign-in"]


async def test_replacing_a_password_hash_ends_the_sign_ins_made_with_the_old_one(
    tmp_path: Path, sim: SimAppliance
) -> None:
    config = console_config(tmp_path, sim)
    new_password = "operator-password-2"
    rehashed = reconfigured(
        config,
        users=[
            {"name": "olga", "password_hash": hash_password(new_password), "role": "operator"},
            {"name": "vic", "password_hash": HASHES["vic"], "role": "viewer"},
        ],
    )
    async with serving_console(config) as before:
        olga, vic = await signed_in_cookie(before, "olga"), await signed_in_cookie(before, "vic")
        async with serving_console(rehashed) as after:
            answer = await overview_with(after, olga)
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/admin/sign-in")
            # vic's hash is the same: his sign-in holds.
            assert (await overview_with(after, vic)).status_code == 200
            async with after.browser() as browser:
                assert (await sign_in(browser, "olga", RIGHT["olga"])).status_code == 401
                assert (await sign_in(browser, "olga", new_password)).status_code == 303
        # Ended in the store: not even a node still on the old configuration takes it.
        assert (await overview_with(before, olga)).status_code == 303
        assert (await overview_with(before, vic)).status_code == 200


async def test_a_user_removed_from_the_configuration_loses_access(
    tmp_path: Path, sim: SimAppliance
) -> None:
    config = console_config(tmp_path, sim)
    only_vic = reconfigured(
        config, users=[{"name": "vic", "password_hash": HASHES["vic"], "role": "viewer"}]
    )
    async with serving_console(config) as before:
        cookie = await signed_in_cookie(before, "olga")
        async with serving_console(only_vic) as after:
            answer = await overview_with(after, cookie)
            assert answer.status_code == 303
            assert answer.headers["location"] == "/admin/sign-in"
            async with after.browser() as browser:
                assert (await sign_in(browser, "olga", RIGHT["olga"])).status_code == 401
        # Her sign-in was ended in the store, not only refused by the second engine.
        assert (await overview_with(before, cookie)).status_code == 303


# --- lock-out ------------------------------------------------------------------------


async def test_failures_on_one_node_lock_the_name_on_another(
    tmp_path: Path, sim: SimAppliance, postgres_url: str
) -> None:
    config = reconfigured(
        console_config(tmp_path, sim),
        engine={"store": postgres_url},
        max_failed_sign_ins=3,
        lockout_minutes=10,
    )
    async with serving_console(config) as first, serving_console(config) as second:
        async with first.browser() as attacker:
            for _ in range(3):
                assert (await sign_in(attacker, "olga", "guess")).status_code == 401
        async with second.browser() as browser:
            locked = await sign_in(browser, "olga", RIGHT["olga"])
            assert locked.status_code == 429 and "locked" in locked.text
            assert "rsbridge_admin=" not in locked.headers.get("set-cookie", "")
            # Other names are not locked by olga's failures.
            assert (await sign_in(browser, "vic", RIGHT["vic"])).status_code == 303
        actions = [e.action for e in await audit_of(second, "olga")]
        assert actions == ["sign-in refused (locked)", *["sign-in failed"] * 3]
        last_failure = next(e for e in await audit_of(first, "olga") if e.action.endswith("failed"))
        assert "locked until" in last_failure.detail and last_failure.remote == "127.0.0.1"


async def test_a_sign_in_resets_the_count_on_every_node(
    tmp_path: Path, sim: SimAppliance, postgres_url: str
) -> None:
    config = reconfigured(
        console_config(tmp_path, sim), engine={"store": postgres_url}, max_failed_sign_ins=3
    )
    async with serving_console(config) as first, serving_console(config) as second:
        async with first.browser() as browser:
            for _ in range(2):
                assert (await sign_in(browser, "olga", "typo")).status_code == 401
        async with second.browser() as browser:
            assert (await sign_in(browser, "olga", RIGHT["olga"])).status_code == 303
        async with first.browser() as browser:
            for _ in range(2):
                assert (await sign_in(browser, "olga", "typo")).status_code == 401
            # Two failures since the success: not locked.
            assert (await sign_in(browser, "olga", RIGHT["olga"])).status_code == 303


async def test_unknown_names_are_locked_alike_and_refusals_are_audited_sparingly(
    tmp_path: Path, sim: SimAppliance
) -> None:
    config = console_config(tmp_path, sim, max_failed_sign_ins=2)
    async with serving_console(config) as console, console.browser() as browser:
        for _ in range(2):
            assert (await sign_in(browser, "nobody", "guess")).status_code == 401
        refusals = [await sign_in(browser, "nobody", "guess") for _ in range(5)]
        assert {r.status_code for r in refusals} == {429}
        entries = await audit_of(console, "nobody")
        refused = [e for e in entries if e.action == "sign-in refused (locked)"]
        # Attempts 1, 2 and 4 of the lock-out, each saying which: five refusals, three lines.
        assert [e.detail for e in refused] == [
            f"refused attempt {n} of this lock-out" for n in (4, 2, 1)
        ]
        assert all("unknown user name" in e.detail for e in entries if e.action.endswith("failed"))


# --- cookies over HTTPS --------------------------------------------------------------


def _cookie(answer: httpx.Response, name: str) -> str:
    return next(h for h in answer.headers.get_list("set-cookie") if h.startswith(f"{name}="))


async def test_cookies_are_secure_when_the_browser_talks_https_through_a_trusted_proxy(
    tmp_path: Path, sim: SimAppliance
) -> None:
    config = reconfigured(
        console_config(tmp_path, sim), engine={"trusted_proxies": ["127.0.0.1/32"]}
    )
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.23"}
    async with serving_console(config) as console, console.browser() as browser:
        page = await browser.get("/admin/sign-in", headers=https)
        assert page.status_code == 200
        assert "; Secure" in _cookie(page, "rsbridge_admin_csrf")
        # httpx does not send a Secure cookie over plain http://, rightly; the browser's
        # side of the proxy is HTTPS, so it sends it back; do that here by hand.
        csrf_cookie = page.cookies["rsbridge_admin_csrf"]
        answer = await browser.post(
            "/admin/sign-in",
            headers={**https, "Cookie": f"rsbridge_admin_csrf={csrf_cookie}"},
            data={
                "csrf_token": csrf_of(page.text),
                "username": "olga",
                "password": RIGHT["olga"],
            },
        )
        assert answer.status_code == 303
        session = _cookie(answer, "rsbridge_admin")
        assert "; Secure" in session and "HttpOnly" in session
        # From the proxy, plain HTTP is refused rather than answered with a clear cookie.
        plain = await browser.get("/admin/sign-in", headers={"X-Forwarded-Proto": "http"})
        assert plain.status_code == 403 and "set-cookie" not in plain.headers
        (entry,) = await audit_of(console, "olga")
        assert entry.remote == "198.51.100.23"  # the client the proxy forwards for


async def test_cookies_over_plain_loopback_http_are_not_secure(
    tmp_path: Path, sim: SimAppliance
) -> None:
    async with (
        serving_console(console_config(tmp_path, sim)) as console,
        console.browser() as browser,
    ):
        answer = await sign_in(browser, "olga", RIGHT["olga"])
        assert "Secure" not in _cookie(answer, "rsbridge_admin")
