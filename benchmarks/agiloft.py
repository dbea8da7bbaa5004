"""Agiloft session import: calls per session and throughput vs a call-per-part importer.

    python3 dev.py bench agiloft [--sessions 100] [--workers 8] [--latency 0.02]
                                 [--ws-delay 0.02] [--seed 7] [--quick]

Agiloft pauses after every REST call (``WSDelay``, about 1 s by default on a real KB), so a
session import costs about one second per call whatever the client does: calls per session
are the figure that matters, and the projected time per session at 1 s a call is printed.

The peer is the simulated knowledge base (``rsbridge.sim.agiloft``) with the demo data and
what rsbridge's set-up adds (the demo's ``prepared_kb``), plus one employee per
representative of the session generator's roster (the seed's "User Setup Requirements":
technicians exist in both systems), answering every request ``--latency`` seconds late
(``state.latency``) and pausing ``--ws-delay`` seconds after each call (``state.ws_delay``,
Agiloft's ``WSDelay``; 20 ms by default so that the run stays short; at 1 s the wall time
of each side would be about its calls x 1 s). It runs in a child process of its own, so
that it does not share a core with the code under test, and reports back what it received
and what it holds. A fresh child serves each side, so both start from the same KB.

The sessions: ``--sessions`` sessions from ``SessionGenerator(--seed)``, each started from
a key naming one of the demo's open support cases (``printer``, ``vpn``) by record id, in
turn, generated once before either side runs (not timed) and imported by both sides. Each
side imports up to ``--workers`` sessions at once (the engine's worker count) and renders
each one with :class:`~rsbridge.engine.render.Renderer` inside the timed part.

* **rsbridge**: :class:`~rsbridge.connectors.agiloft.AgiloftConnector` (default settings)
  doing what the engine's worker does for a session end: ``find_ticket(external_key)`` (one
  EWSearch of the case), then ``write_session_report`` with a
  :class:`~rsbridge.connectors.base.SessionDelivery` keyed as the worker keys it: one
  EWUpsert of the session record matched on ``session_id`` (docs/agiloft.md, "How a session
  lands"), after the representative's employee lookup (one EWSearch per representative,
  cached). It logs in once (EWLogin, JWT) and logs out at the end.
* **baseline**: a naive importer over plain httpx, written as the vendor's extension
  plausibly works. It sends ``$login`` and ``$password`` with every call (no token), and
  for each session, one call after another: an EWSearch for the case by id, an EWSearch for
  a session record with the session's id (so that a replay does not make a second record),
  an EWCreate of the record with the session id and the case link (an EWUpdate of the
  record found instead, on a replay), then one EWUpdate per part of the report: the details
  (times, duration, representative and technician, customer, host, portal, appliance,
  external key), the chat transcript (when there is one) and the HTML report. It looks up
  each representative's employee once per run, as rsbridge's cache does, so the comparison
  is about the shape of the session write and not about the cache. Its values come from the
  connector's own builder (``session_values``), so both sides write the same content.

``--attach-report``: both sides also put the HTML report on the record as a file (the
``session_files`` column): rsbridge with ``attach_report = true`` (the file goes in the same
multipart EWUpsert), the baseline with one EWAttach more per session.

Figures: Agiloft calls per imported session, counted by the KB (logins and logouts apart),
the projected time per session at ``WSDelay`` = 1 s (calls x 1 s: the calls of one session
run one after another), sessions per second and the total time of the import run, and CPU
time per session of this process and of the KB's; printed with their ratio rsbridge /
baseline, measured in the same invocation. The target line (the issue's "one call for the
session record plus at most one per attachment", plus the case lookup): at most 2 calls
per session besides the cached user lookups, 3 with ``--attach-report``; a second line
says whether there was at most one user lookup per representative. As a cross-check, not
an assertion: that both sides left the same session records (session ids, the HTML
report, the chat transcript, the case and technician links, the attached file, every other
column).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

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
from rsbridge.connectors.agiloft import AgiloftConnector
from rsbridge.connectors.agiloft.client import search_value
from rsbridge.connectors.agiloft.demo import OPEN_CASES, SESSIONS_TABLE, prepared_kb
from rsbridge.connectors.agiloft.records import session_values
from rsbridge.connectors.base import SessionDelivery
from rsbridge.engine.render import Renderer
from rsbridge.engine.store.base import LedgerKey
from rsbridge.engine.worker import REPORT_EFFECT
from rsbridge.sim.agiloft import SimAgiloftState, create_app
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.appliance.seed_data import REP_NAMES

APPLIANCE_ID = "default"
INTEGRATION = "agiloft"
CASES = "case"
PEOPLE = "contacts.employees"
FILES = "session_files"
SESSION_CALLS = 2
"""rsbridge's target: calls per session besides the cached user lookups."""
WS_DELAY_REAL = 1.0
"""Agiloft's default ``WSDelay`` (seconds after every REST call) on a real KB."""
LOGIN, LOGOUT = "EWLogin", "EWLogout"
SERVER_SET = ("id", "date_created", "date_updated")
"""Columns the KB sets itself (left out of the content compared)."""
DETAILS = (
    "appliance",
    "external_key",
    "start_time",
    "end_time",
    "duration",
    "technician",
    "primary_representative",
    "customer_name",
    "customer_hostname",
    "public_site",
)
"""The baseline's "details" part: the session record's columns besides its key, its case
link, the chat transcript and the report."""


# --- the KB process -------------------------------------------------------------------------


def _digest(items: Sequence[Any]) -> str:
    digest = hashlib.sha256()
    for text in sorted(json.dumps(i, sort_keys=True, default=str) for i in items):
        digest.update(text.encode())
    return digest.hexdigest()


def _holdings(state: SimAgiloftState) -> dict[str, Any]:
    """What the import left in the session details table: counts and digests."""
    with state.lock:
        records = list(state.records[SESSIONS_TABLE].values())
        rows = [
            {k: v for k, v in r.values.items() if k not in SERVER_SET}
            | {f"{k}@links": list(v) for k, v in r.links.items()}
            | {
                f"{k}@files": [
                    [f.name, f.content_type, hashlib.sha256(f.data).hexdigest()] for f in v
                ]
                for k, v in r.files.items()
            }
            for r in records
        ]
    ids = [r.get("session_id") for r in rows]

    def pairs(column: str) -> list[Any]:
        return [[r.get("session_id"), r.get(column)] for r in rows if r.get(column)]

    return {
        "records": len(rows),
        "session_ids": len(set(ids)),
        "session_ids_digest": _digest(ids),
        "with_report": len(pairs("session_report")),
        "report_digest": _digest(pairs("session_report")),
        "with_chat": len(pairs("chat_transcript")),
        "chat_digest": _digest(pairs("chat_transcript")),
        "case_links": len(pairs("support_case@links")),
        "case_digest": _digest(pairs("support_case@links")),
        "technician_links": len(pairs("technician@links")),
        "with_file": len(pairs("session_files@files")),
        "records_digest": _digest(rows),
    }


def _add_roster(state: SimAgiloftState) -> None:
    """One employee per representative the generator uses (login = BeyondTrust username)."""
    for name, username in REP_NAMES:
        first, _, last = name.partition(" ")
        state.create(
            PEOPLE,
            {
                "_login": [username],
                "full_name": [name],
                "first_name": [first],
                "last_name": [last],
                "bomgar_username": [username],
            },
        )


async def _serve_kb(latency: float, ws_delay: float) -> None:
    """Child process: serve the demo KB with rsbridge's tables; print its address."""
    state, demo = prepared_kb()
    _add_roster(state)
    state.latency = latency
    state.ws_delay = ws_delay

    def results(cpu: float) -> dict[str, Any]:
        with state.lock:
            logged = list(state.requests)
        api = [r for r in logged if r.operation not in (LOGIN, LOGOUT)]
        return {
            "calls": len(api),
            "logins": sum(r.operation == LOGIN for r in logged),
            "logouts": sum(r.operation == LOGOUT for r in logged),
            "by_operation": dict(Counter(f"{r.operation} {r.table}" for r in api)),
            "user_lookups": sum(r.table == PEOPLE for r in api),
            "failed": sum(not 200 <= r.status < 300 for r in logged),
            "cpu_seconds": cpu,
            **_holdings(state),
        }

    login, password = demo.integration
    cases = [str(demo.ids[name]) for name in OPEN_CASES]
    await serve_peer(
        create_app(state),
        results,
        {
            "kb": demo.kb,
            "login": login,
            "password": password,
            "cases": cases,
        },
    )


class KB(ChildPeer):
    """A simulated Agiloft KB in a child process (``with KB(latency, ws_delay) as kb``)."""

    def __init__(self, latency: float, ws_delay: float) -> None:
        argv = [__file__, "--serve-kb", "--latency", str(latency), "--ws-delay", str(ws_delay)]
        super().__init__(argv, "Agiloft KB")


# --- the two importers ----------------------------------------------------------------------


def _delivery(session: SupportSession, renderer: Renderer) -> SessionDelivery:
    """The delivery the engine's worker builds for a session end."""
    key = LedgerKey(APPLIANCE_ID, session.lsid, END, INTEGRATION, REPORT_EFFECT)
    return SessionDelivery(str(key), APPLIANCE_ID, INTEGRATION, session, renderer.render(session))


async def import_rsbridge(
    info: dict[str, Any], sessions: Sequence[SupportSession], workers: int, attach: bool
) -> int:
    """Import ``sessions`` with the connector; the requests its client counted."""
    settings = AgiloftConnector.validate_settings(
        {
            "kb_url": info["url"],
            "kb": info["kb"],
            "login": info["login"],
            "password": info["password"],
            "allow_plain_http": True,
            "attach_report": attach,
        }
    )
    connector = AgiloftConnector(settings)
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
    """Credentials on every call; search, create, one update per part (module docstring)."""

    def __init__(self, info: dict[str, Any], attach: bool) -> None:
        self.info = info
        self.attach = attach
        self.http = httpx.AsyncClient(base_url=info["url"], timeout=60)
        self.renderer = Renderer()
        self.calls = 0
        self._users: dict[str, asyncio.Task[str | None]] = {}

    async def aclose(self) -> None:
        await self.http.aclose()

    def _form(self, table: str, params: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [
            ("$KB", self.info["kb"]),
            ("$table", table),
            ("$lang", "en"),
            ("$login", self.info["login"]),
            ("$password", self.info["password"]),
            ("err_code_resp", "1"),
            *params,
        ]

    async def _call(self, operation: str, table: str, params: list[tuple[str, str]]) -> Any:
        """One EW call with the credentials in the form; its ``result``."""
        self.calls += 1
        form = self._form(table, params)
        response = await self.http.post(
            f"/ewws/{operation}/.json",
            content=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response.raise_for_status()
        return response.json()["result"]

    async def _technician(self, username: str) -> str | None:
        """The employee's login for a representative, once per username for the run."""
        if username not in self._users:
            query = f"bomgar_username={search_value(username)} || _login={search_value(username)}"
            params = [("query", query), ("field", "_login"), ("page", "0"), ("limit", "1")]

            async def look() -> str | None:
                found = await self._call("EWSearch", PEOPLE, params)
                return str(found[0]["_login"]) if found else None

            self._users[username] = asyncio.ensure_future(look())
        return await self._users[username]

    async def import_session(self, session: SupportSession) -> None:
        delivery = _delivery(session, self.renderer)
        case_id = session.external_key or ""
        case = await self._call(
            "EWSearch",
            CASES,
            [("query", f"id={case_id}"), ("field", "id"), ("page", "0"), ("limit", "1")],
        )
        if not case:
            raise SystemExit(f"baseline: no case {case_id}")
        primary = _primary(session)
        chat = delivery.report.parts.get("chat")
        values = session_values(
            session,
            appliance_id=APPLIANCE_ID,
            case_id=case_id,
            technician=await self._technician(primary) if primary else None,
            chat=chat.text.strip() if chat else "",
            report_html=delivery.report.full.html,
        )
        lookup = [("query", f"session_id={search_value(session.lsid)}"), ("field", "id")]
        found = await self._call("EWSearch", SESSIONS_TABLE, lookup)
        header = [(k, str(values[k])) for k in ("session_id", "support_case") if values[k]]
        if found:
            record = str(found[0]["id"])
            await self._call("EWUpdate", SESSIONS_TABLE, [("id", record), *header])
        else:
            record = str(await self._call("EWCreate", SESSIONS_TABLE, header))
        details = [(k, str(values[k])) for k in DETAILS if values[k] is not None]
        for part in (details, _one(values, "chat_transcript"), _one(values, "session_report")):
            if part:
                await self._call("EWUpdate", SESSIONS_TABLE, [("id", record), *part])
        if self.attach:
            await self._attach(record, session.lsid, delivery.report.full.html)

    async def _attach(self, record: str, lsid: str, html: str) -> None:
        """EWAttach of the report as a file, replacing the one a replay finds (the file
        name and type the connector uses)."""
        self.calls += 1
        name = f"session-{_safe(lsid)}.html"
        form = self._form(
            SESSIONS_TABLE,
            [("id", record), ("field", FILES), ("fileName", name), (f"{FILES}$overwrite", "1")],
        )
        response = await self.http.post(
            "/ewws/EWAttach/.json",
            data=dict(form),
            files={FILES: (name, html.encode(), "text/html; charset=utf-8")},
        )
        response.raise_for_status()


def _safe(value: str) -> str:
    """The connector's file-name rule for the LSID."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in value)[:80] or "session"


def _one(values: dict[str, str | None], column: str) -> list[tuple[str, str]]:
    value = values.get(column)
    return [(column, value)] if value else []


async def import_baseline(
    info: dict[str, Any], sessions: Sequence[SupportSession], workers: int, attach: bool
) -> int:
    """Import ``sessions`` the naive way; the requests it sent."""
    naive = NaiveImporter(info, attach)
    slots = asyncio.Semaphore(workers)

    async def one(session: SupportSession) -> None:
        async with slots:
            await naive.import_session(session)

    try:
        await asyncio.gather(*(one(s) for s in sessions))
    finally:
        await naive.aclose()
    return naive.calls


# --- measurements ---------------------------------------------------------------------------


@dataclass
class Side(harness.Side):
    """One importer's figures; ``peer`` is what the KB reported."""

    @property
    def session_calls_per_session(self) -> float:
        """Calls per session besides the user lookups."""
        return (self.calls - int(self.peer["user_lookups"])) / self.sessions


Importer = Callable[[dict[str, Any], Sequence[SupportSession], int, bool], Any]


def measure(
    importer: Importer, sessions: Sequence[SupportSession], args: argparse.Namespace
) -> Side:
    with KB(args.latency, args.ws_delay) as kb:
        with Stopwatch() as watch:
            client_calls = asyncio.run(
                importer(kb.info, sessions, args.workers, args.attach_report)
            )
        peer = kb.results()
    if peer["failed"]:
        print(f"  warning: the KB answered {peer['failed']} requests with an error")
    return Side(len(sessions), watch.seconds, watch.cpu_seconds, client_calls, peer)


def _cases() -> list[str]:
    """The demo's open cases' record ids (the same on every KB: seeded state)."""
    _, demo = prepared_kb()
    return [str(demo.ids[name]) for name in OPEN_CASES]


# --- report ---------------------------------------------------------------------------------


TABLE = Comparison(36)
_row = TABLE.row


def _report(args: argparse.Namespace, base: Side, ours: Side, representatives: int) -> None:
    print()
    print(
        f"{ours.sessions} sessions; the KB answers in {args.latency * 1000:.0f} ms and pauses "
        f"{args.ws_delay * 1000:.0f} ms after each call (WSDelay); {args.workers} sessions at "
        f"once on both sides{'; the report attached as a file' if args.attach_report else ''}"
    )
    print(TABLE.header())
    print(_row("Agiloft calls / session", base.calls_per_session, ours.calls_per_session, "12.2f"))
    print(
        _row(
            "  of which not user lookups",
            base.session_calls_per_session,
            ours.session_calls_per_session,
            "12.2f",
        )
    )
    print(
        _row(
            "s / session at WSDelay = 1 s",
            base.calls_per_session * WS_DELAY_REAL,
            ours.calls_per_session * WS_DELAY_REAL,
        )
    )
    print(_row("sessions/s", base.rate, ours.rate, "12.2f"))
    print(_row(f"time for {ours.sessions} sessions (s)", base.seconds, ours.seconds, "12.2f"))
    print(_row("CPU ms / session (this process)", base.cpu_ms_per_session, ours.cpu_ms_per_session))
    print(
        _row(
            "KB CPU ms / session",
            base.peer["cpu_seconds"] * 1000 / base.sessions,
            ours.peer["cpu_seconds"] * 1000 / ours.sessions,
        )
    )
    target = SESSION_CALLS + int(args.attach_report)
    what = "the case lookup, the record" + (", its attachment" if args.attach_report else "")
    met = ours.session_calls_per_session <= target
    print(
        f"target: at most {target} calls per session besides the cached user lookups "
        f"({what}) -> {verdict(met)}"
    )
    lookups = int(ours.peer["user_lookups"])
    print(
        f"user lookups: rsbridge {lookups}, baseline {base.peer['user_lookups']}, for "
        f"{representatives} representatives (at most one each) -> "
        f"{verdict(lookups <= representatives)}"
    )
    print(
        f"calls by operation and table (KB): baseline {base.peer['by_operation']}; "
        f"rsbridge {ours.peer['by_operation']}"
    )
    print(
        f"requests counted by the clients (logins and logouts included): baseline "
        f"{base.client_calls}, rsbridge {ours.client_calls} (KB: calls {base.calls}, "
        f"{ours.calls}; logins {base.peer['logins']}, {ours.peer['logins']}; logouts "
        f"{base.peer['logouts']}, {ours.peer['logouts']})"
    )
    b, o = base.peer, ours.peer
    digests = ("session_ids_digest", "report_digest", "chat_digest", "case_digest")
    same = all(b[d] == o[d] for d in (*digests, "records_digest"))
    cross_check(
        (
            ("session records", b["records"], o["records"]),
            ("distinct session ids", b["session_ids"], o["session_ids"]),
            ("records with the HTML report", b["with_report"], o["with_report"]),
            ("records with a chat transcript", b["with_chat"], o["with_chat"]),
            ("records linked to a case", b["case_links"], o["case_links"]),
            ("records linked to a technician", b["technician_links"], o["technician_links"]),
            ("records with the report as a file", b["with_file"], o["with_file"]),
        ),
        content="session ids, report HTML, chat transcripts, case links, every column",
        same_content=same,
    )
    if not same:
        differ = [d for d in (*digests, "records_digest") if b[d] != o[d]]
        print(f"  differing: {', '.join(differ)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, help="sessions to import (100; --quick: 20)")
    parser.add_argument("--workers", type=int, default=8, help="sessions imported at once")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per answer")
    parser.add_argument(
        "--ws-delay",
        type=float,
        default=0.02,
        help="seconds the KB pauses after each call (Agiloft's WSDelay; about 1 on a real KB)",
    )
    parser.add_argument(
        "--attach-report",
        action="store_true",
        help="both sides also attach the HTML report to the record as a file",
    )
    parser.add_argument("--seed", type=int, default=7, help="session generator seed")
    parser.add_argument("--quick", action="store_true", help="a smoke run (20 sessions)")
    parser.add_argument("--serve-kb", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.latency < 0 or args.ws_delay < 0:
        parser.error("--latency and --ws-delay must not be negative")
    if args.serve_kb:
        asyncio.run(_serve_kb(args.latency, args.ws_delay))
        return
    if args.sessions is None:
        args.sessions = 20 if args.quick else 100
    if args.sessions < 1 or args.workers < 1:
        parser.error("--sessions and --workers must be at least 1")
    cases = _cases()
    generator = SessionGenerator(args.seed)
    sessions = [generator.session_from_key(cases[n % len(cases)], {}) for n in range(args.sessions)]
    representatives = len({_primary(s) for s in sessions} - {None})
    print("rsbridge ...", flush=True)
    ours = measure(import_rsbridge, sessions, args)
    print("baseline ...", flush=True)
    base = measure(import_baseline, sessions, args)
    _report(args, base, ours, representatives)


def _primary(session: SupportSession) -> str | None:
    """The username whose employee the session record's technician links to."""
    reps = session.representatives
    first = reps[0].username if reps else None
    return next((r.username for r in reps if r.primary), first)


if __name__ == "__main__":
    main()
