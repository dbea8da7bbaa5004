"""The simulated appliance's rehearsal page at ``/sim/``: HTML for a browser, JSON for API
clients, forms on the control API's routes (tests/browser/ drives it in a real browser)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from rsbridge.sim.appliance.rehearsal import Rehearsal
from rsbridge.sim.appliance.server import create_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.serve import serve_in_thread

HTML = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def sim() -> Iterator[httpx.Client]:
    state = SimApplianceState.default(seed=4)
    app = create_app(state, rehearsal=Rehearsal(state))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def _form(client: httpx.Client, path: str, **fields: str) -> httpx.Response:
    # As a browser sends a form: urlencoded, even when it has no fields, with its Origin.
    headers = {
        **HTML,
        "Origin": str(client.base_url).rstrip("/"),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return client.post(path, content=urlencode(fields), headers=headers)


def test_an_api_client_still_gets_json_and_a_browser_the_page(sim: httpx.Client) -> None:
    key = sim.post("/sim/keys", json={"external_key": "INC0010001"}).json()["key"]
    lsid = sim.post("/sim/sessions", json={"key": key, "customer": "Ann"}).json()["lsid"]
    listing = sim.get("/sim/")
    assert listing.headers["content-type"] == "application/json"
    (row,) = listing.json()["sessions"]
    assert row["lsid"] == lsid and row["customer"] == "Ann" and row["ended"] is False
    assert row["external_key"] == "INC0010001"
    page = sim.get("/sim/", headers=HTML)
    assert page.headers["content-type"].startswith("text/html")
    assert f"Session {lsid}" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_forms_play_the_steps_and_answer_with_a_redirect_to_the_page(
    sim: httpx.Client,
) -> None:
    made = _form(sim, "/sim/keys", external_key="INC0010002", queue="general")
    assert made.status_code == 303
    location = made.headers["location"]
    assert location.startswith("/sim/?done=key&key=")
    key = location.rsplit("=", 1)[1]
    page = sim.get(location, headers=HTML)
    assert f'value="{key}"' in page.text and "Session key generated." in page.text

    started = _form(sim, "/sim/sessions", key=key, customer="<script>x()</script>")
    assert started.status_code == 303
    (row,) = sim.get("/sim/").json()["sessions"]
    lsid = row["lsid"]
    assert _form(sim, f"/sim/sessions/{lsid}/join", rep="jsmith").status_code == 303
    chat = _form(sim, f"/sim/sessions/{lsid}/chat", text="hello", **{"from": "rep"})
    assert chat.status_code == 303
    assert _form(sim, f"/sim/sessions/{lsid}/end").status_code == 303
    (row,) = sim.get("/sim/").json()["sessions"]
    assert row["ended"] is True and row["representatives"] == ["jsmith"]
    listing = sim.get("/sim/", headers=HTML).text
    assert "&lt;script&gt;x()&lt;/script&gt;" in listing
    assert "<script>" not in listing


def test_a_step_refused_from_a_form_shows_the_page_with_the_reason_escaped(
    sim: httpx.Client,
) -> None:
    answer = _form(sim, "/sim/sessions", key="<b>nope</b>")
    assert answer.status_code == 400
    assert "&lt;b&gt;nope&lt;/b&gt;" in answer.text and "<b>nope" not in answer.text
    assert 'role="alert"' in answer.text


def test_the_page_does_not_echo_a_key_it_never_issued(sim: httpx.Client) -> None:
    page = sim.get("/sim/?done=key&key=%22%3E%3Cscript%3E", headers=HTML).text
    assert 'id="key" name="key" value=""' in page
    assert "<script>" not in page


def test_a_cross_site_form_is_refused(sim: httpx.Client) -> None:
    answer = sim.post(
        "/sim/keys", data={"external_key": "INC1"}, headers={"Origin": "https://evil.example"}
    )
    assert answer.status_code == 403
    assert sim.get("/sim/").json()["sessions"] == []
    assert not sim.get("/sim/outbound").json()["recipients"]
