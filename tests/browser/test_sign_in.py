"""Signing in to the console in a real browser: passwords, lock-out, sign-out, CSRF, roles."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import expect

from .conftest import BROWSER_GROUP, SIM_LINK, Stage, Tab

pytestmark = [BROWSER_GROUP]


def test_a_stranger_is_sent_to_sign_in_and_signs_in_and_out(tab: Tab) -> None:
    page = tab.page
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/sign-in\?next=%2Fadmin%2F$"))
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(page.get_by_label("User name")).to_be_focused()
    tab.shot("sign-in")

    tab.sign_in("olga")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(page.get_by_text("olga (operator)")).to_be_visible()
    expect(page.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("link", name=SIM_LINK)).to_be_visible()
    tab.shot("overview-empty")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/sign-in"))


def test_a_wrong_password_is_refused_and_says_so(tab: Tab) -> None:
    page = tab.page
    tab.sign_in("olga", "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    tab.shot("sign-in-refused")
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/sign-in"))


def test_repeated_failures_lock_the_account_even_for_the_right_password(
    make_stage: Callable[..., Stage], new_tab: Callable[[Stage], Tab]
) -> None:
    stage = make_stage(max_failed_sign_ins=3)
    tab = new_tab(stage)
    for _ in range(3):
        tab.sign_in("olga", "guess")
        expect(tab.page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    tab.sign_in("olga")
    expect(tab.page.get_by_role("alert")).to_contain_text("locked")
    expect(tab.page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    tab.shot("sign-in-locked")
    # Another person's account is not locked by olga's failures.
    other = new_tab(stage)
    other.signed_in("vic")


def test_a_form_post_without_its_csrf_token_is_refused(tab: Tab) -> None:
    page = tab.page
    tab.signed_in("olga")
    # The browser's own cookie rides along (same context); only the token is wrong.
    forged = page.request.post("/admin/sign-out", form={"csrf_token": "forged"})
    assert forged.status == 403
    assert "security token" in forged.text()
    missing = page.evaluate(
        """async () => {
            const answer = await fetch("/admin/sign-out", {
                method: "POST",
                headers: {"Content-Type": "application/x-www-form-urlencoded"},
                body: "",
            });
            return answer.status;
        }"""
    )
    assert missing == 403
    page.reload()
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()


def test_a_viewer_signs_in_as_a_viewer(tab: Tab) -> None:
    tab.signed_in("vic")
    expect(tab.page.get_by_text("vic (viewer)")).to_be_visible()
