"""``rsbridge demo --target agiloft``: the whole story on a simulated Agiloft KB, in seconds.

1. start the simulated appliance, a simulated Agiloft KB (demo employees, teams and support
   cases, with the session details table and the case fields rsbridge's set-up adds) and a
   simulated webhook receiver on loopback;
2. start the engine with three integrations: ``agiloft`` (auto-create on join), ``audit``
   (a jsonl file) and ``webhook`` (JSON POST);
3. technicians generate session keys from open cases through the actions API (the key and
   URL written into the case, a note appended); a resolved case is refused;
4. customers use the keys; every third session starts without a case and gets one created
   as the representative joins, its id written back to the live session;
5. a customer starts a session from a URL of their own that names someone else's case;
6. the sessions end; every outbound event is POSTed to the intake twice;
7. when the workers are done, print what arrived where: each session once as one session
   details record linked to its case, in the file and at the webhook, and the Agiloft
   calls it took (Agiloft pauses about a second after each: calls are what count).

The steps every story shares are in :mod:`rsbridge.demo`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import Config
from rsbridge.connectors.agiloft.tables import Names, rsbridge_definitions
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
from rsbridge.sim.agiloft import DemoSeed, SimAgiloftState, seed_demo
from rsbridge.sim.agiloft import create_app as create_agiloft_app
from rsbridge.sim.serve import serve_in_thread

OPEN_CASES = ("printer", "vpn")
CLOSED_CASE = "laptop"
FORGED_TARGET = "vpn"
INTEGRATION = "agiloft"
SESSIONS_TABLE = "bomgar_session_details"


@dataclasses.dataclass
class DemoResult:
    """What the demo delivered (for its test)."""

    sessions: list[DemoSession]
    kb: SimAgiloftState
    ids: dict[str, int]
    jsonl: list[dict[str, Any]]
    webhook: list[dict[str, Any]]
    calls: int
    """Agiloft REST calls of the whole run (logins included)."""
    dead: int
    refused: str
    forged: SupportSession


def prepared_kb(clock: Callable[[], float] = time.time) -> tuple[SimAgiloftState, DemoSeed]:
    """A simulated KB with the demo data and what rsbridge's set-up adds."""
    kb = SimAgiloftState(kb="Demo", clock=clock)
    demo = seed_demo(kb)
    kb.merge_tables(rsbridge_definitions(Names.build()))
    return kb, demo


def session_records(kb: SimAgiloftState, lsid: str) -> list[dict[str, Any]]:
    """The session details records of session ``lsid``, with their case's id."""
    with kb.lock:
        return [
            {**r.values, "case": next(iter(r.links.get("support_case") or []), None)}
            for r in kb.records[SESSIONS_TABLE].values()
            if r.values.get("session_id") == lsid
        ]


def run_demo(*, sessions: int, seed: int, console: Console, keep: Keep | None = None) -> DemoResult:
    """Keys from support cases, every event twice, one session record per session."""
    return asyncio.run(run_demo_async(sessions=sessions, seed=seed, console=console, keep=keep))


async def run_demo_async(
    *, sessions: int, seed: int, console: Console, keep: Keep | None = None
) -> DemoResult:
    """:func:`run_demo` in the running event loop (the engine shares it)."""
    if sessions < 1:
        raise ValueError("the demo needs at least one session")
    with stage(seed, keep=keep) as peers:
        kb, demo = prepared_kb()
        with serve_in_thread(create_agiloft_app(kb)) as kb_url:
            console.print(f"[bold]Simulated appliance[/] on {peers.appliance_url}")
            peers.announce(console, "Simulated Agiloft KB", f"{kb_url}/ewws/")
            console.print(f"[bold]Simulated webhook receiver[/] on {peers.webhook_url}/hook")
            return await _run(
                _config(peers, kb_url, demo), peers, kb, demo, sessions, seed, console
            )


def _config(peers: Stage, kb_url: str, demo: DemoSeed) -> Config:
    login, password = demo.integration
    return peers.config(
        {
            "name": INTEGRATION,
            "connector": "agiloft",
            "association": {"create_on_join": True},
            "actions": {"assignment": "queue", "queue": "rep:jsmith", "log_session_key": True},
            "settings": {"kb_url": kb_url, "kb": demo.kb, "login": login, "password": password},
        }
    )


async def _run(
    config: Config,
    peers: Stage,
    kb: SimAgiloftState,
    demo: DemoSeed,
    count: int,
    seed: int,
    console: Console,
) -> DemoResult:
    def report(told: Told) -> DemoResult:
        story = told.story
        result = DemoResult(
            story.sessions,
            kb,
            demo.ids,
            told.jsonl,
            told.webhook,
            len(kb.requests),
            story.counts.get("dead", 0),
            told.refused,
            story.forged,
        )
        console.print(_table(result))
        console.print(
            f"{len(story.sessions) + 1} sessions: {result.calls} Agiloft calls in all (logins, "
            f"keys, case creation and surveys included), {result.dead} dead letters"
        )
        return result

    return await run_story(
        config,
        peers,
        seed,
        integration=INTEGRATION,
        tickets=[str(demo.ids[name]) for name in OPEN_CASES],
        closed=str(demo.ids[CLOSED_CASE]),
        forged_target=str(demo.ids[FORGED_TARGET]),
        noun="case",
        user="jdoe",
        count=count,
        console=console,
        report=report,
    )


def _table(result: DemoResult) -> Table:
    table = Table(title="What arrived")
    for column in ("lsid", "case", "Agiloft", "audit (jsonl)", "webhook"):
        table.add_column(column)
    jsonl, hooks = file_counts(result.jsonl), webhook_counts(result.webhook)
    rows = [(item.session, item.ticket is None) for item in result.sessions]
    for session, created in [*rows, (result.forged, True)]:
        lsid = session.lsid
        records = session_records(result.kb, lsid)
        case = str(records[0]["case"]) if records and records[0]["case"] else "-"
        surveys = sum(bool(r.get(k)) for r in records for k in ("customer_survey", "rep_survey"))
        cell = f"{len(records)} record, {surveys} survey columns"
        label = case + (" (created)" if created else "")
        table.add_row(lsid[:8], label, cell, describe(jsonl, lsid), describe(hooks, lsid))
    return table
