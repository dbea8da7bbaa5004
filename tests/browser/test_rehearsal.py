"""Rehearsal from the console: its menu links to the simulated appliance, whose page plays a
session step by step; the session then lands on its incident in the simulated ServiceNow."""

from __future__ import annotations

import re

from playwright.sync_api import Dialog, expect

from .conftest import BROWSER_GROUP, SIM_LINK, Stage, Tab

pytestmark = [BROWSER_GROUP]

CUSTOMER = '<b>Ann</b> "Example" & co'
CHAT = "<img src=x onerror=alert(1)> is my printer on fire?"


def test_a_session_rehearsed_from_the_consoles_link_lands_on_its_incident(
    stage: Stage, tab: Tab
) -> None:
    page = tab.page
    dialogs: list[str] = []

    def opened(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", opened)
    tab.signed_in("olga")
    page.get_by_role("link", name=SIM_LINK).click()
    expect(page).to_have_url(f"{stage.sim_url}/sim/")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Rehearsal on the simulated appliance"
    )

    incident = stage.incidents[0]
    page.get_by_label("External key (ticket number)").fill(incident)
    page.get_by_role("button", name="Generate key").click()
    expect(page.get_by_role("status")).to_have_text("Session key generated.")
    expect(page.get_by_label("Session key")).to_have_value(re.compile(r"^\d{7}$"))

    page.get_by_label("Customer name").fill(CUSTOMER)
    page.get_by_role("button", name="Start session").click()
    expect(page.get_by_role("status")).to_have_text("Session started.")
    session = page.get_by_role("region", name=re.compile(r"^Session "))
    expect(session).to_have_count(1)
    lsid = session.get_by_role("heading").inner_text().removeprefix("Session ")
    # What was typed is shown as typed: text, not markup.
    expect(session).to_contain_text(f"Customer: {CUSTOMER}")
    expect(session).to_contain_text(f"external key: {incident}")
    expect(page.locator("main b")).to_have_count(0)

    session.get_by_label("Representative").select_option("jsmith")
    session.get_by_role("button", name="Join").click()
    expect(page.get_by_role("status")).to_have_text("The representative joined.")
    expect(session).to_contain_text("representatives: jsmith")
    session.get_by_label("Chat line").fill(CHAT)
    session.get_by_role("button", name="Send chat line").click()
    expect(page.get_by_role("status")).to_have_text("Chat line added.")
    tab.shot("sim-rehearsal")

    session.get_by_role("button", name="End session").click()
    expect(page.get_by_role("status")).to_contain_text("Session ended")
    expect(session).to_have_count(0)
    ended = page.get_by_role("row").filter(has_text=lsid)
    expect(ended).to_contain_text(CUSTOMER)
    expect(ended).to_contain_text(incident)
    tab.shot("sim-rehearsal-ended")

    stage.wait(lambda: bool(stage.delivered(lsid)), f"session {lsid} reached the instance")
    (record,) = stage.delivered(lsid)
    assert record["u_task"] == stage.snow.demo.ids[incident]

    # Back in the console, the overview shows the delivery.
    def landed() -> bool:
        cells = tab.overview_row("servicenow")
        return cells[2] != "never" and cells[4:] == ["0", "0", "0", "0"]

    stage.wait(landed, "the overview shows the delivery")
    expect(page.get_by_role("row").filter(has_text="servicenow")).to_contain_text("s ago")
    tab.shot("overview")
    assert not dialogs, dialogs


def test_a_step_that_cannot_be_played_says_why_on_the_page(stage: Stage, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{stage.sim_url}/sim/")
    page.get_by_label("Session key").fill("<i>0000000</i>")
    page.get_by_role("button", name="Start session").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("<i>0000000</i>")
    expect(alert).to_contain_text("generate a key first")
    expect(page.locator("main i")).to_have_count(0)
    tab.shot("sim-rehearsal-refused")
