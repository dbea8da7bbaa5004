"""Remedy session import: AR calls per session and throughput vs a call-per-part importer.

    python3 dev.py bench remedy [--sessions 100] [--workers 8] [--latency 0.02] [--seed 7]
                                [--quick]

The peer is the simulated AR System server (``rsbridge.sim.remedy``) with the demo data
(``seed_demo``: the ITSM forms, incidents, the integration user) and rsbridge's session
forms loaded from their definitions, as an administrator imports them (the demo's
``prepared_server``), answering every request ``--latency`` seconds (20 ms) late
(``state.latency``). It runs in a child process of its own, so that it does not share a
core with the code under test, and reports back what it received and what it holds. A
fresh child serves each side, so both start from the same server.

The sessions: ``--sessions`` sessions from ``SessionGenerator(--seed)``, each started from
a key naming one of the seeded open incidents (``printer``, ``vpn``) in turn, generated
once before either side runs (not timed) and imported by both sides. Each side imports up
to ``--workers`` sessions at once (the engine's worker count) and renders each one with
:class:`~rsbridge.engine.render.Renderer` inside the timed part.

* **rsbridge**: :class:`~rsbridge.connectors.remedy.RemedyConnector` (default settings:
  ``storage = "both"``) doing what the engine's worker does for a session end:
  ``find_ticket(session.external_key)``, then ``write_session_report`` with a
  :class:`~rsbridge.connectors.base.SessionDelivery` keyed as the worker keys it. Its plan
  (docs/remedy.md, "How a session lands"): one search for the ``RSB:Session`` entry, its
  creation, one create per participant and per 100 events, one work info entry (chat,
  notes and session end together), one update marking the entry complete.
* **baseline**: a naive importer over plain httpx that logs in once and reuses the JWT.
  For every record it writes, it first searches for it (so a replay does not write it
  twice) and then creates it: the ``RSB:Session`` entry (created complete), one
  ``RSB:Session Participant`` entry per representative and customer, **one
  ``RSB:Session Event`` entry per event**, and one work info entry per part (chat
  transcript, session notes, session end; a part longer than an entry holds in several
  entries). Before all that it searches for the incident, as rsbridge's lookup does. Its
  values come from the connector's own builders (``session_row``, ``child_rows``,
  ``event_line``, the same work info fields), so both sides write the same content.

Figures: AR REST calls per imported session, counted by the server (logins and logouts
apart), sessions per second and the total time of the import run, and CPU time per
session of this process and of the server's; printed with their ratio rsbridge /
baseline, measured in the same invocation, and the target: fewer than half the
baseline's calls (the issue's "fewer calls than one per part by a clear margin") and
more sessions per second. Also printed: whether rsbridge made exactly the calls its plan
says for what it wrote. As a cross-check, not an assertion: that both sides left the
same sessions, participants, event lines and work info text (counts and digests).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
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
from rsbridge.connectors.remedy import RemedyConnector
from rsbridge.connectors.remedy.client import RemedyClient, equals, field_ref
from rsbridge.connectors.remedy.demo import OPEN_INCIDENTS, prepared_server
from rsbridge.connectors.remedy.forms import (
    EVENTS,
    PARTICIPANT,
    ROW_KEY,
    SESSION,
    SESSION_KEY,
)
from rsbridge.connectors.remedy.imports import COMPLETE, DETAIL_CHARS, _end_notice
from rsbridge.connectors.remedy.records import (
    ar_time,
    child_rows,
    event_line,
    row_key,
    session_key,
    session_row,
)
from rsbridge.connectors.text import split_text
from rsbridge.engine.render import Renderer
from rsbridge.engine.store.base import LedgerKey
from rsbridge.engine.worker import REPORT_EFFECT
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.remedy import SimRemedyState, create_app

APPLIANCE_ID = "default"
INTEGRATION = "remedy"
LOGIN, LOGOUT = "/api/jwt/login", "/api/jwt/logout"
WORK_LOG = "HPD:WorkLog"
WORK_LOG_PARENT = "Incident Number"
TITLE = "BeyondTrust session"
"""How both sides start a work info summary (the connector's title): the session's LSID
follows, by which the server process groups them."""
CLEAR_MARGIN = 0.5
"""rsbridge's calls per session must be at most this share of the baseline's."""
_LSID = re.compile(re.escape(TITLE) + r" (\S+)")
_PIECE = re.compile(r"\((\d+)/(\d+)\) rsb-")  # "(2/3)" before the marker: a continuation
_PART_SUFFIX = re.compile(r" \(part \d+ of \d+\)\Z")  # what split_text appends to each part


# --- the AR server process ---------------------------------------------------------------


def _rows(state: SimRemedyState, form: str) -> list[dict[str, Any]]:
    """Every entry of ``form`` by field name, without AR's core fields (ids, dates,
    submitter: what the server sets itself)."""
    fdef = state.forms[form]
    with state.lock:
        stored = list(state.stores[fdef.store].values())
    return [
        {f.name: e.values.get(f.id) for f in fdef.fields if f.id > 8 and not f.system}
        | {"_id": str(e.values.get(1))}
        for e in stored
    ]


def _digest(items: Sequence[Any]) -> str:
    digest = hashlib.sha256()
    for text in sorted(json.dumps(i, sort_keys=True, default=str) for i in items):
        digest.update(text.encode())
    return digest.hexdigest()


def _work_info_texts(state: SimRemedyState) -> dict[str, Any]:
    """Per session (LSID in the summary): the work info text it got, pieces of one text
    joined back (split_text's "(part i of n)" removed) and parts joined as the connector
    joins them (a blank line); with the incident and the entries' attributes."""
    pieces: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in _rows(state, WORK_LOG):
        found = _LSID.match(str(row.get("Description") or ""))
        if found:
            pieces[found[1]].append(row)
    texts: list[Any] = []
    for lsid, rows in pieces.items():
        text = ""
        for row in sorted(rows, key=lambda r: str(r["_id"])):  # creation order
            piece = _PIECE.search(str(row["Description"]))
            detail = str(row.get("Detailed Description") or "")
            if piece:
                detail = _PART_SUFFIX.sub("", detail)
            continued = piece is not None and int(piece[1]) > 1
            text += detail if continued or not text else "\n\n" + detail
        attributes = ("Work Log Type", "View Access", "Secure Work Log", "Communication Source")
        kinds = sorted({tuple(r[a] for a in attributes) for r in rows})
        texts.append([lsid, rows[0][WORK_LOG_PARENT], kinds, text])
    return {
        "entries": sum(len(r) for r in pieces.values()),
        "sessions": len(pieces),
        "digest": _digest(texts),
    }


def _holdings(state: SimRemedyState) -> dict[str, Any]:
    """What the import left: entries and digests of the session forms and work info."""
    sessions = [
        {k: v for k, v in r.items() if k not in ("_id", "Work Log IDs")}
        for r in _rows(state, SESSION.name)
    ]
    participants = [
        {k: v for k, v in r.items() if k != "_id"} for r in _rows(state, PARTICIPANT.name)
    ]
    event_rows = _rows(state, EVENTS.name)
    lines = [
        [row["Session ID"], row["Ticket Number"], line]
        for row in event_rows
        for line in str(row.get("Events") or "").split("\n")
    ]
    return {
        "sessions": len(sessions),
        "sessions_digest": _digest(sessions),
        "participants": len(participants),
        "participants_digest": _digest(participants),
        "event_entries": len(event_rows),
        "event_lines": len(lines),
        "events_digest": _digest(lines),
        "work_info": _work_info_texts(state),
    }


async def _serve_ar(latency: float) -> None:
    """Child process: serve a seeded AR server with the session forms; print its address."""
    state, demo = prepared_server()
    state.latency = latency

    def results(cpu: float) -> dict[str, Any]:
        with state.lock:
            logged = list(state.requests)
        api = [r for r in logged if r.path not in (LOGIN, LOGOUT)]
        return {
            "calls": len(api),
            "logins": sum(r.path == LOGIN for r in logged),
            "logouts": sum(r.path == LOGOUT for r in logged),
            "by_method": dict(Counter(r.method for r in api)),
            "failed": sum(not 200 <= r.status < 300 for r in logged),
            "cpu_seconds": cpu,
            **_holdings(state),
        }

    user, password = demo.integration
    await serve_peer(create_app(state), results, {"username": user, "password": password})


class ARServer(ChildPeer):
    """A simulated AR System server in a child process (``with ARServer(latency) as ar``)."""

    def __init__(self, latency: float) -> None:
        super().__init__([__file__, "--serve-ar", "--latency", str(latency)], "AR server")


# --- the two importers -------------------------------------------------------------------


def _delivery(session: SupportSession, renderer: Renderer) -> SessionDelivery:
    """The delivery the engine's worker builds for a session end."""
    key = LedgerKey(APPLIANCE_ID, session.lsid, END, INTEGRATION, REPORT_EFFECT)
    return SessionDelivery(str(key), APPLIANCE_ID, INTEGRATION, session, renderer.render(session))


async def import_rsbridge(
    info: dict[str, Any], sessions: Sequence[SupportSession], workers: int
) -> int:
    """Import ``sessions`` with the connector; the requests its client counted."""
    settings = RemedyConnector.validate_settings(
        {"server_url": info["url"], "username": info["username"], "password": info["password"]}
    )
    connector = RemedyConnector(settings)
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
    """One search and one create per record: the session, each participant, each event,
    each work info part (see the module docstring)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.http = httpx.AsyncClient(base_url=info["url"], timeout=30)
        self.renderer = Renderer()
        self.calls = 0

    async def login(self) -> None:
        self.calls += 1
        response = await self.http.post(
            LOGIN, data={"username": self.info["username"], "password": self.info["password"]}
        )
        response.raise_for_status()
        self.http.headers["Authorization"] = f"AR-JWT {response.text.strip()}"

    async def aclose(self) -> None:
        if "Authorization" in self.http.headers:
            self.calls += 1
            await self.http.post(LOGOUT)
        await self.http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.calls += 1
        response = await self.http.request(method, path, **kwargs)
        response.raise_for_status()
        return response

    async def _found(self, form: str, qualification: str) -> bool:
        """Whether an entry of ``form`` matches (one search, one entry's id asked for)."""
        id_field = "Work Log ID" if form == WORK_LOG else "Request ID"
        response = await self._call(
            "GET",
            RemedyClient.entry_path(form),
            params={"q": qualification, "fields": f"values({id_field})", "limit": "1"},
        )
        return bool(response.json()["entries"])

    async def _once(self, form: str, qualification: str, values: dict[str, Any]) -> None:
        """Search, then create unless found."""
        if not await self._found(form, qualification):
            await self._call("POST", RemedyClient.entry_path(form), json={"values": values})

    async def import_session(self, session: SupportSession) -> None:
        delivery = _delivery(session, self.renderer)
        number = session.external_key or ""
        lookup = equals("Incident Number", number)
        if not await self._found("HPD:IncidentInterface", lookup):
            raise SystemExit(f"baseline: no incident {number}")
        key = session_key(APPLIANCE_ID, INTEGRATION, session.lsid)
        header = session_row(
            session,
            key,
            appliance_id=APPLIANCE_ID,
            integration=INTEGRATION,
            ticket_number=number,
            ticket_form="incident",
            details=delivery.report.full.text,
            association=delivery.association.source,
            state=COMPLETE,
        )
        await self._once(SESSION.name, equals(SESSION_KEY, key), header.values)
        for row in child_rows(session, key, number):
            if row.form is PARTICIPANT:
                await self._once(row.form.name, equals(ROW_KEY, row.key), row.values)
        for n, event in enumerate(session.events):
            child = row_key(key, EVENTS.logical, f"event/{n}")
            values = {
                ROW_KEY: child,
                SESSION_KEY: key,
                "Session ID": session.lsid,
                "Ticket Number": number,
                "First Sequence": n,
                "Last Sequence": n,
                "First Time": ar_time(event.timestamp),
                "Last Time": ar_time(event.timestamp),
                "Events": event_line(event, n),
            }
            await self._once(EVENTS.name, equals(ROW_KEY, child), values)
        for name, text in self._parts(delivery):
            await self._work_info(delivery, number, name, text)

    @staticmethod
    def _parts(delivery: SessionDelivery) -> list[tuple[str, str]]:
        """The parts the connector puts in its one work info entry, each on its own."""
        parts = delivery.report.parts
        out = [(n, parts[n].text.strip()) for n in ("chat", "notes") if n in parts]
        return [(n, t) for n, t in out if t] + [("end", _end_notice(delivery.session))]

    async def _work_info(
        self, delivery: SessionDelivery, number: str, name: str, text: str
    ) -> None:
        """One work info entry per part (more when longer than an entry holds), each with
        a marker in its summary, searched first."""
        chunks = split_text(text, DETAIL_CHARS, measure=len)
        stem = f"rsb-{row_key(delivery.key, 'work-info', name)[:20]}"
        for i, chunk in enumerate(chunks):
            marker = f"{stem}-{i}"
            count = f" ({i + 1}/{len(chunks)})" if len(chunks) > 1 else ""
            lookup = f"{equals(WORK_LOG_PARENT, number)} AND {field_ref('Description')} LIKE "
            values = {
                WORK_LOG_PARENT: number,
                "Work Log Type": "General Information",
                "Description": f"{TITLE} {delivery.session.lsid}{count} {marker}",
                "Detailed Description": chunk,
                "View Access": "Internal",
                "Secure Work Log": "No",
                "Communication Source": "Other",
            }
            await self._once(WORK_LOG, f'{lookup}"%{marker}%"', values)


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
    """One importer's figures; ``peer`` is what the AR server reported."""

    @property
    def entries(self) -> int:
        """Entries written: session forms and work info."""
        p = self.peer
        return int(
            p["sessions"] + p["participants"] + p["event_entries"] + p["work_info"]["entries"]
        )


def measure(importer: Any, sessions: Sequence[SupportSession], args: argparse.Namespace) -> Side:
    with ARServer(args.latency) as server:
        with Stopwatch() as watch:
            client_calls = asyncio.run(importer(server.info, sessions, args.workers))
        peer = server.results()
    if peer["failed"]:
        print(f"  warning: the AR server answered {peer['failed']} requests with an error")
    return Side(len(sessions), watch.seconds, watch.cpu_seconds, client_calls, peer)


def _incidents() -> list[str]:
    """The seeded open incidents' numbers (the same on every server: seeded state)."""
    _, demo = prepared_server()
    return [demo.ids[name] for name in OPEN_INCIDENTS]


# --- report ------------------------------------------------------------------------------


TABLE = Comparison(32)
_row = TABLE.row


def _report(args: argparse.Namespace, base: Side, ours: Side) -> None:
    print()
    print(
        f"{ours.sessions} sessions; the AR server answers in {args.latency * 1000:.0f} ms; "
        f"{args.workers} sessions at once on both sides"
    )
    print(TABLE.header())
    print(_row("AR calls / session", base.calls_per_session, ours.calls_per_session))
    print(_row("sessions/s", base.rate, ours.rate, "12.2f"))
    print(_row(f"time for {ours.sessions} sessions (s)", base.seconds, ours.seconds, "12.2f"))
    print(_row("CPU ms / session (this process)", base.cpu_ms_per_session, ours.cpu_ms_per_session))
    print(
        _row(
            "AR server CPU ms / session",
            base.peer["cpu_seconds"] * 1000 / base.sessions,
            ours.peer["cpu_seconds"] * 1000 / ours.sessions,
        )
    )
    met = ours.calls_per_session <= CLEAR_MARGIN * base.calls_per_session and ours.rate > base.rate
    print(
        f"target: at most {CLEAR_MARGIN:.0%} of the baseline's AR calls per session and faster "
        f"than the baseline -> {verdict(met)}"
    )
    # The connector's plan: lookup, search, create and final update per session, plus
    # one create per entry it wrote besides the session entry.
    planned = 4 * ours.sessions + ours.entries - ours.peer["sessions"]
    as_planned = "as planned" if planned == ours.calls else "NOT as planned"
    print(
        f"rsbridge's plan (lookup, search, create, one create per participant, per 100 events "
        f"and per work info entry, final update): {planned} calls; counted {ours.calls} "
        f"-> {as_planned}"
    )
    print(
        f"calls by method (AR server): baseline {base.peer['by_method']}; "
        f"rsbridge {ours.peer['by_method']}"
    )
    print(
        f"requests counted by the clients (logins and logouts included): baseline "
        f"{base.client_calls}, rsbridge {ours.client_calls} (server: calls {base.calls}, "
        f"{ours.calls}; logins {base.peer['logins']}, {ours.peer['logins']}; logouts "
        f"{base.peer['logouts']}, {ours.peer['logouts']})"
    )
    b, o = base.peer, ours.peer
    print(
        f"entries written: baseline {base.entries} ({b['event_entries']} event, "
        f"{b['work_info']['entries']} work info), rsbridge {ours.entries} "
        f"({o['event_entries']} event, {o['work_info']['entries']} work info)"
    )
    digests = ("sessions_digest", "participants_digest", "events_digest")
    same = all(b[d] == o[d] for d in digests)
    same &= b["work_info"]["digest"] == o["work_info"]["digest"]
    cross_check(
        (
            ("session entries", b["sessions"], o["sessions"]),
            ("participant entries", b["participants"], o["participants"]),
            ("event lines", b["event_lines"], o["event_lines"]),
            ("sessions with work info", b["work_info"]["sessions"], o["work_info"]["sessions"]),
        ),
        content="session, participant, event and work info content",
        same_content=same,
    )
    if not same:
        differ = [d for d in digests if b[d] != o[d]]
        if b["work_info"]["digest"] != o["work_info"]["digest"]:
            differ.append("work info text")
        print(f"  differing: {', '.join(differ)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, help="sessions to import (100; --quick: 20)")
    parser.add_argument("--workers", type=int, default=8, help="sessions imported at once")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per answer")
    parser.add_argument("--seed", type=int, default=7, help="session generator seed")
    parser.add_argument("--quick", action="store_true", help="a smoke run (20 sessions)")
    parser.add_argument("--serve-ar", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_ar:
        asyncio.run(_serve_ar(args.latency))
        return
    if args.sessions is None:
        args.sessions = 20 if args.quick else 100
    if args.sessions < 1 or args.workers < 1:
        parser.error("--sessions and --workers must be at least 1")
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
