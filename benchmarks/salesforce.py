"""Salesforce session import: API calls per session and throughput vs a call-per-part importer.

    python3 dev.py bench salesforce [--sessions 200] [--workers 8] [--latency 0.02]
                                    [--seed 7] [--quick]

The peer is the simulated Salesforce org (``rsbridge.sim.salesforce``), seeded with the
demo data (``seed_demo``) and the objects and fields of rsbridge's package (written by
``package_files`` and loaded from its source files, as an administrator deploys them),
answering every request ``--latency`` seconds (20 ms) late (``state.latency``). It runs
in a child process of its own, so that it does not share a core with the code under
test, and reports back what it received and what it holds. A fresh child serves each
side, so both start from the same org.

The sessions: ``--sessions`` sessions from ``SessionGenerator(--seed)``, each started
from a key naming one of the seeded open Cases by id (in turn), generated once before
either side runs (not timed) and imported by both sides. Each side imports up to
``--workers`` sessions at once (the engine's worker count) and renders each one with
:class:`~rsbridge.engine.render.Renderer` inside the timed part.

* **rsbridge**: :class:`~rsbridge.connectors.salesforce.SalesforceConnector` (client
  credentials, default settings) doing what the engine's worker does for a session end:
  ``find_ticket(session.external_key)``, then ``write_session_report`` with a
  :class:`~rsbridge.connectors.base.SessionDelivery` keyed as the worker keys it: one
  composite call of queries, one all-or-none composite call of upserts and comments.
* **baseline**: a naive importer over plain httpx with the same OAuth token, each part
  with its own call, one after the other: a GET of the Case, a query for the reps'
  users, an upsert of the session record by its import key, one upsert per child record
  (each representative, customer, team, event, custom attribute, recording) and one
  POST per Case comment (chat transcript, session notes, session end). The records come
  from the connector's own builders (``records.session_record``, ``child_records``,
  ``to_sobject``, the same ``Schema``) and the comments from its importer, so both sides
  write the same data.

Figures: Salesforce API calls per imported session, counted by the org (a composite call
counts once against the daily allowance, as Salesforce counts it; its sub-requests are
printed too; OAuth token requests are not API calls), sessions per second and the total
time of the import run, and CPU time per session of this process and of the org's;
printed as ratios rsbridge / baseline, measured in the same invocation, and the target
(at most 3 calls per session, the Case lookup included). As a cross-check, not an
assertion: that both sides left the same records and comments (counts and a digest of
their content without ids and system fields).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import harness
from harness import (
    ChildPeer,
    Comparison,
    Stopwatch,
    cross_check,
    serve_peer,
    verdict,
)
from rsbridge.appliance.events import END
from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.base import SessionDelivery
from rsbridge.connectors.salesforce import SalesforceConnector
from rsbridge.connectors.salesforce.client import soql_quote
from rsbridge.connectors.salesforce.demo import API_CALL_BUDGET, OPEN_CASES, prepared_org
from rsbridge.connectors.salesforce.imports import COMMENT_BYTES, _entries, session_key
from rsbridge.connectors.salesforce.records import (
    KEY_FIELD,
    child_records,
    session_record,
    to_sobject,
)
from rsbridge.connectors.salesforce.schema import DEFAULT_OBJECTS, Schema
from rsbridge.connectors.text import split_text
from rsbridge.engine.render import Renderer
from rsbridge.engine.store.base import LedgerKey
from rsbridge.engine.worker import REPORT_EFFECT
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.salesforce import SimSalesforceState, create_app

APPLIANCE_ID = "default"
INTEGRATION = "salesforce"
SEED = 1  # the org's seed
TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 (a URL path, not a secret)
# Values the org sets itself: differ between two orgs holding the same data.
_SYSTEM_FIELDS = frozenset(
    {"id", "name", "createddate", "lastmodifieddate", "systemmodstamp", "createdbyid"}
    | {"lastmodifiedbyid", "ownerid", "isdeleted", "session__c", "attributes"}
)


# --- the org process ---------------------------------------------------------------------


def _holdings(state: SimSalesforceState) -> dict[str, Any]:
    """Records per session object, comments from imports, and a digest of their content."""
    schema = Schema.build()
    records: dict[str, int] = {}
    digest = hashlib.sha256()
    for obj in DEFAULT_OBJECTS:
        if obj.standard:
            continue
        rows = state.all_records(schema.object(obj.logical))
        records[obj.logical] = len(rows)
        kept = [
            json.dumps(
                {k: v for k, v in r.items() if k.lower() not in _SYSTEM_FIELDS},
                sort_keys=True,
                default=str,
            )
            for r in rows
        ]
        for text in sorted(kept):
            digest.update(text.encode())
    comments = sorted(
        str(c["CommentBody"])
        for c in state.all_records("CaseComment")
        if "(Remote Support session " in str(c.get("CommentBody") or "")
    )
    for text in comments:
        digest.update(text.encode())
    return {"records": records, "comments": len(comments), "digest": digest.hexdigest()}


async def _serve_org(latency: float) -> None:
    """Child process: serve a seeded org with the package; print its address as JSON."""
    with tempfile.TemporaryDirectory(prefix="rsbridge-bench-") as workdir:
        state, demo = prepared_org(SEED, Path(workdir))
    state.latency = latency

    def results(cpu: float) -> dict[str, Any]:
        with state.lock:
            logged = list(state.requests)
        api = [r for r in logged if r.path != TOKEN_PATH]
        subs = Counter(s.method for r in api for s in r.sub_requests)
        answers = [*api, *(s for r in api for s in r.sub_requests)]
        return {
            "calls": len(api),
            "logins": len(logged) - len(api),
            "by_method": dict(Counter(r.method for r in api)),
            "sub_requests": dict(subs),
            "failed": sum(not 200 <= r.status < 300 for r in answers),
            "cpu_seconds": cpu,
            **_holdings(state),
        }

    key, secret = demo.app
    await serve_peer(create_app(state), results, {"client_id": key, "secret": secret})


class Org(ChildPeer):
    """A simulated org in a child process (``with Org(latency) as org``)."""

    def __init__(self, latency: float) -> None:
        super().__init__([__file__, "--serve-org", "--latency", str(latency)], "org")


# --- the two importers -------------------------------------------------------------------


def _delivery(session: SupportSession, renderer: Renderer) -> SessionDelivery:
    """The delivery the engine's worker builds for a session end."""
    key = LedgerKey(APPLIANCE_ID, session.lsid, END, INTEGRATION, REPORT_EFFECT)
    return SessionDelivery(str(key), APPLIANCE_ID, INTEGRATION, session, renderer.render(session))


def _connector(info: dict[str, Any], http: httpx.AsyncClient | None = None) -> SalesforceConnector:
    settings = SalesforceConnector.validate_settings(
        {"login_url": info["url"], "client_id": info["client_id"], "client_secret": info["secret"]}
    )
    return SalesforceConnector(settings, http=http)


async def import_rsbridge(
    info: dict[str, Any], sessions: Sequence[SupportSession], workers: int
) -> int:
    """Import ``sessions`` with the connector; the requests its client counted."""
    connector = _connector(info)
    renderer = Renderer()
    slots = asyncio.Semaphore(workers)

    async def one(session: SupportSession) -> None:
        async with slots:
            ticket = await connector.find_ticket(session.external_key or "")
            await connector.write_session_report(ticket, _delivery(session, renderer))

    try:
        await asyncio.gather(*(one(s) for s in sessions))
    finally:
        await connector.aclose()
    return connector.client.calls


class NaiveImporter:
    """One call per part: the Case, the reps' users, each record, each comment."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.http = httpx.AsyncClient(base_url=info["url"], timeout=30)
        # Only to lay the data out as rsbridge does (records, comment texts); it sends
        # nothing.
        self.layout = _connector(info, self.http)
        self.schema = Schema.build()
        self.renderer = Renderer()
        self.data = ""
        self.calls = 0

    async def login(self) -> None:
        self.calls += 1
        response = await self.http.post(
            TOKEN_PATH,
            data={
                "grant_type": "client_credentials",
                "client_id": self.info["client_id"],
                "client_secret": self.info["secret"],
            },
        )
        response.raise_for_status()
        body = response.json()
        self.http.base_url = httpx.URL(body["instance_url"])
        self.http.headers["Authorization"] = f"Bearer {body['access_token']}"
        self.data = self.layout.client.data_path

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        self.calls += 1
        response = await self.http.request(method, f"{self.data}{path}", **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    async def _upsert(self, obj: str, key: str, values: dict[str, Any]) -> None:
        s = self.schema
        path = f"/sobjects/{s.object(obj)}/{s.field(obj, KEY_FIELD)}/{key}"
        await self._call("PATCH", path, json=values)

    async def import_session(self, session: SupportSession) -> None:
        s = self.schema
        delivery = _delivery(session, self.renderer)
        case = await self._call("GET", f"/sobjects/Case/{session.external_key}")
        names = sorted({r.username for r in session.representatives if r.username})
        users: dict[str, str] = {}
        if names:
            listed = ", ".join(soql_quote(n) for n in names)
            soql = f"SELECT Id, Username FROM User WHERE Username IN ({listed})"  # noqa: S608
            found = await self._call("GET", "/query", params={"q": soql})
            users = {str(u["Username"]): str(u["Id"]) for u in found["records"]}
        key = session_key(APPLIANCE_ID, INTEGRATION, session.lsid)
        record = session_record(
            session, key, APPLIANCE_ID, case_id=case["Id"], rep_user=None, recording_base_url=None
        )
        values = to_sobject(s, record, session_key=None)
        del values[s.field("session", KEY_FIELD)]
        values[s.field("session", "import_state")] = "complete"
        await self._upsert("session", key, values)
        for child in child_records(session, key, users):
            values = to_sobject(s, child, session_key=key)
            del values[s.field(child.obj, KEY_FIELD)]
            await self._upsert(child.obj, child.key, values)
        for entry in _entries(self.layout.options, delivery):
            for part in split_text(entry, COMMENT_BYTES):
                await self._call(
                    "POST",
                    "/sobjects/CaseComment",
                    json={"ParentId": case["Id"], "CommentBody": part, "IsPublished": False},
                )


async def import_baseline(
    info: dict[str, Any], sessions: Sequence[SupportSession], workers: int
) -> int:
    """Import ``sessions`` the naive way; the requests it sent."""
    naive = NaiveImporter(info)
    slots = asyncio.Semaphore(workers)

    async def one(session: SupportSession) -> None:
        async with slots:
            await naive.import_session(session)

    try:
        await naive.login()
        await asyncio.gather(*(one(s) for s in sessions))
    finally:
        await naive.aclose()
    return naive.calls


# --- measurements ------------------------------------------------------------------------


@dataclass
class Side(harness.Side):
    """One importer's figures; ``peer`` is what the org reported."""


def measure(importer: Any, sessions: Sequence[SupportSession], args: argparse.Namespace) -> Side:
    with Org(args.latency) as org:
        with Stopwatch() as watch:
            client_calls = asyncio.run(importer(org.info, sessions, args.workers))
        peer = org.results()
    if peer["failed"]:
        print(f"  warning: the org answered {peer['failed']} requests with an error")
    return Side(len(sessions), watch.seconds, watch.cpu_seconds, client_calls, peer)


def _cases() -> list[str]:
    """The seeded open Cases' ids (the same in every org: seeded state)."""
    with tempfile.TemporaryDirectory(prefix="rsbridge-bench-") as workdir:
        _, demo = prepared_org(SEED, Path(workdir))
    return [demo.ids[name] for name in OPEN_CASES]


# --- report ------------------------------------------------------------------------------


TABLE = Comparison(32)
_row = TABLE.row


def _report(args: argparse.Namespace, base: Side, ours: Side) -> None:
    print()
    print(
        f"{ours.sessions} sessions; the org answers in {args.latency * 1000:.0f} ms; "
        f"{args.workers} sessions at once on both sides"
    )
    print(TABLE.header())
    print(_row("Salesforce API calls / session", base.calls_per_session, ours.calls_per_session))
    print(_row("sessions/s", base.rate, ours.rate, "12.2f"))
    print(_row(f"time for {ours.sessions} sessions (s)", base.seconds, ours.seconds, "12.2f"))
    print(_row("CPU ms / session (this process)", base.cpu_ms_per_session, ours.cpu_ms_per_session))
    print(
        _row(
            "org CPU ms / session",
            base.peer["cpu_seconds"] * 1000 / base.sessions,
            ours.peer["cpu_seconds"] * 1000 / ours.sessions,
        )
    )
    met = ours.calls_per_session <= API_CALL_BUDGET and ours.rate > base.rate
    print(
        f"target: at most {API_CALL_BUDGET} API calls per session (lookup included) and "
        f"faster than the baseline -> {verdict(met)}"
    )
    print(
        f"calls by method (org): baseline {base.peer['by_method']}; "
        f"rsbridge {ours.peer['by_method']}, composite sub-requests {ours.peer['sub_requests']}"
    )
    print(
        f"requests counted by the clients (logins included): baseline {base.client_calls}, "
        f"rsbridge {ours.client_calls} (org: API calls {base.calls}, {ours.calls}; "
        f"logins {base.peer['logins']}, {ours.peer['logins']})"
    )
    cross_check(
        (
            ("session records", base.peer["records"]["session"], ours.peer["records"]["session"]),
            ("event records", base.peer["records"]["event"], ours.peer["records"]["event"]),
            (
                "all session-object records",
                sum(base.peer["records"].values()),
                sum(ours.peer["records"].values()),
            ),
            ("Case comments", base.peer["comments"], ours.peer["comments"]),
        ),
        content="record and comment content",
        same_content=base.peer["digest"] == ours.peer["digest"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, help="sessions to import (200; --quick: 20)")
    parser.add_argument("--workers", type=int, default=8, help="sessions imported at once")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per answer")
    parser.add_argument("--seed", type=int, default=7, help="session generator seed")
    parser.add_argument("--quick", action="store_true", help="a smoke run (20 sessions)")
    parser.add_argument("--serve-org", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_org:
        asyncio.run(_serve_org(args.latency))
        return
    if args.sessions is None:
        args.sessions = 20 if args.quick else 200
    cases = _cases()
    generator = SessionGenerator(args.seed)
    sessions = [generator.session_from_key(cases[n % len(cases)], {}) for n in range(args.sessions)]
    print("rsbridge ...", flush=True)
    ours = measure(import_rsbridge, sessions, args)
    print("baseline ...", flush=True)
    base = measure(import_baseline, sessions, args)
    _report(args, base, ours)


if __name__ == "__main__":
    main()
