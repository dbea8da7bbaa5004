"""Signing in to the console: passwords, cookies, CSRF, lock-out, roles, transport."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsbridge.config import parse_config
from rsbridge.errors import ConfigurationError
from tests.admin.conftest import (
    HASHES,
    console_config,
    csrf_of,
    serving_console,
    sign_in,
)
from tests.engine.conftest import SimAppliance


async def test_the_console_sends_strangers_to_sign_in(tmp_path: Path, sim: SimAppliance) -> None:
    async with (
        serving_console(console_config(tmp_path, sim)) as console,
        console.browser() as browser,
    ):
        answer = await browser.get("/admin/?state=dead")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/admin/sign-in?next=%2Fadmin%2F%3Fstate%3Ddead"


async def test_a_right_password_signs_in_with_a_strict_http_only_cookie(
    tmp_path: Path, sim: SimAppliance
) -> None:
    async with (
        serving_console(console_config(tmp_path, sim)) as console,
        console.browser() as browser,
    ):
        answer = await sign_in(browser, "olga", "operator-password-1")
        assert answer.status_code == 303
        cookie = next(
            h for h in answer.headers.get_list("set-cookie") if h.startswith("rsbridge_admin=")
        )
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie
        page = await browser.get("/admin/")
        assert page.status_code == 200
        assert "olga" in page.text and "Overview" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_a_wrong_password_or_unknown_user_is_refused_alike(
    tmp_path: Path, sim: SimAppliance
) -> None:
    async with (
        serving_console(console_config(tmp_path, sim)) as console,
        console.browser() as browser,
    ):
        wrong = await sign_in(browser, "olga", "not-it")
        unknown = await sign_in(browser, "nobody", "not-it")
        assert wrong.status_code == unknown.status_code == 401
        assert "Wrong user name or password." in wrong.text
        assert "Wrong user name or password." in unknown.text
        assert (await browser.get("/admin/")).status_code == 303


async def test_sign_in_without_its_csrf_token_is_refused(tmp_path: Path, sim: SimAppliance) -> None:
    async with (
        serving_console(console_config(tmp_path, sim)) as console,
        console.browser() as browser,
    ):
        await browser.get("/admin/sign-in")
        answer = await browser.post(
            "/admin/sign-in",
            data={
                "csrf_token": "forged",
                "username": "olga",
                "password": "operator-password-1",
            },
        )
        assert answer.status_code == 403
        assert "rsbridge_admin=" not in answer.headers.get("set-cookie", "")


async def test_a_form_post_without_the_sign_ins_csrf_token_is_refused(
    tmp_path: Path, sim: SimAppliance
) -> None:
    async with (
        serving_console(console_config(tmp_path, sim)) as console,
        console.signed_in("olga") as browser,
    ):
        refused = await browser.post("/admin/sign-out", data={"csrf_token": "forged"})
        assert refused.status_code == 403
        assert (await browser.get("/admin/")).status_code == 200  # still signed in
        page = await browser.get("/admin/")
        done = await browser.post("/admin/sign-out", data={"csrf_token": csrf_of(page.text)})
        assert done.status_code == 303
        assert (await browser.get("/admin/")).status_code == 303


async def test_repeated_failures_lock_the_account_even_for_the_right_password(
    tmp_path: Path, sim: SimAppliance
) -> None:
    config = console_config(tmp_path, sim, max_failed_sign_ins=3, lockout_minutes=10)
    async with serving_console(config) as console:
        async with console.browser() as browser:
            for _ in range(3):
                assert (await sign_in(browser, "olga", "guess")).status_code == 401
            locked = await sign_in(browser, "olga", "operator-password-1")
            assert locked.status_code == 429
            assert "locked" in locked.text
        # The other user is not locked out by olga's failures.
        async with console.browser() as other:
            assert (await sign_in(other, "vic", "viewer-password-1")).status_code == 303


async def test_the_sign_out_form_cannot_be_forged_cross_site_and_next_stays_inside(
    tmp_path: Path, sim: SimAppliance
) -> None:
    async with (
        serving_console(console_config(tmp_path, sim)) as console,
        console.browser() as browser,
    ):
        page = await browser.get("/admin/sign-in?next=https://evil.example/")
        answer = await browser.post(
            "/admin/sign-in",
            data={
                "csrf_token": csrf_of(page.text),
                "username": "vic",
                "password": "viewer-password-1",
                "next": "//evil.example/",
            },
        )
        assert answer.headers["location"] == "/admin/"


async def test_a_forwarded_plain_http_request_is_refused(tmp_path: Path, sim: SimAppliance) -> None:
    async with (
        serving_console(console_config(tmp_path, sim)) as console,
        console.browser() as browser,
    ):
        answer = await browser.get("/admin/sign-in", headers={"X-Forwarded-For": "203.0.113.9"})
        assert answer.status_code == 403
        assert "HTTPS" in answer.text


def test_the_console_on_an_outside_listener_needs_tls_in_front(tmp_path: Path) -> None:
    admin = {"enabled": True, "users": [{"name": "olga", "password_hash": HASHES["olga"]}]}
    outside = "0.0.0.0"  # noqa: S104 (the point of the test)
    with pytest.raises(ConfigurationError, match="needs TLS in front"):
        parse_config({"engine": {"listen_host": outside}, "admin": admin})
    behind_proxy = {"listen_host": outside, "trusted_proxies": ["10.0.0.1"]}
    parse_config({"engine": behind_proxy, "admin": admin})
    insecure = {**admin, "allow_insecure_remote": True}
    parse_config({"engine": {"listen_host": outside}, "admin": insecure})


def test_a_plain_password_in_place_of_its_hash_is_refused_without_echo() -> None:
    admin = {"enabled": True, "users": [{"name": "olga", "password_hash": "hunter2-secret"}]}
    with pytest.raises(ConfigurationError) as caught:
        parse_config({"admin": admin})
    assert "hash-password" in str(caught.value)
    assert "hunter2-secret" not in str(caught.value)


async def test_guesses_sent_all_at_once_do_not_get_past_the_lock_out(
    tmp_path: Path, sim: SimAppliance
) -> None:
    # Twelve wrong passwords and the right one in the same instant: only a few are
    # checked before the name locks (the limit, plus the checks already under way), and
    # the right password does not sign in once the lock is set.
    import asyncio

    from rsbridge.web.admin.signin import PASSWORD_CHECKS

    limit = 3
    config = console_config(tmp_path, sim, max_failed_sign_ins=limit, lockout_minutes=10)
    async with serving_console(config) as console:
        browsers = [console.browser() for _ in range(13)]
        try:
            forms = [await b.get("/admin/sign-in") for b in browsers]
            passwords = ["guess"] * 12 + ["operator-password-1"]

            async def attempt(n: int) -> int:
                data = {
                    "csrf_token": csrf_of(forms[n].text),
                    "username": "olga",
                    "password": passwords[n],
                }
                return (await browsers[n].post("/admin/sign-in", data=data)).status_code

            statuses = await asyncio.gather(*(attempt(n) for n in range(13)))
        finally:
            for browser in browsers:
                await browser.aclose()
        checked_wrong = statuses[:12].count(401)
        assert checked_wrong <= limit + PASSWORD_CHECKS - 1, statuses
        assert statuses[:12].count(429) >= 12 - (limit + PASSWORD_CHECKS - 1)
        if statuses[12] == 303:
            # The right password was checked before the lock: then it came early.
            assert checked_wrong < limit, statuses
            return
        assert statuses[12] == 429, statuses
        async with console.browser() as later:
            assert (await sign_in(later, "olga", "operator-password-1")).status_code == 429
