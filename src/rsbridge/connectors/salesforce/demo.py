"""``rsbridge demo --target salesforce``: the whole story on a simulated org, in seconds.

1. start the simulated appliance, a simulated Salesforce org (demo accounts, contacts and
   Cases, with the objects and fields of the package ``rsbridge salesforce package``
   generates loaded from its source files) and a simulated webhook receiver on loopback;
2. start the engine (SQLite store in a temporary directory, intake and actions API on a
   free port, workers) with three integrations: ``salesforce`` (auto-create on join),
   ``audit`` (a jsonl file) and ``webhook`` (JSON POST);
3. technicians generate session keys from open Cases through the actions API (a private
   comment on each Case); a closed Case is refused;
4. customers use the keys; every third session starts without a Case and gets one created
   as the representative joins, its id written back to the live session's external key;
5. a customer starts a session from a URL of their own that names someone else's Case;
6. the sessions end; every outbound event is POSTed to the intake twice;
7. when the workers are done, print what arrived where: each session once on its Case
   (one ``RS_Session__c`` record, its private comments, its survey answers), in the file
   and at the webhook, and the Salesforce API calls it took.

The steps every story shares are in :mod:`rsbridge.demo`. :func:`import_all_side` is the
Salesforce column of the default story (another system's): a simulated org whose integration
imports every session without a Case.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import Config
from rsbridge.connectors.salesforce.package import package_files, write_package
from rsbridge.connectors.salesforce.schema import Schema
from rsbridge.demo import (
    DemoSession,
    Keep,
    SideSystem,
    Stage,
    Told,
    describe,
    file_counts,
    run_story,
    stage,
    webhook_counts,
)
from rsbridge.sim.salesforce import DemoSeed, SimSalesforceState, seed_demo
from rsbridge.sim.salesforce import create_app as create_salesforce_app
from rsbridge.sim.salesforce.package import load_package
from rsbridge.sim.serve import serve_in_thread

OPEN_CASES = ("case_printer", "case_vpn")
"""The seeded Cases technicians generate keys from (names of :attr:`DemoSeed.ids`)."""
CLOSED_CASE = "case_closed"
FORGED_TARGET = "case_vpn"
"""The Case a customer names in a start URL of their own: it must not get the session."""
INTEGRATION = "salesforce"
API_CALL_BUDGET = 3
"""Salesforce API calls a session import may take, the Case lookup included."""


@dataclasses.dataclass
class DemoResult:
    """What the demo delivered (for its test)."""

    sessions: list[DemoSession]
    org: SimSalesforceState
    ids: dict[str, str]
    """Seeded record ids by name (``case_printer`` ...); :attr:`DemoSession.ticket` is the
    Case id a key was generated from."""
    jsonl: list[dict[str, Any]]
    webhook: list[dict[str, Any]]
    api_calls: int
    """Salesforce API calls of the whole run (logins not counted)."""
    dead: int
    refused: str
    """The actions API's answer for the closed Case."""
    forged: SupportSession


def prepared_org(seed: int, workdir: Path) -> tuple[SimSalesforceState, DemoSeed]:
    """A simulated org with the demo data and the objects and fields of rsbridge's package
    (written under ``workdir`` and loaded from its source files, as an administrator
    deploys them)."""
    org = SimSalesforceState(seed=seed)
    demo = seed_demo(org)
    package = workdir / "salesforce-package"
    write_package(package, package_files(Schema.build()))
    load_package(org, package)
    return org, demo


@contextmanager
def import_all_side(seed: int, workdir: Path) -> Iterator[SideSystem]:
    """A simulated org beside another story's system, with the package loaded: its
    integration imports every session without a Case (the vendor's "Import All Sessions",
    ``on_unmatched = "import"``), a column of that story's table."""
    org, demo = prepared_org(seed, workdir / "salesforce-side")
    key, secret = demo.app
    with serve_in_thread(create_salesforce_app(org)) as url:
        yield SideSystem(
            "Salesforce (import all)",
            {
                "name": INTEGRATION,
                "connector": "salesforce",
                "association": {"on_unmatched": "import"},
                "settings": {"login_url": url, "client_id": key, "client_secret": secret},
            },
            cell=lambda lsid: _side_cell(org, lsid),
            imported=lambda lsid: len(session_records(org, lsid)),
            url=url,
        )


def _side_cell(org: SimSalesforceState, lsid: str) -> str:
    records = session_records(org, lsid)
    if not records:
        return "-"
    answers = len(org.find_by("RS_Session_Survey__c", "Session__c", records[0]["Id"]))
    case = "a Case" if records[0].get("Case__c") else "no Case"
    return f"{len(records)} record ({case}), {answers} answers"


def api_calls(org: SimSalesforceState) -> int:
    """API requests the org answered, OAuth token requests not counted (they do not
    spend the daily allowance); a composite request counts once, as Salesforce counts it."""
    return len(org.requests) - org.count_requests("POST", "/services/oauth2/token")


def run_demo(*, sessions: int, seed: int, console: Console, keep: Keep | None = None) -> DemoResult:
    """Keys from Cases, auto-create on join, every event twice, once-only records and comments."""
    return asyncio.run(run_demo_async(sessions=sessions, seed=seed, console=console, keep=keep))


async def run_demo_async(
    *, sessions: int, seed: int, console: Console, keep: Keep | None = None
) -> DemoResult:
    """:func:`run_demo` in the running event loop (the engine shares it)."""
    if sessions < 1:
        raise ValueError("the demo needs at least one session")
    with stage(seed, keep=keep) as peers:
        org, demo = prepared_org(seed, peers.workdir)
        with serve_in_thread(create_salesforce_app(org)) as org_url:
            console.print(f"[bold]Simulated appliance[/] on {peers.appliance_url}")
            peers.announce(console, "Simulated Salesforce org", org_url)
            console.print(f"[bold]Simulated webhook receiver[/] on {peers.webhook_url}/hook")
            config = _config(peers, org_url, demo)
            return await _run(config, peers, org, demo, sessions, seed, console)


def _config(peers: Stage, org_url: str, demo: DemoSeed) -> Config:
    key, secret = demo.app
    return peers.config(
        {
            "name": INTEGRATION,
            "connector": "salesforce",
            "association": {"create_on_join": True},
            # The simulated org's users are not representatives: keys go to jsmith's queue.
            "actions": {"assignment": "queue", "queue": "rep:jsmith", "log_session_key": True},
            "settings": {"login_url": org_url, "client_id": key, "client_secret": secret},
        }
    )


async def _run(
    config: Config,
    peers: Stage,
    org: SimSalesforceState,
    demo: DemoSeed,
    count: int,
    seed: int,
    console: Console,
) -> DemoResult:
    def report(told: Told) -> DemoResult:
        finished, forged, counts = told.story.sessions, told.story.forged, told.story.counts
        result = DemoResult(
            finished,
            org,
            demo.ids,
            told.jsonl,
            told.webhook,
            api_calls(org),
            counts.get("dead", 0),
            told.refused,
            forged,
        )
        console.print(_table(result))
        console.print(
            f"{len(finished) + 1} sessions: {result.api_calls} Salesforce API calls in all "
            f"(keys, Case creation and comments included), {result.dead} dead letters"
        )
        return result

    return await run_story(
        config,
        peers,
        seed,
        integration=INTEGRATION,
        tickets=[demo.ids[name] for name in OPEN_CASES],
        closed=demo.ids[CLOSED_CASE],
        forged_target=demo.ids[FORGED_TARGET],
        noun="Case",
        user="jsmith",
        count=count,
        console=console,
        report=report,
    )


def session_records(org: SimSalesforceState, lsid: str) -> list[dict[str, Any]]:
    """The ``RS_Session__c`` records of session ``lsid``."""
    return org.find_by("RS_Session__c", "LSID__c", lsid)


def session_comments(org: SimSalesforceState, case_id: str, lsid: str) -> list[dict[str, Any]]:
    """The comments on Case ``case_id`` that name session ``lsid``."""
    return [
        c
        for c in org.find_by("CaseComment", "ParentId", case_id)
        if lsid in str(c.get("CommentBody") or "")
    ]


def _table(result: DemoResult) -> Table:
    table = Table(title="What arrived")
    for column in ("lsid", "Case", "Salesforce", "audit (jsonl)", "webhook"):
        table.add_column(column)
    jsonl, hooks = file_counts(result.jsonl), webhook_counts(result.webhook)
    org = result.org
    rows = [(item.session, item.ticket is None) for item in result.sessions]
    for session, created in [*rows, (result.forged, True)]:
        lsid = session.lsid
        records = session_records(org, lsid)
        case_id = str(records[0].get("Case__c") or "") if records else ""
        case = org.get("Case", case_id) if case_id else None
        number = str(case["CaseNumber"]) if case else "-"
        if created:
            number += " (created)"
        comments = len(session_comments(org, case_id, lsid)) if case_id else 0
        answers = (
            len(org.find_by("RS_Session_Survey__c", "Session__c", records[0]["Id"]))
            if records
            else 0
        )
        cell = f"{len(records)} record, {comments} comments, {answers} answers"
        table.add_row(lsid[:8], number, cell, describe(jsonl, lsid), describe(hooks, lsid))
    return table
