"""``rsbridge demo``: the full pipeline on the embedded defaults, in a few seconds.

1. start the simulated appliance and a simulated webhook receiver on loopback ports;
2. start the engine (SQLite store in a temporary directory, intake on a free port,
   workers) with two integrations: ``audit`` (jsonl file) and ``webhook`` (JSON POST);
3. generate session keys through the real client (Command API), each carrying a ticket
   number as external key and custom attribute, as a ticketing system would;
4. let simulated customers run sessions from those keys; the appliance's outbound events
   (begin, members, end, surveys) are POSTed to the intake as the appliance does;
5. wait until the workers have fetched the reports (batched), rendered them and
   delivered them, then print what arrived where and the appliance calls it took.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rsbridge.appliance.client import ApplianceClient
from rsbridge.appliance.command import Queue
from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import Config, parse_config
from rsbridge.connectors.jsonl import read_deliveries
from rsbridge.engine.runtime import Engine
from rsbridge.sim.appliance.emitter import OutboundEventEmitter, Recipient, events_for_session
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.appliance.server import create_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.serve import serve_in_thread
from rsbridge.sim.webhook import WebhookReceiverState
from rsbridge.sim.webhook import create_app as create_webhook_app
from rsbridge.web.app import create_app as create_engine_app
from rsbridge.web.serve import serving


@dataclasses.dataclass
class DemoResult:
    """What the demo delivered (for its test)."""

    sessions: list[SupportSession]
    jsonl: list[dict[str, Any]]
    webhook: list[dict[str, Any]]
    appliance_calls: int
    dead: int


def run_demo(*, sessions: int, seed: int, console: Console) -> DemoResult:
    """Run the demo and print what arrived."""
    if sessions < 1:
        raise ValueError("the demo needs at least one session")
    state = SimApplianceState.default(seed=seed)
    receiver = WebhookReceiverState()
    with (
        serve_in_thread(create_app(state)) as appliance_url,
        serve_in_thread(create_webhook_app(receiver)) as webhook_url,
        tempfile.TemporaryDirectory(prefix="rsbridge-demo-") as workdir,
    ):
        console.print(f"[bold]Simulated appliance[/] on {appliance_url}")
        console.print(f"[bold]Simulated webhook receiver[/] on {webhook_url}/hook")
        config = _config(
            Path(workdir), state, appliance_url.removeprefix("http://"), f"{webhook_url}/hook"
        )
        return asyncio.run(_run(config, state, receiver, sessions, seed, console))


def _config(workdir: Path, state: SimApplianceState, host: str, hook: str) -> Config:
    account = state.accounts[0]
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
            "integrations": [
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
    receiver: WebhookReceiverState,
    count: int,
    seed: int,
    console: Console,
) -> DemoResult:
    generator = SessionGenerator(seed)
    appliance = config.appliances[0]
    finished: list[SupportSession] = []
    async with (
        Engine(config) as engine,
        serving(create_engine_app(engine.intake, engine.store)) as intake_url,
    ):
        engine.start()
        console.print(
            f"[bold]Engine[/] intake on {intake_url}/ERSPost, store {config.engine.store}"
        )
        async with ApplianceClient(
            appliance.host,
            appliance.client_id,
            appliance.client_secret.get_secret_value(),
            scheme="http",
        ) as client:
            info = await client.verify()
            console.print(f"appliance API {info.api_version}: credentials and permissions OK")
            for n in range(1, count + 1):
                ticket = f"INC{10000 + n:07d}"
                key = await client.generate_session_key(
                    queue_id=Queue.GENERAL,
                    ttl=1800,
                    external_key=ticket,
                    custom_attributes={"ticket_id": ticket},
                )
                lsid = state.start_session(key.short_key)
                report = generator.session_from_key(ticket, {"ticket_id": ticket})
                finished.append(
                    state.complete_session(lsid, dataclasses.replace(report, lsid=lsid))
                )
        console.print(f"{count} sessions run from generated keys; the appliance sends their events")
        recipient = Recipient(f"{intake_url}/ERSPost?appliance=default", retry_interval=0.2)
        async with OutboundEventEmitter([recipient]) as emitter:
            for session in finished:
                for event in events_for_session(session, state.appliance_id):
                    emitter.enqueue(event)
            await emitter.run_until_idle()
        console.print(f"{recipient.sent} outbound events acknowledged by the intake")
        counts = await engine.wait_idle()
        calls = engine.worker.appliance_calls if engine.worker else 0
    jsonl = read_deliveries(Path(config.integrations[0].connector_settings().path))  # type: ignore[attr-defined]
    result = DemoResult(
        finished, jsonl, [r.body for r in receiver.received], calls, counts.get("dead", 0)
    )
    console.print(_table(result))
    console.print(
        f"{len(finished)} sessions: {result.appliance_calls} report fetch call(s), "
        f"{result.dead} dead letters"
    )
    return result


def _table(result: DemoResult) -> Table:
    table = Table(title="What arrived")
    for column in ("lsid", "ticket", "audit (jsonl)", "webhook"):
        table.add_column(column)
    jsonl = Counter((d.get("lsid") or d["key"].split("/")[1], d["kind"]) for d in result.jsonl)
    hooks = Counter((d.get("lsid"), d.get("kind")) for d in result.webhook)

    def describe(counts: Counter[tuple[Any, Any]], lsid: str) -> str:
        parts = [f"{n} {kind}" for (who, kind), n in sorted(counts.items(), key=str) if who == lsid]
        return ", ".join(parts) or "-"

    for s in result.sessions:
        table.add_row(
            s.lsid[:8], s.external_key or "-", describe(jsonl, s.lsid), describe(hooks, s.lsid)
        )
    return table
