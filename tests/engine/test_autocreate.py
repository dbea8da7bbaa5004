"""Auto-create on join and association fall-through, end to end over real HTTP."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rsbridge.appliance.events import END, MEMBER_ADDED
from rsbridge.appliance.report_model import NamedRef, SupportSession
from rsbridge.config import AssociationConfig
from rsbridge.connectors.base import Connector, Ticket
from rsbridge.connectors.jsonl import JsonlConnector, read_deliveries
from rsbridge.engine.association import judge_session, resolve_ticket
from rsbridge.engine.autocreate import join_filter_refusal
from rsbridge.engine.runtime import Engine
from rsbridge.engine.store.base import JobFilter
from rsbridge.errors import TicketNotFoundError
from rsbridge.sim.appliance.server import create_app as create_sim_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.serve import serve_in_thread
from rsbridge.web.app import create_app
from rsbridge.web.serve import serving

from .conftest import SimAppliance, drained, engine_config


def _integration(tmp_path: Path, **association: Any) -> dict[str, Any]:
    return {
        "name": "audit",
        "connector": "jsonl",
        "association": {"create_on_join": True, **association},
        "settings": {"path": str(tmp_path / "deliveries.jsonl"), "fsync": False},
    }


async def _post(url: str, event: str, lsid: str, **extra: str) -> None:
    form = {
        "event": event,
        "version": "1",
        "timestamp": str(int(time.time())),
        "lsid": lsid,
        **extra,
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{url}/ERSPost?appliance=default", data=form)
    assert response.status_code == 200, response.text


async def test_a_join_creates_the_ticket_and_the_end_lands_on_it(
    tmp_path: Path, sim: SimAppliance
) -> None:
    config = engine_config(tmp_path, sim, integrations=[_integration(tmp_path)])
    key = sim.state.generate_session_key(queue_id="general")
    lsid = sim.state.start_session(key.short_key)
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        # Two joins (the rep, then the customer): one ticket.
        await _post(url, MEMBER_ADDED, lsid, type="representative", username="jsmith")
        await _post(url, MEMBER_ADDED, lsid, type="customer", name="Ann")
        await drained(engine)
        # The ticket went back to the live session as its external key.
        assert sim.state.active_sessions[lsid].custom.get("external_key") == "JSONL-1"
        sim.state.complete_session(lsid)
        await _post(url, END, lsid)
        await drained(engine)
        jobs = await engine.store.list_jobs(JobFilter(limit=10))
    records = read_deliveries(tmp_path / "deliveries.jsonl")
    assert [r["kind"] for r in records] == ["ticket", "session_report"]
    assert records[1]["ticket"]["id"] == "JSONL-1"
    assert len(jobs) == 3


async def test_the_join_filters_skip_sessions_and_say_why(
    tmp_path: Path, sim: SimAppliance
) -> None:
    config = engine_config(
        tmp_path,
        sim,
        integrations=[_integration(tmp_path, create_requires_custom_fields=["customer_email"])],
    )
    key = sim.state.generate_session_key(queue_id="general")
    lsid = sim.state.start_session(key.short_key)
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        await _post(url, MEMBER_ADDED, lsid)
        await drained(engine)
        jobs = await engine.store.list_jobs(JobFilter(limit=10))
    assert not (tmp_path / "deliveries.jsonl").exists() or not read_deliveries(
        tmp_path / "deliveries.jsonl"
    )
    assert "required custom fields are empty: customer_email" in (jobs[0].last_error or "")
    assert "external_key" not in sim.state.active_sessions[lsid].custom


def test_join_filters() -> None:
    session = SupportSession("a" * 32, public_site=NamedRef("Default", "1"))
    rules = AssociationConfig(create_for_portals=["Partners"])
    assert "not in create_for_portals" in (join_filter_refusal(session, rules) or "")
    assert join_filter_refusal(session, AssociationConfig(create_for_portals=["default"])) is None
    jump = SupportSession("b" * 32, jumpoint=NamedRef("Network01"))
    assert "unattended" in (join_filter_refusal(jump, AssociationConfig()) or "")
    assert join_filter_refusal(jump, AssociationConfig(create_unattended=True)) is None
    assert "attended" in (
        join_filter_refusal(session, AssociationConfig(create_attended=False)) or ""
    )


class _Only(JsonlConnector):
    """jsonl, but only the ticket numbered ``INC1`` exists."""

    async def find_ticket(self, reference: str, *, source: str = "external_key") -> Ticket:
        if reference != "INC1":
            raise TicketNotFoundError(f"no ticket {reference}")
        return Ticket("id-1", "INC1")


async def test_a_reference_that_names_nothing_falls_through_to_the_next(tmp_path: Path) -> None:
    connector: Connector = _Only(
        JsonlConnector.validate_settings({"path": str(tmp_path / "x.jsonl")})
    )
    session = SupportSession("c" * 32, external_key="INC1")
    session.custom_attributes = []
    rules = AssociationConfig(ticket_from=["custom:snow_task_id", "external_key"], trust="any")
    found = await resolve_ticket(
        session, rules, connector, judge_session(session, rules, "a", "x", None)
    )
    assert found.ticket == Ticket("id-1", "INC1")
    stale = SupportSession("d" * 32, external_key="INC9")
    missing = await resolve_ticket(
        stale, rules, connector, judge_session(stale, rules, "a", "x", None)
    )
    assert missing.ticket is None
    assert "external_key 'INC9': no ticket INC9" in missing.why()
    await connector.aclose()


class _RefuseOnce:
    """The appliance answers the first ``set_session_attributes`` with a 503."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Commands come as a query or a form body: read the body, then replay it.
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        wanted = b"set_session_attributes"
        if not self.refused and (wanted in scope.get("query_string", b"") or wanted in body):
            self.refused += 1
            await PlainTextResponse("busy", status_code=503)(scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


async def test_a_failed_write_back_is_done_by_the_retry(tmp_path: Path) -> None:
    state = SimApplianceState.default(seed=3)
    account = state.accounts[0]
    app = _RefuseOnce(create_sim_app(state, rate_per_second=1000, rate_per_hour=10**6))
    with serve_in_thread(app) as sim_url:
        sim = SimAppliance(
            state, sim_url.removeprefix("http://"), account.client_id, account.client_secret
        )
        config = engine_config(tmp_path, sim, integrations=[_integration(tmp_path)])
        key = state.generate_session_key(queue_id="general")
        lsid = state.start_session(key.short_key)
        async with (
            Engine(config) as engine,
            serving(create_app(engine.intake, engine.store)) as url,
        ):
            engine.start()
            await _post(url, MEMBER_ADDED, lsid, type="representative")
            await drained(engine)
    assert app.refused == 1
    assert state.active_sessions[lsid].custom.get("external_key") == "JSONL-1"
    records = read_deliveries(tmp_path / "deliveries.jsonl")
    assert [r["kind"] for r in records] == ["ticket"]
