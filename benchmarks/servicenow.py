"""ServiceNow session import: calls per session end and per survey, and throughput, vs a
call-per-part importer.

    python3 dev.py bench servicenow [--sessions 200] [--workers 8] [--latency 0.02]
                                    [--seed 7] [--quick]

The peer is the simulated ServiceNow instance (``rsbridge.sim.servicenow``), seeded with
the demo data (``seed_demo``) and rsbridge's session tables (imported from
``unload_xml(Schema.build())``, as an administrator would), answering every request
``--latency`` seconds (20 ms) late (``state.latency``). It runs in a child process of
its own, so that it does not share a core with the code under test, and reports back
what it received and what its tables hold. A fresh child serves each side, so both
start from the same empty session tables.

The sessions: ``--sessions`` sessions from ``SessionGenerator(--seed)``, each started
from a key naming one of the seeded incidents (``INC0010001`` ... in turn), generated
once before either side runs (not timed) and imported by both sides. Each side imports
up to ``--workers`` sessions at once (the engine's worker count), and renders each one
with :class:`~rsbridge.engine.render.Renderer` inside the timed part.

* **rsbridge**: :class:`~rsbridge.connectors.servicenow.ServiceNowConnector` (Basic auth,
  default settings but ``log_surveys = true``) doing what the engine's worker does for a
  session end: the ticket lookup as the association makes it
  (``find_session_ticket(session.external_key, ...)``, which sends the import's reads
  along: the session row, the reps in ``sys_user``), then ``write_session_report`` with a
  :class:`~rsbridge.connectors.base.SessionDelivery` keyed as the worker keys it (one
  Batch API call with every row and journal entry, one call that marks it complete);
  then, for each exit survey of the session, ``write_survey`` with a
  :class:`~rsbridge.connectors.base.SurveyDelivery` (one read round, one write round).
* **baseline**: a naive importer over plain httpx with Basic auth, each part with its
  own call, one after the other: a query for the incident by number, a ``sys_user``
  query for the reps (so that the rep rows reference the same users), one POST per
  row (the session row, then each rep, customer, team, event, custom attribute and
  recording row) and one PATCH of the incident per journal entry (chat transcript,
  session notes, session end); then, per survey, one POST per answer row and one PATCH
  with the survey's journal entry. The rows come from the connector's own builders
  (``records.session_values``, ``child_rows``, ``survey_rows``, ``to_record``, the same
  ``Schema``) and the journal texts from the connector, so that both sides write the
  same data; the session row is POSTed with ``import_state = complete``, the value
  rsbridge's row ends with.

Figures: ServiceNow calls per session end and per survey (a Batch API call counts once;
its sub-requests are printed too), against the targets (at most 3 and 2), sessions per
second and the total time of the import run (from creating the client to closing it
after the last survey), and CPU time per session of this process and of the instance's;
printed as ratios rsbridge / baseline, measured in the same invocation. The calls per
session end and per survey are counted by each client, phase by phase; their sum is
checked against the instance's own count. As a cross-check, not an assertion: that
both sides left the same number of session rows, event rows, session-table rows and
journal entries, with the same content (a digest of every session-table row, without
its ``sys_`` fields but its sys_id, and of the journal entries).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

import harness
from harness import ChildPeer, Comparison, Stopwatch, cross_check, serve_peer, verdict
from rsbridge.appliance.events import CUSTOMER_SURVEY, END, REP_SURVEY
from rsbridge.appliance.report_model import ExitSurvey, SupportSession
from rsbridge.connectors.base import SessionDelivery, SurveyDelivery, Ticket
from rsbridge.connectors.servicenow import ServiceNowConnector
from rsbridge.connectors.servicenow.records import (
    Row,
    child_rows,
    journal_safe,
    session_values,
    survey_rows,
    to_record,
)
from rsbridge.connectors.servicenow.schema import DEFAULT_TABLES, Schema, unload_xml
from rsbridge.connectors.servicenow.writes import journal_marker
from rsbridge.engine.render import Renderer
from rsbridge.engine.store.base import LedgerKey
from rsbridge.engine.worker import REPORT_EFFECT
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.servicenow import SimServiceNowState, create_app, seed_demo

APPLIANCE_ID = "default"
INTEGRATION = "servicenow"
SEED = 1  # the instance's seed
JOURNAL_MARK = "(RS session "  # the last line of every journal entry rsbridge writes
TARGET_END, TARGET_SURVEY = 3, 2  # ServiceNow calls (DESIGN.md targets)


# --- the instance process ----------------------------------------------------------------


def _tables_summary(state: SimServiceNowState) -> dict[str, Any]:
    """Rows per session table, journal entries from imports, and a digest of the rows."""
    schema = Schema.build()
    rows: dict[str, int] = {}
    digest = hashlib.sha256()
    for table in DEFAULT_TABLES:
        records = state.query(schema.table(table.logical))
        rows[table.logical] = len(records)
        for record in sorted(records, key=lambda r: r["sys_id"]):
            kept = {k: v for k, v in record.items() if k == "sys_id" or not k.startswith("sys_")}
            digest.update(json.dumps(kept, sort_keys=True).encode())
    journal = [
        e["value"]
        for e in state.query("sys_journal_field", "element=work_notes")
        if JOURNAL_MARK in e["value"]
    ]
    for text in sorted(journal):
        digest.update(text.encode())
    return {"rows": rows, "journal": len(journal), "digest": digest.hexdigest()}


async def _serve_instance(latency: float) -> None:
    """Child process: serve a seeded instance; print its address as one JSON line."""
    state = SimServiceNowState(seed=SEED)
    demo = seed_demo(state)
    state.import_unload_xml(unload_xml(Schema.build()))
    state.latency = latency

    def results(cpu: float) -> dict[str, Any]:
        with state.lock:
            logged = list(state.requests)
        calls = Counter(r.method for r in logged)
        subs = Counter(s.method for r in logged for s in r.sub_requests)
        # A 404 to a read is an answer ("not there yet": rsbridge reads the session row
        # before writing it), not a failure.
        answers = [*logged, *(s for r in logged for s in r.sub_requests)]
        ok = [200 <= r.status < 300 or (r.method, r.status) == ("GET", 404) for r in answers]
        failed = ok.count(False)
        return {
            "calls": len(logged),
            "by_method": dict(calls),
            "sub_requests": dict(subs),
            "failed": failed,
            "cpu_seconds": cpu,
            **_tables_summary(state),
        }

    user, password = demo.integration
    await serve_peer(create_app(state), results, {"username": user, "password": password})


class Instance(ChildPeer):
    """A simulated instance in a child process (``with Instance(latency) as sn``)."""

    def __init__(self, latency: float) -> None:
        super().__init__([__file__, "--serve-instance", "--latency", str(latency)], "instance")


# --- the two importers -------------------------------------------------------------------


def _delivery(session: SupportSession, renderer: Renderer) -> SessionDelivery:
    """The delivery the engine's worker builds for a session end."""
    key = LedgerKey(APPLIANCE_ID, session.lsid, END, INTEGRATION, REPORT_EFFECT)
    return SessionDelivery(str(key), APPLIANCE_ID, INTEGRATION, session, renderer.render(session))


def _surveys(session: SupportSession, renderer: Renderer) -> list[SurveyDelivery]:
    """The deliveries the engine's worker builds for the session's exit surveys."""
    made = []
    kinds: tuple[tuple[Literal["customer", "rep"], str, list[ExitSurvey]], ...] = (
        ("customer", CUSTOMER_SURVEY, session.customer_surveys),
        ("rep", REP_SURVEY, session.rep_surveys),
    )
    for kind, event, surveys in kinds:
        for index, survey in enumerate(surveys):
            key = LedgerKey(
                APPLIANCE_ID, session.lsid, event, INTEGRATION, f"survey:{kind}:{index}"
            )
            rendered = renderer.render_survey(session, kind, survey)
            made.append(
                SurveyDelivery(str(key), APPLIANCE_ID, INTEGRATION, kind, survey, session, rendered)
            )
    return made


def _settings(info: dict[str, Any]) -> Any:
    return ServiceNowConnector.validate_settings(
        {
            "instance_url": info["url"],
            "username": info["username"],
            "password": info["password"],
            "log_surveys": True,
        }
    )


@dataclass
class Counts:
    """Calls a client sent for the session ends and for the surveys."""

    ends: int = 0
    surveys: int = 0
    survey_count: int = 0


async def import_rsbridge(
    info: dict[str, Any], sessions: Sequence[SupportSession], workers: int
) -> Counts:
    """Import ``sessions`` and their surveys with the connector; the calls its client
    counted, phase by phase."""
    connector = ServiceNowConnector(_settings(info))
    renderer = Renderer()
    slots = asyncio.Semaphore(workers)
    tickets: dict[str, Ticket] = {}
    counts = Counts()

    async def end(session: SupportSession) -> None:
        async with slots:
            ticket = await connector.find_session_ticket(
                session.external_key or "", source="external_key", session=session, references={}
            )
            tickets[session.lsid] = ticket  # the engine's ledger keeps it for the surveys
            await connector.write_session_report(ticket, _delivery(session, renderer))

    async def surveys(session: SupportSession) -> None:
        async with slots:
            for delivery in _surveys(session, renderer):
                await connector.write_survey(tickets[session.lsid], delivery)
                counts.survey_count += 1

    try:
        await asyncio.gather(*(end(s) for s in sessions))
        counts.ends = connector.client.calls
        await asyncio.gather(*(surveys(s) for s in sessions))
        counts.surveys = connector.client.calls - counts.ends
    finally:
        await connector.aclose()
    return counts


class NaiveImporter:
    """One call per part: the incident, the reps' users, each row, each journal entry."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.http = httpx.AsyncClient(
            base_url=info["url"],
            auth=httpx.BasicAuth(info["username"], info["password"]),
            headers={"Accept": "application/json"},
            timeout=30,
        )
        # Only to lay the data out as rsbridge does (schema, sys_ids, journal texts); it
        # sends nothing.
        self.layout = ServiceNowConnector(_settings(info), http=self.http)
        self.schema = Schema.build()
        self.renderer = Renderer()
        self.counts = Counts()
        self.incidents: dict[str, str] = {}

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        self.counts.ends += 1
        response = await self.http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()["result"]

    async def import_session(self, session: SupportSession) -> None:
        delivery = _delivery(session, self.renderer)
        number = session.external_key or ""
        [incident] = await self._call(
            "GET",
            "/api/now/table/incident",
            params={"sysparm_query": f"number={number}", "sysparm_fields": "sys_id,number"},
        )
        self.incidents[session.lsid] = incident["sys_id"]
        names = sorted({r.username for r in session.representatives if r.username})
        rep_users: dict[str, str] = {}
        if names:
            users = await self._call(
                "GET",
                "/api/now/table/sys_user",
                params={
                    "sysparm_query": f"user_nameIN{','.join(names)}",
                    "sysparm_fields": "sys_id,user_name",
                },
            )
            rep_users = {u["user_name"]: u["sys_id"] for u in users}
        session_id = self.layout.session_sys_id(APPLIANCE_ID, INTEGRATION, session.lsid)
        values = {
            **session_values(session, APPLIANCE_ID),
            "task": incident["sys_id"],
            "import_state": "complete",
        }
        primary = next((r for r in session.representatives if r.primary), None)
        if primary is not None and primary.username in rep_users:
            values["primary_rep_user"] = rep_users[primary.username]
        rows = [
            Row("session", session_id, values),
            *child_rows(session, delivery.key, session_id, rep_users),
        ]
        for row in rows:
            await self._call(
                "POST",
                f"/api/now/table/{self.schema.table(row.table)}",
                json=to_record(self.schema, row),
            )
        for _, text in self.layout._journal_entries(delivery):
            await self._call(
                "PATCH", f"/api/now/table/incident/{incident['sys_id']}", json={"work_notes": text}
            )

    async def import_surveys(self, session: SupportSession) -> None:
        """Each survey: one POST per answer row, one PATCH with its journal entry."""
        incident = self.incidents[session.lsid]
        session_id = self.layout.session_sys_id(APPLIANCE_ID, INTEGRATION, session.lsid)
        for delivery in _surveys(session, self.renderer):
            index = int(delivery.key.rsplit(":", 1)[-1])
            rows = survey_rows(delivery.key, session_id, delivery.kind, index, delivery.survey)
            for row in rows:
                await self._survey_call(
                    "POST",
                    f"/api/now/table/{self.schema.table(row.table)}",
                    json=to_record(self.schema, row),
                )
            part = f"{delivery.kind} survey {index}"
            text = delivery.rendered.text.strip()
            if text:
                entry = journal_safe(f"{text}\n\n{journal_marker(session.lsid, part)}")
                await self._survey_call(
                    "PATCH", f"/api/now/table/incident/{incident}", json={"work_notes": entry}
                )
            self.counts.survey_count += 1

    async def _survey_call(self, method: str, path: str, **kwargs: Any) -> None:
        self.counts.surveys += 1
        response = await self.http.request(method, path, **kwargs)
        response.raise_for_status()


async def import_baseline(
    info: dict[str, Any], sessions: Sequence[SupportSession], workers: int
) -> Counts:
    """Import ``sessions`` and their surveys the naive way; the calls it sent."""
    naive = NaiveImporter(info)
    slots = asyncio.Semaphore(workers)

    async def end(session: SupportSession) -> None:
        async with slots:
            await naive.import_session(session)

    async def surveys(session: SupportSession) -> None:
        async with slots:
            await naive.import_surveys(session)

    try:
        await asyncio.gather(*(end(s) for s in sessions))
        await asyncio.gather(*(surveys(s) for s in sessions))
    finally:
        await naive.aclose()
    return naive.counts


# --- measurements ------------------------------------------------------------------------


@dataclass
class Side(harness.Side):
    """One importer's figures; ``peer`` is what the instance reported, ``counts`` what
    the client counted phase by phase."""

    counts: Counts = field(default_factory=Counts)

    @property
    def sub_requests(self) -> int:
        return sum(int(n) for n in self.peer["sub_requests"].values())

    @property
    def per_end(self) -> float:
        return self.counts.ends / self.sessions

    @property
    def per_survey(self) -> float:
        return self.counts.surveys / max(1, self.counts.survey_count)


def measure(importer: Any, sessions: Sequence[SupportSession], args: argparse.Namespace) -> Side:
    with Instance(args.latency) as instance:
        with Stopwatch() as watch:
            counts = asyncio.run(importer(instance.info, sessions, args.workers))
        peer = instance.results()
    if peer["failed"]:
        print(f"  warning: the instance answered {peer['failed']} requests with an error")
    client_calls = counts.ends + counts.surveys
    return Side(len(sessions), watch.seconds, watch.cpu_seconds, client_calls, peer, counts)


def _incidents() -> list[str]:
    """The seeded incidents' numbers (the same in every instance: seeded state)."""
    return sorted(k for k in seed_demo(SimServiceNowState(seed=SEED)).ids if k.startswith("INC"))


# --- report ------------------------------------------------------------------------------


TABLE = Comparison(32)
_row = TABLE.row


def _report(args: argparse.Namespace, base: Side, ours: Side) -> None:
    print()
    print(
        f"{ours.sessions} sessions; the instance answers in {args.latency * 1000:.0f} ms; "
        f"{args.workers} sessions at once on both sides"
    )
    print(TABLE.header())
    print(_row("ServiceNow calls / session end", base.per_end, ours.per_end, "12.2f"))
    print(_row("ServiceNow calls / survey", base.per_survey, ours.per_survey, "12.2f"))
    print(
        _row(
            "ServiceNow calls / session, all",
            base.calls_per_session,
            ours.calls_per_session,
            "12.2f",
        )
    )
    print(_row("sessions/s", base.rate, ours.rate, "12.2f"))
    print(_row(f"time for {ours.sessions} sessions (s)", base.seconds, ours.seconds, "12.2f"))
    print(_row("CPU ms / session (this process)", base.cpu_ms_per_session, ours.cpu_ms_per_session))
    print(
        _row(
            "instance CPU ms / session",
            base.peer["cpu_seconds"] * 1000 / base.sessions,
            ours.peer["cpu_seconds"] * 1000 / ours.sessions,
        )
    )
    print(
        f"calls by method (instance): baseline {base.peer['by_method']}; "
        f"rsbridge {ours.peer['by_method']}, batch sub-requests {ours.peer['sub_requests']}"
    )
    print(
        f"calls counted by the clients: baseline {base.client_calls}, rsbridge {ours.client_calls} "
        f"(instance: {base.calls}, {ours.calls})"
    )
    met = ours.per_end <= TARGET_END and ours.per_survey <= TARGET_SURVEY
    print(
        f"target: at most {TARGET_END} calls per session end ({ours.per_end:.2f}) and "
        f"{TARGET_SURVEY} per survey ({ours.per_survey:.2f}; {ours.counts.survey_count} "
        f"surveys) -> {verdict(met)}"
    )
    cross_check(
        (
            ("session rows", base.peer["rows"]["session"], ours.peer["rows"]["session"]),
            ("event rows", base.peer["rows"]["event"], ours.peer["rows"]["event"]),
            ("survey answer rows", base.peer["rows"]["survey"], ours.peer["rows"]["survey"]),
            (
                "all session-table rows",
                sum(base.peer["rows"].values()),
                sum(ours.peer["rows"].values()),
            ),
            ("journal entries", base.peer["journal"], ours.peer["journal"]),
        ),
        content="row and journal content",
        same_content=base.peer["digest"] == ours.peer["digest"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, help="sessions to import (200; --quick: 20)")
    parser.add_argument("--workers", type=int, default=8, help="sessions imported at once")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per answer")
    parser.add_argument("--seed", type=int, default=7, help="session generator seed")
    parser.add_argument("--quick", action="store_true", help="a smoke run (20 sessions)")
    parser.add_argument("--serve-instance", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_instance:
        asyncio.run(_serve_instance(args.latency))
        return
    if args.sessions is None:
        args.sessions = 20 if args.quick else 200
    incidents = _incidents()
    generator = SessionGenerator(args.seed)
    sessions = [
        generator.session_from_key(incidents[n % len(incidents)], {}) for n in range(args.sessions)
    ]
    print("rsbridge ...", flush=True)
    ours = measure(import_rsbridge, sessions, args)
    print("baseline ...", flush=True)
    base = measure(import_baseline, sessions, args)
    _report(args, base, ours)


if __name__ == "__main__":
    main()
