"""``rsbridge demo --target servicenow`` (the default): the whole story, in a few seconds.

1. start the simulated appliance, a simulated ServiceNow instance (demo data, with
   rsbridge's session tables imported from ``rsbridge servicenow tables``) and a simulated
   webhook receiver on loopback ports;
2. start the engine (SQLite store in a temporary directory, intake and actions API on a
   free port, workers) with three integrations: ``servicenow`` (auto-create on join),
   ``audit`` (a jsonl file) and ``webhook`` (JSON POST);
3. technicians generate session keys from open incidents through the actions API (a work
   note is logged on each incident); a closed incident is refused;
4. customers use the keys; other sessions start without a ticket and get an incident
   created as the representative joins, written back to the live session;
5. the sessions end; the appliance's outbound events (begin, members, end, surveys) are
   POSTed to the intake as the appliance does, every one of them twice;
6. when the workers are done, print what arrived where: each session once on its
   incident (session record, journal entries, survey answers), in the file and at the
   webhook, and the appliance calls it took.

The steps every story shares are in :mod:`rsbridge.demo`; this module holds what is
ServiceNow's: the simulated instance, the integration and the table of what arrived.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import Config
from rsbridge.connectors.jsonl import read_deliveries
from rsbridge.connectors.servicenow.schema import Schema, unload_xml
from rsbridge.connectors.servicenow.writes import journal_marker
from rsbridge.demo import (
    DemoSession,
    Keep,
    SideSystem,
    Stage,
    default_sides,
    describe,
    file_counts,
    stage,
    tell,
    webhook_counts,
)
from rsbridge.engine.runtime import Engine
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.serve import serve_in_thread
from rsbridge.sim.servicenow import DemoSeed, SimServiceNowState, seed_demo
from rsbridge.sim.servicenow import create_app as create_servicenow_app
from rsbridge.web.serve import serving

OPEN_INCIDENTS = ("INC0010001", "INC0010002", "INC0010003")
CLOSED_INCIDENT = "INC0010005"
FORGED_TARGET = "INC0010003"
"""The incident a customer names in a start URL of their own: it must not get the session."""
TASK_ATTRIBUTE = "snow_task_id"
"""The custom attribute that names a session's incident."""


@dataclasses.dataclass
class DemoResult:
    """What the demo delivered (for its test)."""

    sessions: list[DemoSession]
    snow: SimServiceNowState
    snow_ids: dict[str, str]
    jsonl: list[dict[str, Any]]
    webhook: list[dict[str, Any]]
    appliance_calls: int
    dead: int
    refused: str
    """The actions API's answer for the closed incident."""
    forged: SupportSession | None = None
    """The session whose customer named :data:`FORGED_TARGET` in ``snow_task_id``."""
    sides: list[SideSystem] = dataclasses.field(default_factory=list)
    """The other systems beside ServiceNow (the default story's Salesforce column)."""


def run_demo(*, sessions: int, seed: int, console: Console, keep: Keep | None = None) -> DemoResult:
    """Run the demo and print what arrived; ``keep``: see :meth:`rsbridge.demo.Stage.kept`."""
    return asyncio.run(run_demo_async(sessions=sessions, seed=seed, console=console, keep=keep))


async def run_demo_async(
    *, sessions: int, seed: int, console: Console, keep: Keep | None = None
) -> DemoResult:
    """:func:`run_demo` in the running event loop (the engine shares it)."""
    if sessions < 1:
        raise ValueError("the demo needs at least one session")
    snow = SimServiceNowState(seed=seed)
    demo = seed_demo(snow)
    snow.import_unload_xml(unload_xml(Schema.build()))
    with (
        stage(seed, sides=default_sides(), keep=keep) as peers,
        serve_in_thread(create_servicenow_app(snow)) as snow_url,
    ):
        console.print(f"[bold]Simulated appliance[/] on {peers.appliance_url}")
        peers.announce(console, "Simulated ServiceNow", snow_url)
        console.print(f"[bold]Simulated webhook receiver[/] on {peers.webhook_url}/hook")
        config = _config(peers, snow_url, demo)
        return await _run(config, peers, snow, demo, sessions, seed, console)


def _config(peers: Stage, snow_url: str, demo: DemoSeed) -> Config:
    user, password = demo.integration
    return peers.config(
        {
            "name": "servicenow",
            "connector": "servicenow",
            "association": {"create_on_join": True},
            "actions": {"assignment": "technician", "log_session_key": True},
            "settings": {
                "instance_url": snow_url,
                "username": user,
                "password": password,
                "create_dynamic_fields": ["description=customer_details"],
            },
        }
    )


async def _run(
    config: Config,
    peers: Stage,
    snow: SimServiceNowState,
    demo: DemoSeed,
    count: int,
    seed: int,
    console: Console,
) -> DemoResult:
    state = peers.appliance
    generator = SessionGenerator(seed)
    async with (
        Engine(config) as engine,
        serving(engine.asgi_app()) as url,
        httpx.AsyncClient(headers={"Authorization": f"Bearer {peers.token}"}, timeout=30) as http,
    ):
        # The app's lifespan runs the workers (and stops them when the server stops).
        console.print(f"[bold]Engine[/] intake {url}/ERSPost, actions {url}/actions/...")
        refused = await http.post(
            f"{url}/actions/session-key",
            json={"integration": "servicenow", "ticket": CLOSED_INCIDENT, "user": "jsmith"},
        )
        console.print(f"session key for closed {CLOSED_INCIDENT}: {refused.json()['message']}")
        story = await tell(
            url,
            engine,
            http,
            state,
            generator,
            integration="servicenow",
            tickets=OPEN_INCIDENTS,
            attribute=TASK_ATTRIBUTE,
            noun="incident",
            forged_target=FORGED_TARGET,
            count=count,
            console=console,
        )
        calls = engine.worker.appliance_calls if engine.worker else 0
        finished, forged, counts = story.sessions, story.forged, story.counts
        result = DemoResult(
            finished,
            snow,
            demo.ids,
            read_deliveries(peers.jsonl_path),
            [r.body for r in peers.receiver.received],
            calls,
            counts.get("dead", 0),
            str(refused.json().get("message", "")),
            forged,
            peers.sides,
        )
        console.print(_table(result))
        console.print(
            f"{len(finished)} sessions: {result.appliance_calls} report fetch call(s) to the "
            f"appliance, {result.dead} dead letters"
        )
        await peers.kept(url)
    return result


def _table(result: DemoResult) -> Table:
    table = Table(title="What arrived")
    sides = [side.title for side in result.sides]
    for column in ("lsid", "incident", "ServiceNow", "audit (jsonl)", "webhook", *sides):
        table.add_column(column)
    jsonl, hooks = file_counts(result.jsonl), webhook_counts(result.webhook)
    numbers = {sys_id: number for number, sys_id in result.snow_ids.items()}
    for item in result.sessions:
        lsid = item.session.lsid
        rows = result.snow.query("u_rs_session", f"u_lsid={lsid}")
        task = rows[0]["u_task"] if rows else ""
        number = numbers.get(task) or next(
            (r["number"] for r in result.snow.query("incident", f"sys_id={task}")), "-"
        )
        if item.ticket is None:
            number += " (created)"
        marker = journal_marker(lsid, "")[:-1]  # any part of this session
        notes = sum(marker in e["value"] for e in result.snow.journal(task)) if task else 0
        answers = len(result.snow.query("u_rs_session_survey", f"u_session={rows[0]['sys_id']}"))
        snow = f"{len(rows)} record, {notes} notes, {answers} answers"
        table.add_row(
            lsid[:8],
            number,
            snow,
            describe(jsonl, lsid),
            describe(hooks, lsid),
            *(side.cell(lsid) for side in result.sides),
        )
    return table
