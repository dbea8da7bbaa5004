"""``rsbridge demo``: the whole story on simulated peers, in a few seconds.

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
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from rsbridge.appliance.events import MEMBER_ADDED
from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import Config, parse_config
from rsbridge.connectors.jsonl import read_deliveries
from rsbridge.connectors.servicenow.schema import Schema, unload_xml
from rsbridge.engine.runtime import Engine
from rsbridge.sim.appliance.emitter import OutboundEventEmitter, Recipient, events_for_session
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.appliance.server import create_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.serve import serve_in_thread
from rsbridge.sim.servicenow import DemoSeed, SimServiceNowState, seed_demo
from rsbridge.sim.servicenow import create_app as create_servicenow_app
from rsbridge.sim.webhook import WebhookReceiverState
from rsbridge.sim.webhook import create_app as create_webhook_app
from rsbridge.web.serve import serving

OPEN_INCIDENTS = ("INC0010001", "INC0010002", "INC0010003")
CLOSED_INCIDENT = "INC0010005"
FORGED_TARGET = "INC0010003"
"""The incident a customer names in a start URL of their own: it must not get the session."""


@dataclasses.dataclass
class DemoSession:
    """One session of the demo: how it got its incident."""

    session: SupportSession
    incident: str | None
    """The incident number its key was generated from, None for an auto-created one."""


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


def run_demo(*, sessions: int, seed: int, console: Console) -> DemoResult:
    """Run the demo and print what arrived."""
    return asyncio.run(run_demo_async(sessions=sessions, seed=seed, console=console))


async def run_demo_async(*, sessions: int, seed: int, console: Console) -> DemoResult:
    """:func:`run_demo` in the running event loop (the engine shares it)."""
    if sessions < 1:
        raise ValueError("the demo needs at least one session")
    state = SimApplianceState.default(seed=seed)
    snow = SimServiceNowState(seed=seed)
    demo = seed_demo(snow)
    snow.import_unload_xml(unload_xml(Schema.build()))
    receiver = WebhookReceiverState()
    with (
        serve_in_thread(create_app(state)) as appliance_url,
        serve_in_thread(create_servicenow_app(snow)) as snow_url,
        serve_in_thread(create_webhook_app(receiver)) as webhook_url,
        tempfile.TemporaryDirectory(prefix="rsbridge-demo-") as workdir,
    ):
        console.print(f"[bold]Simulated appliance[/] on {appliance_url}")
        console.print(f"[bold]Simulated ServiceNow[/] on {snow_url}")
        console.print(f"[bold]Simulated webhook receiver[/] on {webhook_url}/hook")
        token = secrets.token_urlsafe(24)
        config = _config(
            Path(workdir),
            state,
            appliance_url.removeprefix("http://"),
            snow_url,
            demo,
            f"{webhook_url}/hook",
            token,
        )
        return await _run(config, state, snow, demo, receiver, sessions, seed, token, console)


def _config(
    workdir: Path,
    state: SimApplianceState,
    host: str,
    snow_url: str,
    demo: DemoSeed,
    hook: str,
    token: str,
) -> Config:
    account = state.accounts[0]
    user, password = demo.integration
    return parse_config(
        {
            "engine": {"store": str(workdir / "rsbridge.db")},
            "appliances": [
                {
                    "id": "default",
                    "host": host,
                    "client_id": account.client_id,
                    "client_secret": account.client_secret,
                    "use_plain_http": True,
                }
            ],
            "actions": {"enabled": True, "tokens": [token], "public_url": "http://127.0.0.1"},
            # Keys and write-backs are signed: the association trusts them, not a value
            # a customer typed into a start URL.
            "signing": {"secret": secrets.token_hex(32)},
            "integrations": [
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
                },
                {
                    "name": "audit",
                    "connector": "jsonl",
                    "settings": {"path": str(workdir / "deliveries.jsonl")},
                },
                {"name": "webhook", "connector": "webhook", "settings": {"url": hook}},
            ],
        }
    )


async def _run(
    config: Config,
    state: SimApplianceState,
    snow: SimServiceNowState,
    demo: DemoSeed,
    receiver: WebhookReceiverState,
    count: int,
    seed: int,
    token: str,
    console: Console,
) -> DemoResult:
    generator = SessionGenerator(seed)
    finished: list[DemoSession] = []
    async with (
        Engine(config) as engine,
        serving(engine.asgi_app()) as url,
        httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
    ):
        # The app's lifespan runs the workers (and stops them when the server stops).
        console.print(f"[bold]Engine[/] intake {url}/ERSPost, actions {url}/actions/...")
        refused = await http.post(
            f"{url}/actions/session-key",
            json={"integration": "servicenow", "ticket": CLOSED_INCIDENT, "user": "jsmith"},
        )
        console.print(f"session key for closed {CLOSED_INCIDENT}: {refused.json()['message']}")
        for n in range(count):
            if n % 3 == 2:
                finished.append(await _auto_created(url, engine, state, generator, console))
            else:
                incident = OPEN_INCIDENTS[(n - n // 3) % len(OPEN_INCIDENTS)]
                finished.append(await _keyed(url, http, state, generator, incident, console))
        forged = _forged(state, generator)
        recipient = Recipient(f"{url}/ERSPost?appliance=default", retry_interval=0.2)
        async with OutboundEventEmitter([recipient]) as emitter:
            for session in [*(item.session for item in finished), forged]:
                for event in events_for_session(session, state.appliance_id) * 2:
                    emitter.enqueue(event)
            await emitter.run_until_idle()
        console.print(
            f"{len(finished)} sessions ended; {recipient.sent} outbound events (each sent "
            "twice) acknowledged by the intake"
        )
        counts = await engine.wait_idle()
        calls = engine.worker.appliance_calls if engine.worker else 0
        console.print(
            f"session {forged.lsid[:8]} was started from a URL whose customer set "
            f"snow_task_id={FORGED_TARGET} (unsigned): refused, it got an incident of its own"
        )
    jsonl = read_deliveries(Path(config.integrations[1].connector_settings().path))  # type: ignore[attr-defined]
    result = DemoResult(
        finished,
        snow,
        demo.ids,
        jsonl,
        [r.body for r in receiver.received],
        calls,
        counts.get("dead", 0),
        str(refused.json().get("message", "")),
        forged,
    )
    console.print(_table(result))
    console.print(
        f"{len(finished)} sessions: {result.appliance_calls} report fetch call(s) to the "
        f"appliance, {result.dead} dead letters"
    )
    return result


async def _keyed(
    url: str,
    http: httpx.AsyncClient,
    state: SimApplianceState,
    generator: SessionGenerator,
    incident: str,
    console: Console,
) -> DemoSession:
    """A technician generates a key from ``incident``; a customer uses it; it ends."""
    answer = await http.post(
        f"{url}/actions/session-key",
        json={"integration": "servicenow", "ticket": incident, "user": "jsmith"},
    )
    body = answer.json()
    if answer.status_code != 200:
        raise RuntimeError(f"the actions API refused a key for {incident}: {body}")
    custom = dict(state.session_keys[body["short_key"]].custom)
    console.print(f"session key {body['short_key']} generated from {incident}")
    lsid = state.start_session(body["short_key"])
    external_key = custom.pop("external_key", None)
    report = generator.session_from_key(external_key, custom)
    session = state.complete_session(lsid, dataclasses.replace(report, lsid=lsid))
    return DemoSession(session, incident)


async def _auto_created(
    url: str,
    engine: Engine,
    state: SimApplianceState,
    generator: SessionGenerator,
    console: Console,
) -> DemoSession:
    """A session without a ticket: the rep joins, an incident is created and written back."""
    key = state.generate_session_key(queue_id="general")
    lsid = state.start_session(key.short_key)
    form = {
        "event": MEMBER_ADDED,
        "version": "1",
        "timestamp": str(int(time.time())),
        "appliance_id": state.appliance_id,
        "lsid": lsid,
        "type": "representative",
        "username": "jsmith",
    }
    async with httpx.AsyncClient() as appliance_side:
        answer = await appliance_side.post(f"{url}/ERSPost?appliance=default", data=form)
        answer.raise_for_status()
    await engine.wait_idle()
    custom = dict(state.active_sessions[lsid].custom)
    console.print(
        f"session {lsid[:8]} had no ticket: incident created on join, "
        f"snow_task_id={custom.get('snow_task_id', '(none)')} written back"
    )
    report = generator.session_from_key(None, custom)
    session = state.complete_session(lsid, dataclasses.replace(report, lsid=lsid))
    return DemoSession(session, None)


def _forged(state: SimApplianceState, generator: SessionGenerator) -> SupportSession:
    """A customer starts a session from a public start URL of their own making, naming
    someone else's incident in ``session.custom.snow_task_id``; it ends."""
    custom = {"snow_task_id": FORGED_TARGET}
    key = state.generate_session_key(queue_id="general", custom=custom.items())
    lsid = state.start_session(key.short_key)
    report = generator.session_from_key(None, custom)
    return state.complete_session(lsid, dataclasses.replace(report, lsid=lsid))


def _table(result: DemoResult) -> Table:
    table = Table(title="What arrived")
    for column in ("lsid", "incident", "ServiceNow", "audit (jsonl)", "webhook"):
        table.add_column(column)
    jsonl = Counter((d.get("lsid") or d["key"].split("/")[1], d["kind"]) for d in result.jsonl)
    hooks = Counter((d.get("lsid"), d.get("kind")) for d in result.webhook)
    numbers = {sys_id: number for number, sys_id in result.snow_ids.items()}

    def describe(counts: Counter[tuple[Any, Any]], lsid: str) -> str:
        parts = [
            f"{n} {kind.replace('session_report', 'report')}"
            for (who, kind), n in sorted(counts.items(), key=str)
            if who == lsid
        ]
        return ", ".join(parts) or "-"

    for item in result.sessions:
        lsid = item.session.lsid
        rows = result.snow.query("u_rs_session", f"u_lsid={lsid}")
        task = rows[0]["u_task"] if rows else ""
        number = numbers.get(task) or next(
            (r["number"] for r in result.snow.query("incident", f"sys_id={task}")), "-"
        )
        if item.incident is None:
            number += " (created)"
        notes = sum(lsid in e["value"] for e in result.snow.journal(task)) if task else 0
        answers = len(result.snow.query("u_rs_session_survey", f"u_session={rows[0]['sys_id']}"))
        snow = f"{len(rows)} record, {notes} notes, {answers} answers"
        table.add_row(lsid[:8], number, snow, describe(jsonl, lsid), describe(hooks, lsid))
    return table
