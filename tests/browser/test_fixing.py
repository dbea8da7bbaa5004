"""Fixing from the console in a real browser: an outage of the ServiceNow instance turns a
session into a dead letter, which an operator retries once the instance is back; template
preview, checks and the session page.

The module's engine gives up on a job after two attempts, so an outage makes dead letters
at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Locator, expect

from .conftest import BROWSER_GROUP, Stage, StageOptions, Tab, staged

pytestmark = [BROWSER_GROUP]


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    """This module's stage: ServiceNow jobs are dead after two failed attempts."""
    with staged(tmp_path_factory.mktemp("stage"), StageOptions(retry_limit=2)) as running:
        yield running


def dead_letter(stage: Stage, tab: Tab) -> str:
    """A session that ended while the instance was down, dead on the overview; its lsid.
    The instance is back up when this returns."""
    before = dead_count(tab)
    stage.snow.state.down = True
    try:
        lsid = stage.rehearse(stage.incidents[1])
        stage.wait(
            lambda: dead_count(tab) == before + 1, "the session's job is dead on the overview"
        )
    finally:
        stage.snow.state.down = False
    assert not stage.delivered(lsid)
    return lsid


def dead_count(tab: Tab) -> int:
    """The overview's dead letters of the servicenow integration (no row yet: none)."""
    cells = tab.overview_row("servicenow")
    return int(cells[7]) if cells else 0


def delivered_session(stage: Stage) -> str:
    """A session rehearsed and delivered to its incident; its lsid."""
    lsid = stage.rehearse(stage.incidents[2])
    stage.wait(lambda: bool(stage.delivered(lsid)), f"session {lsid} reached the instance")
    return lsid


def choose(field: Locator, value: str) -> None:
    """Pick ``value`` in a select, or type it into an input."""
    if field.evaluate("e => e.tagName") == "SELECT":
        field.select_option(value)
    else:
        field.fill(value)


def test_a_session_ended_while_the_instance_is_down_shows_as_dead(stage: Stage, tab: Tab) -> None:
    tab.signed_in("olga")
    dead_letter(stage, tab)
    cells = tab.overview_row("servicenow")
    assert cells[:2] == ["default", "servicenow"]
    assert "503" in cells[3], cells
    expect(tab.page.locator("td.bad")).to_have_count(1)
    tab.shot("overview-dead")


def test_retry_all_after_the_outage_lands_every_dead_letter(stage: Stage, tab: Tab) -> None:
    page = tab.page
    tab.signed_in("olga")
    lsid = dead_letter(stage, tab)
    tab.open("/admin/dead?integration=servicenow")
    expect(page.get_by_role("heading", name="Dead letters", level=1)).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=lsid)).to_have_count(1)
    tab.shot("dead-letters")
    page.get_by_role("button", name="Retry all matching").click()
    expect(page).to_have_url(re.compile(r"/admin/dead\?.*notice="))
    stage.wait(lambda: bool(stage.delivered(lsid)), f"session {lsid} landed after the retry")
    stage.wait(lambda: dead_count(tab) == 0, "no dead letter is left")
    tab.open("/admin/dead")
    expect(page.get_by_role("row").filter(has_text=lsid)).to_have_count(0)
    # The retry is in the audit log: who did it.
    tab.open("/admin/audit", "audit-log")
    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="olga").first).to_be_visible()


def test_a_viewer_sees_no_retry_buttons_and_cannot_retry(
    stage: Stage, tab: Tab, new_tab: Callable[[Stage], Tab]
) -> None:
    tab.signed_in("olga")
    lsid = dead_letter(stage, tab)
    viewer = new_tab(stage)
    viewer.signed_in("vic")
    viewer.page.goto("/admin/dead")
    expect(viewer.page.get_by_role("heading", name="Dead letters", level=1)).to_be_visible()
    expect(viewer.page.get_by_role("row").filter(has_text=lsid)).to_have_count(1)
    expect(viewer.page.get_by_role("button", name="Retry all matching")).to_have_count(0)
    expect(viewer.page.get_by_role("button", name="Retry", exact=True)).to_have_count(0)
    viewer.shot("dead-letters-viewer")
    token = viewer.page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert token
    refused = viewer.page.request.post("/admin/dead/retry-all", form={"csrf_token": token})
    assert refused.status == 403
    assert "operator" in refused.text()
    # The operator sees both buttons on the same page, and clears it for the next test.
    tab.open("/admin/dead")
    row = tab.page.get_by_role("row").filter(has_text=lsid)
    expect(row.get_by_role("button", name="Retry", exact=True)).to_have_count(1)
    tab.page.get_by_role("button", name="Retry all matching").click()
    stage.wait(lambda: bool(stage.delivered(lsid)), f"session {lsid} landed after the retry")


def test_a_template_preview_shows_text_and_html_side_by_side(stage: Stage, tab: Tab) -> None:
    page = tab.page
    lsid = delivered_session(stage)
    tab.signed_in("vic")  # a viewer may preview
    tab.open("/admin/templates")
    expect(page.get_by_role("heading", name="Templates", level=1)).to_be_visible()
    choose(page.locator('[name="integration"]'), "servicenow")
    page.locator('[name="lsid"]').fill(lsid)
    choose(page.locator('[name="part"]'), "all")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("My printer is on fire.").first).to_be_visible()
    frame = page.locator("iframe[sandbox]")
    expect(frame).to_have_count(1)
    assert "allow-scripts" not in (frame.get_attribute("sandbox") or "")
    tab.shot("templates")


def test_run_check_shows_each_verdict(stage: Stage, tab: Tab) -> None:
    page = tab.page
    tab.signed_in("olga")
    tab.open("/admin/checks")
    expect(page.get_by_role("heading", name="Checks", level=1)).to_be_visible()
    page.get_by_role("button", name="Run check").first.click()
    verdicts = page.locator("table tbody tr")
    expect(verdicts.first).to_be_visible()
    assert verdicts.count() >= 1
    tab.shot("checks")


def test_a_session_is_found_and_its_page_links_to_its_incident(stage: Stage, tab: Tab) -> None:
    page = tab.page
    lsid = delivered_session(stage)
    tab.signed_in("vic")
    tab.open("/admin/sessions")
    expect(page.get_by_role("heading", name="Sessions", level=1)).to_be_visible()
    page.locator('[name="lsid"]').fill(lsid)
    page.get_by_role("button", name="Search").click()
    tab.shot("sessions")
    page.get_by_role("link", name=re.compile(re.escape(lsid))).first.click()
    expect(page.get_by_role("heading", name=f"Session {lsid}", level=1)).to_be_visible()
    # The ticket it landed on, as a link into the instance.
    expect(page.locator(f'a[href^="{stage.snow.url}"]').first).to_be_visible()
    tab.shot("session")


def test_the_configuration_page_masks_every_secret(stage: Stage, tab: Tab) -> None:
    page = tab.page
    tab.signed_in("vic")
    tab.open("/admin/config")
    expect(page.get_by_role("heading", name="Configuration", level=1)).to_be_visible()
    text = page.content()
    _, password = stage.snow.demo.integration
    assert password not in text
    assert stage.appliance.accounts[0].client_secret not in text
    tab.shot("configuration")
