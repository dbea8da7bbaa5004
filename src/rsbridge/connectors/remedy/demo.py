"""``rsbridge demo --target remedy``: the whole story on a simulated AR server, in seconds.

1. start the simulated appliance, a simulated AR System server (the ITSM forms, demo
   incidents, and rsbridge's session forms loaded as an administrator imports them) and a
   simulated webhook receiver on loopback;
2. start the engine with three integrations: ``remedy`` (auto-create on join), ``audit``
   (a jsonl file) and ``webhook`` (JSON POST);
3. technicians generate session keys from open incidents through the actions API (an
   internal work info entry on each); a resolved incident is refused;
4. customers use the keys; every third session starts without an incident and gets one
   created as the representative joins, its number written back to the live session;
5. a customer starts a session from a URL of their own that names someone else's incident;
6. the sessions end; every outbound event is POSTed to the intake twice;
7. when the workers are done, print what arrived where: each session once on its incident
   (one ``RSB:Session`` entry, its work info, its survey entries), in the file and at the
   webhook, and the AR calls it took.

The steps every story shares are in :mod:`rsbridge.demo`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from rich.console import Console
from rich.table import Table

from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import Config
from rsbridge.connectors.remedy.forms import sim_definitions
from rsbridge.demo import (
    DemoSession,
    Keep,
    Stage,
    Told,
    describe,
    file_counts,
    run_story,
    stage,
    webhook_counts,
)
from rsbridge.sim.remedy import DemoSeed, SimRemedyState, load_forms, seed_demo
from rsbridge.sim.remedy import create_app as create_remedy_app
from rsbridge.sim.serve import serve_in_thread

OPEN_INCIDENTS = ("printer", "vpn")
"""The seeded incidents technicians generate keys from (names of :attr:`DemoSeed.ids`)."""
CLOSED_INCIDENT = "laptop"
FORGED_TARGET = "vpn"
"""The incident a customer names in a start URL of their own: it must not get the session."""
INTEGRATION = "remedy"


@dataclasses.dataclass
class DemoResult:
    """What the demo delivered (for its test)."""

    sessions: list[DemoSession]
    server: SimRemedyState
    ids: dict[str, str]
    """Seeded entry numbers by name (``printer`` ...)."""
    jsonl: list[dict[str, Any]]
    webhook: list[dict[str, Any]]
    ar_calls: int
    """AR REST calls of the whole run (logins included)."""
    dead: int
    refused: str
    """The actions API's answer for the resolved incident."""
    forged: SupportSession


def prepared_server() -> tuple[SimRemedyState, DemoSeed]:
    """A simulated AR server with the demo data and rsbridge's session forms."""
    server = SimRemedyState()
    demo = seed_demo(server)
    server.define_forms(load_forms(sim_definitions()))
    return server, demo


def run_demo(*, sessions: int, seed: int, console: Console, keep: Keep | None = None) -> DemoResult:
    """Keys from incidents, every event twice, once-only session entries and work info."""
    return asyncio.run(run_demo_async(sessions=sessions, seed=seed, console=console, keep=keep))


async def run_demo_async(
    *, sessions: int, seed: int, console: Console, keep: Keep | None = None
) -> DemoResult:
    """:func:`run_demo` in the running event loop (the engine shares it)."""
    if sessions < 1:
        raise ValueError("the demo needs at least one session")
    with stage(seed, keep=keep) as peers:
        server, demo = prepared_server()
        with serve_in_thread(create_remedy_app(server)) as ar_url:
            console.print(f"[bold]Simulated appliance[/] on {peers.appliance_url}")
            peers.announce(console, "Simulated AR System server", ar_url)
            console.print(f"[bold]Simulated webhook receiver[/] on {peers.webhook_url}/hook")
            config = _config(peers, ar_url, demo)
            return await _run(config, peers, server, demo, sessions, seed, console)


def _config(peers: Stage, ar_url: str, demo: DemoSeed) -> Config:
    user, password = demo.integration
    return peers.config(
        {
            "name": INTEGRATION,
            "connector": "remedy",
            "association": {"create_on_join": True},
            "actions": {"assignment": "queue", "queue": "rep:jsmith", "log_session_key": True},
            "settings": {"server_url": ar_url, "username": user, "password": password},
        }
    )


async def _run(
    config: Config,
    peers: Stage,
    server: SimRemedyState,
    demo: DemoSeed,
    count: int,
    seed: int,
    console: Console,
) -> DemoResult:
    def report(told: Told) -> DemoResult:
        story = told.story
        result = DemoResult(
            story.sessions,
            server,
            demo.ids,
            told.jsonl,
            told.webhook,
            len(server.requests),
            story.counts.get("dead", 0),
            told.refused,
            story.forged,
        )
        console.print(_table(result))
        console.print(
            f"{len(story.sessions) + 1} sessions: {result.ar_calls} AR calls in all (logins, keys, "
            f"incident creation and work info included), {result.dead} dead letters"
        )
        return result

    return await run_story(
        config,
        peers,
        seed,
        integration=INTEGRATION,
        tickets=[demo.ids[name] for name in OPEN_INCIDENTS],
        closed=demo.ids[CLOSED_INCIDENT],
        forged_target=demo.ids[FORGED_TARGET],
        noun="incident",
        user="jsmith",
        count=count,
        console=console,
        report=report,
    )


def entries(server: SimRemedyState, form: str, field: str, value: object) -> list[dict[str, Any]]:
    """The entries of ``form`` whose ``field`` is ``value``, as values by field name."""
    fdef = server.forms[form]
    wanted = fdef.by_name[field].id
    with server.lock:
        return [
            {f.name: e.values.get(f.id) for f in fdef.fields}
            for e in server.stores[fdef.store].values()
            if e.values.get(wanted) == value
        ]


def work_info(server: SimRemedyState, number: str, lsid: str) -> list[dict[str, Any]]:
    """The rsbridge work info entries of session ``lsid`` on incident ``number``."""
    return [
        w
        for w in entries(server, "HPD:WorkLog", "Incident Number", number)
        if lsid in str(w.get("Description") or "") and "rsb-" in str(w.get("Description") or "")
    ]


def _table(result: DemoResult) -> Table:
    table = Table(title="What arrived")
    for column in ("lsid", "incident", "Remedy", "audit (jsonl)", "webhook"):
        table.add_column(column)
    jsonl, hooks = file_counts(result.jsonl), webhook_counts(result.webhook)
    server = result.server
    rows = [(item.session, item.ticket is None) for item in result.sessions]
    for session, created in [*rows, (result.forged, True)]:
        lsid = session.lsid
        found = entries(server, "RSB:Session", "Session ID", lsid)
        number = str(found[0].get("Ticket Number") or "") if found else ""
        logs = len(work_info(server, number, lsid)) if number else 0
        surveys = len(entries(server, "RSB:Session Survey", "Session ID", lsid))
        label = (number or "-") + (" (created)" if created else "")
        cell = f"{len(found)} entry, {logs} work info, {surveys} surveys"
        table.add_row(lsid[:8], label, cell, describe(jsonl, lsid), describe(hooks, lsid))
    return table
