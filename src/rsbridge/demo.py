"""``rsbridge demo``: the appliance side end to end, on the simulator, in a few seconds.

1. start the simulated appliance on a loopback port;
2. generate session keys through the real client (Command API), each carrying a
   ticket number as external key and custom attribute, as a ticketing system would;
3. let simulated customers use the keys and run realistic sessions;
4. fetch the finished sessions' reports in one batched Reporting API call and parse
   them as they stream in, with a progress bar.
"""

from __future__ import annotations

import asyncio
import dataclasses

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from rsbridge.appliance.client import ApplianceClient
from rsbridge.appliance.command import Queue
from rsbridge.appliance.report_model import EventType, SupportSession
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.appliance.server import create_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.serve import serve_in_thread


def run_demo(*, sessions: int, seed: int, console: Console) -> list[SupportSession]:
    """Run the demo and print what arrived; return the parsed sessions."""
    if sessions < 1:
        raise ValueError("the demo needs at least one session")
    state = SimApplianceState.default(seed=seed)
    account = state.accounts[0]
    with serve_in_thread(create_app(state)) as base_url:
        console.print(f"[bold]Simulated appliance[/] listening on {base_url}")
        host = base_url.removeprefix("http://")
        return asyncio.run(
            _run(state, host, account.client_id, account.client_secret, sessions, seed, console)
        )


async def _run(
    state: SimApplianceState,
    host: str,
    client_id: str,
    client_secret: str,
    count: int,
    seed: int,
    console: Console,
) -> list[SupportSession]:
    generator = SessionGenerator(seed)
    async with ApplianceClient(host, client_id, client_secret, scheme="http") as appliance:
        info = await appliance.verify()
        console.print(
            f"API {info.api_version}, company {info.company_name!r}: credentials and permissions OK"
        )
        lsids: list[str] = []
        for n in range(1, count + 1):
            ticket = f"INC{10000 + n:07d}"
            key = await appliance.generate_session_key(
                queue_id=Queue.GENERAL,
                ttl=1800,
                external_key=ticket,
                custom_attributes={"ticket_id": ticket},
            )
            lsid = state.start_session(key.short_key)
            report = generator.session_from_key(ticket, {"ticket_id": ticket})
            state.complete_session(lsid, dataclasses.replace(report, lsid=lsid))
            lsids.append(lsid)
        console.print(f"{count} sessions run from generated keys (e.g. short key {key.short_key})")

        parsed: list[SupportSession] = []
        with Progress(
            TextColumn("fetching and parsing reports"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("reports", total=count)
            async for session in appliance.support_sessions(lsids=lsids):
                parsed.append(session)
                progress.advance(task)
        console.print(_summary(parsed))
        console.print(
            f"{len(parsed)} reports parsed; {appliance.requests_sent} API calls "
            f"({count} key generations, 1 API check, "
            f"{appliance.requests_sent - count - 1} report fetch), "
            f"{appliance.tokens.tokens_issued} OAuth token"
        )
        return parsed


def _summary(sessions: list[SupportSession]) -> Table:
    table = Table(title="Sessions fetched from the appliance")
    for column in ("lsid", "external key", "customer", "rep", "duration", "chat", "files"):
        table.add_column(column, no_wrap=column in ("lsid", "external key", "duration"))
    for s in sessions:
        table.add_row(
            s.lsid[:8],
            s.external_key or "-",
            s.primary_customer.name if s.primary_customer else "-",
            s.primary_rep.name if s.primary_rep else "-",
            str(s.duration or "-"),
            str(len(s.events_of(EventType.CHAT_MESSAGE))),
            str(s.file_transfer_count),
        )
    return table
