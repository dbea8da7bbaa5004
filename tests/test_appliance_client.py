"""ApplianceClient over real HTTP against the simulated appliance (and small broken apps)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rsbridge.appliance.auth import TokenCache
from rsbridge.appliance.client import LSID_BATCH_SIZE, ApplianceClient, TimeWindow
from rsbridge.appliance.command import (
    HealthCheck,
    Issue,
    LoggedInRep,
    Queue,
    SupportTeam,
    TeamMember,
)
from rsbridge.appliance.ratelimit import RateLimits, SlidingWindowLimiter
from rsbridge.appliance.report_model import (
    EventType,
    ExitSurvey,
    ExitSurveyRecord,
    PrimaryCustomer,
    PrimaryRep,
    SessionEvent,
    SessionSummary,
    SupportSession,
    SurveyAnswer,
    SurveyQuestion,
    TeamActivity,
)
from rsbridge.appliance.report_parser import DamagedItem
from rsbridge.errors import (
    ApplianceAuthError,
    ApplianceCommandError,
    ApplianceConnectionError,
    ApplianceError,
    ApplianceHostError,
    AppliancePermissionError,
    ApplianceRateLimitedError,
    ApplianceReportError,
    ApplianceResponseError,
    ApplianceServerError,
    ClientScriptError,
    ConfigurationError,
    InvalidCustomFieldError,
    RepresentativeNotFoundError,
    RepresentativeUnavailableError,
    RsbridgeError,
    SessionNotFoundError,
)
from rsbridge.sim.appliance import report_xml
from rsbridge.sim.appliance.faults import Damage
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.appliance.server import COMMAND_NS, create_app
from rsbridge.sim.appliance.state import ApiAccount, SimApplianceState
from rsbridge.sim.serve import SwappableApp, serve_in_thread

NOW = 1_700_100_000.0  # 2023-11-16T02:00:00Z
REPORTING_NS = report_xml.REPORTING_NS
DECL = '<?xml version="1.0" encoding="UTF-8"?>\n\n'
FAST = RateLimits(per_second=1000, per_hour=100_000)  # tests that are not about our limiter
FAKE_SECRET = "FakeSecret-never-in-a-message-0123456789"
FAKE_TOKEN = "FakeBearer0123456789abcdefghijKLMNOPQRST"


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class FakeClock:
    """A clock the tests move by hand (the server's, and the client's where injected)."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """A limiter sleep that moves time instead of waiting."""
        self.sleeps.append(seconds)
        self.now += seconds


Server = tuple[SwappableApp, str]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    swappable = SwappableApp()
    with serve_in_thread(swappable) as url:
        yield swappable, url.removeprefix("http://")


def plug(server: Server, app: ASGIApp) -> str:
    """Serve ``app`` on the module's server; returns ``host:port``."""
    server[0].app = app
    return server[1]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> SimApplianceState:
    return SimApplianceState.default(seed=7, now=clock.now)


@pytest.fixture
def host(server: Server, state: SimApplianceState, clock: FakeClock) -> str:
    # The server's rate-limit windows never move on a fake clock: keep them out of the way.
    return plug(server, create_app(state, clock=clock, rate_per_second=1000, rate_per_hour=10**6))


@dataclass
class Call:
    path: str
    status: int
    params: dict[str, str]
    bearer: str | None


class Recorder:
    """Every request the client's httpx client sent, with the response status."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def on_response(self, response: httpx.Response) -> None:
        request = response.request
        auth = request.headers.get("authorization", "")
        self.calls.append(
            Call(
                request.url.path,
                response.status_code,
                dict(parse_qsl(request.content.decode(), keep_blank_values=True)),
                auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None,
            )
        )

    @property
    def trail(self) -> list[tuple[str, int]]:
        return [(c.path, c.status) for c in self.calls]

    @property
    def bearers(self) -> list[str]:
        return [c.bearer for c in self.calls if c.bearer is not None]

    def api_params(self) -> list[dict[str, str]]:
        return [c.params for c in self.calls if c.path.startswith("/api/")]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def http(recorder: Recorder) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        timeout=5.0, event_hooks={"response": [recorder.on_response]}
    ) as client:
        yield client


def make_client(
    host: str, account: ApiAccount, http: httpx.AsyncClient, **kwargs: Any
) -> ApplianceClient:
    kwargs.setdefault("rate_limits", FAST)
    return ApplianceClient(
        host, account.client_id, account.client_secret, scheme="http", http=http, **kwargs
    )


@pytest.fixture
def client(host: str, state: SimApplianceState, http: httpx.AsyncClient) -> ApplianceClient:
    return make_client(host, state.accounts[0], http)


@pytest.fixture
def read_only(host: str, state: SimApplianceState, http: httpx.AsyncClient) -> ApplianceClient:
    return make_client(host, state.accounts[1], http)


def assert_clean(exc: RsbridgeError, *secrets: str) -> None:
    """The error explains itself without leaking a client secret or a bearer token."""
    assert len(exc.message) > 20
    for text in (str(exc), repr(exc), exc.message):
        for secret in secrets:
            assert secret not in text


def secrets_of(state: SimApplianceState, recorder: Recorder) -> list[str]:
    return [a.client_secret for a in state.accounts] + recorder.bearers


async def start_session(
    client: ApplianceClient, state: SimApplianceState, queue_id: str = Queue.GENERAL, **kw: Any
) -> str:
    """Generate a key through the client and let a customer use it: the new lsid."""
    key = await client.generate_session_key(queue_id=queue_id, **kw)
    return state.start_session(key.short_key, now=NOW)


# --- Command API: generate_session_key ---------------------------------------------------


async def test_generate_session_key_general(
    client: ApplianceClient, state: SimApplianceState, recorder: Recorder
) -> None:
    key = await client.generate_session_key()
    (stored,) = state.session_keys.values()
    assert key.short_key == stored.short_key and len(key.short_key) == 7
    assert key.key_url == f"https://support.example.com/?ak={stored.access_key}"
    assert (key.type, key.queue, key.queue_available, key.queue_id) == (
        "support",
        "general",
        True,
        None,
    )
    assert key.expires == at(NOW + 86400)
    assert key.external_key is None
    assert key.mail_subject == "Remote Support Invitation"
    assert key.mail_body is not None
    assert key.mail_body.startswith("Click on the link below and follow the directions.")
    assert key.key_url in key.mail_body
    assert (stored.priority, stored.skills, stored.custom, stored.queue) == (2, [], {}, "general")
    assert recorder.api_params() == [
        {"action": "generate_session_key", "type": "support", "queue_id": "general"}
    ]


@pytest.mark.parametrize(
    ("queue_id", "queue", "sent_id", "available"),
    [
        (Queue.GENERAL, "general", None, True),
        (Queue.rep(1), "rep", "1", True),
        (Queue.rep_username("jsmith"), "rep", "2", True),
        (Queue.team(1), "team", "1", True),
        (Queue.team(3), "team", "3", False),  # Field Services: only bwilson, logged out
        (Queue.issue("vpn"), "issue", "3", True),
    ],
)
async def test_generate_session_key_queue_forms(
    client: ApplianceClient,
    state: SimApplianceState,
    recorder: Recorder,
    queue_id: str,
    queue: str,
    sent_id: str | None,
    available: bool,
) -> None:
    key = await client.generate_session_key(queue_id=queue_id)
    assert (key.queue, key.queue_id, key.queue_available) == (queue, sent_id, available)
    (stored,) = state.session_keys.values()
    assert (stored.queue, stored.queue_id, stored.available) == (queue, sent_id, available)
    assert recorder.api_params()[0]["queue_id"] == queue_id


async def test_generate_session_key_options_reach_the_appliance(
    client: ApplianceClient, state: SimApplianceState, recorder: Recorder
) -> None:
    key = await client.generate_session_key(
        queue_id=Queue.team(2),
        ttl=1800,
        url_hostname="partners.example.com",
        priority=1,
        skills=["windows", "printers"],
        external_key="INC0012345",
        custom_attributes={"ticket_id": "T-1 & <2>", "snow_task_id": "TASK0001"},
    )
    (stored,) = state.session_keys.values()
    assert key.expires == at(NOW + 1800) and stored.expires == int(NOW) + 1800
    assert key.key_url == f"https://partners.example.com/?ak={stored.access_key}"
    assert stored.portal.name == "Partners"
    assert key.external_key == "INC0012345"
    assert (key.queue, key.queue_id) == ("team", "2")
    assert stored.priority == 1
    assert stored.skills == ["windows", "printers"]
    assert stored.custom == {
        "external_key": "INC0012345",
        "ticket_id": "T-1 & <2>",
        "snow_task_id": "TASK0001",
    }
    assert recorder.api_params() == [
        {
            "action": "generate_session_key",
            "type": "support",
            "queue_id": "team:2",
            "ttl": "1800",
            "url_hostname": "partners.example.com",
            "priority": "1",
            "skills": "windows,printers",
            "session.custom.external_key": "INC0012345",
            "session.custom.ticket_id": "T-1 & <2>",
            "session.custom.snow_task_id": "TASK0001",
        }
    ]


# --- Command API: session operations -------------------------------------------------------


ALL_FIELDS = {
    "external_key": "",
    "snow_task_id": "",
    "snow_cmdb_ci_id": "",
    "snow_call_id": "",
    "snow_interaction_id": "",
    "ticket_id": "",
    "rsb_sig": "",
}


async def test_session_attributes_get_and_set(
    client: ApplianceClient, state: SimApplianceState
) -> None:
    lsid = await start_session(
        client, state, external_key="EK1", custom_attributes={"ticket_id": "T1"}
    )
    assert await client.get_session_attributes(lsid) == {
        **ALL_FIELDS,
        "external_key": "EK1",
        "ticket_id": "T1",
    }
    # Unlisted attributes keep their value; "" clears one.
    await client.set_session_attributes(lsid, {"ticket_id": "", "snow_task_id": "TASK<1>"})
    assert await client.get_session_attributes(lsid) == {
        **ALL_FIELDS,
        "external_key": "EK1",
        "snow_task_id": "TASK<1>",
    }
    await client.set_session_attributes(lsid, external_key="EK2")
    assert state.active_sessions[lsid].custom == {"external_key": "EK2", "snow_task_id": "TASK<1>"}
    await client.set_session_attributes(lsid, {"snow_task_id": ""}, external_key="")
    assert await client.get_session_attributes(lsid) == ALL_FIELDS


async def test_get_logged_in_reps(client: ApplianceClient, state: SimApplianceState) -> None:
    await start_session(client, state, Queue.rep(2))
    reps = await client.get_logged_in_reps()
    assert [r.id for r in reps] == ["1", "2", "3", "5"]  # bwilson is logged out
    assert reps[1] == LoggedInRep(
        id="2",
        public_display_name="John",
        private_display_name="John Smith",
        type="Normal",
        direct_link='<a href="https://support.example.com/api/start_session?id=2&amp;name=John">'
        "John</a>",
        logged_in_since=at(int(NOW) - 3600).isoformat(),
        presentation_count=0,
        support_session_count=1,
        showing_on_rep_list=True,
    )
    guest = reps[3]
    assert (guest.type, guest.showing_on_rep_list, guest.support_session_count) == (
        "Invited",
        False,
        0,
    )


SERVICE_DESK_ISSUES = [
    Issue("1", "printing", "Printing problems"),
    Issue("2", "password_reset", "Password reset"),
]


async def test_get_support_teams_with_and_without_members(
    client: ApplianceClient, recorder: Recorder
) -> None:
    teams = await client.get_support_teams()
    assert teams == [
        SupportTeam(
            "1",
            "Service Desk",
            "service_desk",
            SERVICE_DESK_ISSUES,
            [
                TeamMember("2", "jsmith", "John", "John Smith", "member"),
                TeamMember("3", "mjones", "Mary", "Mary Jones", "lead"),
                TeamMember("1", "admin", "Admin", "Administrator", "manager"),
            ],
        ),
        SupportTeam(
            "2",
            "Network",
            "network",
            [Issue("3", "vpn", "VPN access")],
            [
                TeamMember("3", "mjones", "Mary", "Mary Jones", "member"),
                TeamMember("2", "jsmith", "John", "John Smith", "member"),
            ],
        ),
        SupportTeam(
            "3",
            "Field Services",
            "field_services",
            [Issue("4", "hardware", "Hardware")],
            [TeamMember("4", "bwilson", "Bob", "Bob Wilson", "lead")],
        ),
    ]
    bare = await client.get_support_teams(members=False)
    assert bare == [SupportTeam(t.id, t.name, t.code_name, t.issues, []) for t in teams]
    assert recorder.api_params() == [
        {"action": "get_support_teams", "showmembers": "1"},
        {"action": "get_support_teams"},
    ]


FULL_PERMISSIONS = {
    "perm_command": "full_access",
    "perm_reporting_support": "1",
    "perm_reporting_presentation": "1",
    "perm_reporting_license": "1",
    "perm_reporting_archive": "1",
    "perm_real_time_state": "0",
    "perm_ecm": "0",
    "perm_backup": "0",
    "perm_scim": "0",
}


async def test_get_api_info(client: ApplianceClient, read_only: ApplianceClient) -> None:
    info = await client.get_api_info()
    assert (info.api_version, info.company_name, info.timestamp) == (
        "1.19.0",
        "examplecorp",
        at(NOW),
    )
    assert info.permissions == FULL_PERMISSIONS
    assert info.can("perm_command") and info.can("perm_reporting_support", "1")
    assert not info.can("perm_ecm", "1")
    limited = await read_only.get_api_info()
    assert limited.permissions == {**FULL_PERMISSIONS, "perm_command": "read_only"}
    assert not limited.can("perm_command") and limited.can("perm_command", "read_only")


async def test_check_health(client: ApplianceClient, state: SimApplianceState) -> None:
    assert await client.check_health() == HealthCheck(
        appliance_id=state.appliance_id,
        hostname="support.example.com",
        version="19.1.8 (37380-749b17ca33d2475427428f263608ae98d69f7a35)",
        success=True,
        failover_role="none",
        error_message=None,
    )


async def test_join_transfer_terminate(
    client: ApplianceClient, state: SimApplianceState, clock: FakeClock, recorder: Recorder
) -> None:
    lsid = await start_session(client, state, Queue.rep(1))
    await client.join_session(lsid, rep_id=2)
    await client.join_session(lsid, rep_username="guest")
    assert state.active_sessions[lsid].members == [1, 2, 5]
    await client.transfer_session(lsid, Queue.team(2))
    assert state.active_sessions[lsid].queue == "team:2"
    await client.transfer_session(lsid, Queue.rep_username("jsmith"))
    assert state.active_sessions[lsid].queue == "rep:2"
    assert state.active_sessions[lsid].members == [2, 1, 5]
    clock.now += 90
    await client.terminate_session(lsid)
    assert lsid not in state.active_sessions
    (report,) = [s async for s in client.support_sessions(lsid=lsid)]
    assert (report.start_time, report.end_time, report.duration) == (
        at(NOW),
        at(NOW + 90),
        timedelta(seconds=90),
    )
    assert [r.username for r in report.representatives] == ["jsmith", "admin", "guest"]
    assert [p["action"] for p in recorder.api_params()[1:6]] == [
        "join_session",
        "join_session",
        "transfer_session",
        "transfer_session",
        "terminate_session",
    ]
    assert recorder.api_params()[2] == {
        "action": "join_session",
        "lsid": lsid,
        "rep_username": "guest",
    }


async def test_join_session_needs_exactly_one_rep(client: ApplianceClient) -> None:
    cases: list[dict[str, Any]] = [{}, {"rep_id": 1, "rep_username": "admin"}]
    for kwargs in cases:
        with pytest.raises(ValueError, match="exactly one"):
            await client.join_session("a" * 32, **kwargs)
    assert client.requests_sent == 0


async def test_verify(
    client: ApplianceClient,
    read_only: ApplianceClient,
    state: SimApplianceState,
    recorder: Recorder,
) -> None:
    assert (await client.verify()).permissions == FULL_PERMISSIONS
    with pytest.raises(AppliancePermissionError) as caught:
        await read_only.verify()
    err = caught.value
    assert "perm_command" in err.message and "perm_reporting_support" not in err.message
    assert "API Configuration" in err.message
    assert (err.retryable, err.action) == (False, "get_api_info")
    assert_clean(err, *secrets_of(state, recorder))


# --- Reporting API -------------------------------------------------------------------------

DAY2 = datetime(2024, 12, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def stored(state: SimApplianceState) -> list[SupportSession]:
    """Six generated sessions on 2024-12-02 and four on 2024-12-04, all ended."""
    sessions = [
        *SessionGenerator(11).sessions(6),
        *SessionGenerator(12, start=DAY2).sessions(4),
    ]
    for s in sessions:
        state.add_report(s, now=NOW)
    return sessions


async def test_support_session_by_lsid_equals_the_stored_session(
    client: ApplianceClient, stored: list[SupportSession]
) -> None:
    for wanted in (stored[0], stored[7]):
        assert [s async for s in client.support_sessions(lsid=wanted.lsid)] == [wanted]
    assert [s async for s in client.support_sessions(lsid="0" * 32)] == []


async def test_support_sessions_by_lsids_are_batched_and_deduplicated(
    client: ApplianceClient, stored: list[SupportSession], recorder: Recorder
) -> None:
    unknown = [f"{i:032x}" for i in range(2 * LSID_BATCH_SIZE - len(stored))]
    ids = [s.lsid for s in stored] + unknown  # exactly two batches' worth
    got = [s async for s in client.support_sessions(lsids=ids + ids[:60] + ids[::-7])]
    assert got == stored  # each once, in report (start) order
    assert client.requests_sent == 2
    batches = [p["lsids"].split(",") for p in recorder.api_params()]
    assert batches == [ids[:LSID_BATCH_SIZE], ids[LSID_BATCH_SIZE:]]
    # One more distinct lsid needs a third request.
    more = [s async for s in client.support_sessions(lsids=[*ids, "f" * 32])]
    assert more == stored and client.requests_sent == 5
    assert [s async for s in client.support_sessions(lsids=[])] == []
    assert client.requests_sent == 5


async def test_sessions_not_asked_for_are_skipped_and_counted(
    client: ApplianceClient, state: SimApplianceState, stored: list[SupportSession]
) -> None:
    with state.lock:
        state.report_faults.unrequested = True  # every session, whatever was asked
    wanted = stored[3]
    assert [s async for s in client.support_sessions(lsid=wanted.lsid)] == [wanted]
    assert client.unrequested_items == len(stored) - 1
    pair = [stored[1].lsid, stored[8].lsid]
    assert [s.lsid async for s in client.support_sessions(lsids=pair)] == pair
    assert client.unrequested_items == 2 * len(stored) - 3
    # A time window asks for every session: nothing is unrequested there.
    window = TimeWindow("start", date(2024, 12, 2), timedelta(days=3))
    assert [s async for s in client.support_sessions(window=window)] == stored
    assert client.unrequested_items == 2 * len(stored) - 3


async def test_a_damaged_session_is_reported_and_the_others_are_read(
    client: ApplianceClient, state: SimApplianceState, stored: list[SupportSession]
) -> None:
    broken = stored[2]
    with state.lock:
        state.report_faults.damaged[broken.lsid] = "value"  # <file_transfer_count>12abc<
    ids = [s.lsid for s in stored]
    damaged: list[DamagedItem] = []
    got = [s async for s in client.support_sessions(lsids=ids, on_damaged=damaged.append)]
    assert got == [s for s in stored if s is not broken]
    [item] = damaged
    assert item.key == broken.lsid and item.index == 2 and "12abc" in item.error.message
    # Without on_damaged the damaged session fails the call, naming it.
    before: list[SupportSession] = []
    with pytest.raises(ApplianceReportError) as caught:
        await drain(client.support_sessions(lsids=ids), before)
    assert before == stored[:2]
    assert caught.value.item == broken.lsid and caught.value.retryable is False


@pytest.mark.parametrize("how", ["markup", "elements"])
async def test_damage_the_parser_cannot_read_past_names_its_session(
    client: ApplianceClient, state: SimApplianceState, stored: list[SupportSession], how: Damage
) -> None:
    broken = stored[4]
    with state.lock:
        state.report_faults.damaged[broken.lsid] = how
    before: list[SupportSession] = []
    with pytest.raises(ApplianceReportError) as caught:
        await drain(client.support_sessions(lsids=[s.lsid for s in stored]), before)
    assert before == stored[:4]
    assert caught.value.item == broken.lsid
    if how == "elements":  # refused before its tree is built, for good
        assert "more than the limit of 250000 elements" in caught.value.message
        assert caught.value.retryable is False


async def test_a_report_trickled_byte_by_byte_fails_retryably_at_the_call_deadline(
    host: str, state: SimApplianceState, stored: list[SupportSession]
) -> None:
    with state.lock:
        state.report_faults.trickle_seconds = 0.05  # the answer would take minutes
    account = state.accounts[0]
    async with ApplianceClient(
        host, account.client_id, account.client_secret, scheme="http", deadline=0.5
    ) as client:
        async with asyncio.timeout(20):  # generous: proves it did not wait for the peer
            with pytest.raises(ApplianceConnectionError) as caught:
                await drain(client.support_sessions(lsids=[s.lsid for s in stored]), [])
    err = caught.value
    assert err.retryable is True
    assert "did not answer in time" in err.message and "call deadline of 0.5 s" in err.message
    assert_clean(err, account.client_secret)


async def test_support_sessions_by_time_window(
    client: ApplianceClient, stored: list[SupportSession], recorder: Recorder
) -> None:
    day1, day2 = stored[:6], stored[6:]

    async def fetch(window: TimeWindow) -> list[SupportSession]:
        return [s async for s in client.support_sessions(window=window)]

    assert await fetch(TimeWindow("start", date(2024, 12, 2), timedelta(days=1))) == day1
    assert await fetch(TimeWindow("start", date(2024, 12, 2), timedelta(days=3))) == stored
    assert await fetch(TimeWindow("start", date(2024, 12, 3))) == day2
    first, fourth = day1[1].start_time, day1[4].start_time
    assert first is not None and fourth is not None
    assert await fetch(TimeWindow("start", first, fourth - first)) == day1[1:4]
    assert await fetch(TimeWindow("start", first)) == stored[1:]
    cut = day1[3].end_time
    assert cut is not None
    ended_after = [s for s in stored if s.end_time is not None and s.end_time >= cut]
    assert await fetch(TimeWindow("end", cut)) == ended_after
    assert await fetch(TimeWindow("end", date(2024, 12, 4), timedelta(days=1))) == day2
    assert [
        {k: v for k, v in p.items() if k != "generate_report"} for p in recorder.api_params()
    ] == [
        {"start_date": "2024-12-02", "duration": "1"},
        {"start_date": "2024-12-02", "duration": "3"},
        {"start_date": "2024-12-03", "duration": "0"},
        {
            "start_time": str(int(first.timestamp())),
            "duration": str(int((fourth - first).total_seconds())),
        },
        {"start_time": str(int(first.timestamp())), "duration": "0"},
        {"end_time": str(int(cut.timestamp())), "duration": "0"},
        {"end_date": "2024-12-04", "duration": "1"},
    ]


def test_time_window_parameters() -> None:
    since = datetime(2024, 12, 2, 8, 0, tzinfo=UTC)
    assert TimeWindow("end", since, timedelta(hours=2)).params() == [
        ("end_time", "1733126400"),
        ("duration", "7200"),
    ]
    assert TimeWindow("start", date(2024, 1, 31), timedelta(weeks=1)).params() == [
        ("start_date", "2024-01-31"),
        ("duration", "7"),
    ]
    with pytest.raises(ValueError, match="timezone-aware"):
        TimeWindow("start", datetime(2024, 12, 2)).params()
    for bad in (timedelta(hours=36), timedelta(0), timedelta(hours=5)):
        with pytest.raises(ValueError, match="whole days"):
            TimeWindow("start", date(2024, 12, 2), bad).params()


async def test_support_sessions_selection_is_exactly_one(client: ApplianceClient) -> None:
    window = TimeWindow("start", date(2024, 12, 2))
    cases: list[dict[str, Any]] = [
        {},
        {"lsid": "a" * 32, "window": window},
        {"lsid": "a", "lsids": ["b"]},
    ]
    for kwargs in cases:
        with pytest.raises(ValueError, match="exactly one"):
            [s async for s in client.support_sessions(**kwargs)]
    assert client.requests_sent == 0


async def test_in_progress_session_has_no_end_time(
    client: ApplianceClient, state: SimApplianceState
) -> None:
    lsid = await start_session(client, state, Queue.rep(1), external_key="EK9")
    (session,) = [s async for s in client.support_sessions(lsid=lsid)]
    assert (session.lsid, session.start_time, session.end_time, session.ended) == (
        lsid,
        at(NOW),
        None,
        False,
    )
    assert session.external_key == "EK9"
    assert [e.event_type for e in session.events] == [EventType.SESSION_START]


async def test_report_delay_hides_the_end_time_until_it_passes(
    client: ApplianceClient, state: SimApplianceState, clock: FakeClock
) -> None:
    lsid = await start_session(client, state, Queue.rep(1))
    clock.now += 600
    state.complete_session(lsid, report_delay=30, now=clock.now)
    generated = next(SessionGenerator(5).sessions(1))
    state.complete_session(generated.lsid, generated, report_delay=30, now=clock.now)

    async def ended() -> list[bool]:
        got = [s async for s in client.support_sessions(lsids=[lsid, generated.lsid])]
        assert [s.lsid for s in got] == [lsid, generated.lsid]  # start order
        return [s.ended for s in got]

    assert await ended() == [False, False]
    (pending,) = [s async for s in client.support_sessions(lsid=generated.lsid)]
    assert pending.end_time is None and pending.duration is None
    assert EventType.SESSION_END not in [e.event_type for e in pending.events]
    clock.now += 29
    assert await ended() == [False, False]
    clock.now += 1
    assert await ended() == [True, True]
    assert [s async for s in client.support_sessions(lsid=generated.lsid)] == [generated]
    (done,) = [s async for s in client.support_sessions(lsid=lsid)]
    assert (done.end_time, done.duration) == (at(NOW + 600), timedelta(minutes=10))


async def test_support_session_listing(
    client: ApplianceClient, stored: list[SupportSession]
) -> None:
    listing = await client.support_session_listing(TimeWindow("start", date(2024, 12, 2)))
    assert listing == [
        SessionSummary(s.lsid, s.recording is not None, s.external_key) for s in stored
    ]
    assert any(s.has_recording for s in listing) or all(s.recording is None for s in stored)
    assert await client.support_session_listing(TimeWindow("end", date(2030, 1, 1))) == []


T13 = datetime(2023, 11, 13, 10, 0, tzinfo=UTC)


@pytest.fixture
def surveyed(state: SimApplianceState) -> SupportSession:
    session = SupportSession(
        lsid="b" * 32,
        start_time=T13,
        end_time=T13 + timedelta(minutes=10),
        duration=timedelta(minutes=10),
        primary_rep=PrimaryRep("Admin", 1, "1"),
        primary_customer=PrimaryCustomer("John Doe", 2),
        customer_surveys=[
            ExitSurvey(2, [SurveyAnswer("rating", "5"), SurveyAnswer("comments", "great")])
        ],
        rep_surveys=[ExitSurvey(1, [SurveyAnswer("resolved", "yes")])],
    )
    state.add_report(session, now=NOW)
    state.add_report(SupportSession(lsid="a" * 32, start_time=T13, end_time=T13), now=NOW)
    return session


@pytest.mark.parametrize(
    ("kind", "questions"),
    [
        (
            "customer",
            [
                SurveyQuestion("1", "rating", "rating", answers=["5"]),
                SurveyQuestion("2", "comments", "comments", answers=["great"]),
            ],
        ),
        ("rep", [SurveyQuestion("1", "resolved", "resolved", answers=["yes"])]),
    ],
)
async def test_exit_surveys(
    client: ApplianceClient,
    surveyed: SupportSession,
    recorder: Recorder,
    kind: str,
    questions: list[SurveyQuestion],
) -> None:
    expected = ExitSurveyRecord(
        lsid=surveyed.lsid,
        timestamp=surveyed.end_time,
        submitted_by=kind,
        primary_rep=PrimaryRep("Admin", 1, "1"),
        primary_customer=PrimaryCustomer("John Doe", 2),
        representatives=[],
        questions=questions,
    )
    assert kind in ("customer", "rep")
    by_lsid = await client.exit_surveys(kind, lsid=surveyed.lsid)  # type: ignore[arg-type]
    by_window = await client.exit_surveys(
        kind,  # type: ignore[arg-type]
        window=TimeWindow("end", date(2023, 11, 13), timedelta(days=1)),
    )
    by_lsids = await client.exit_surveys(kind, lsids=["a" * 32, surveyed.lsid])  # type: ignore[arg-type]
    assert by_lsid == by_window == by_lsids == [expected]
    report = "SupportCustExitSurvey" if kind == "customer" else "SupportRepExitSurvey"
    assert {p["generate_report"] for p in recorder.api_params()} == {report}


async def test_support_team_activity(client: ApplianceClient, state: SimApplianceState) -> None:
    login = SessionEvent(datetime(2023, 11, 14, 9, 0, tzinfo=UTC), "Representative Logged In")
    chat = SessionEvent(
        datetime(2023, 11, 15, 9, 0, tzinfo=UTC), EventType.CHAT_MESSAGE, body="hi team"
    )
    state.add_team_event(1, login)
    state.add_team_event(2, chat)
    nov14 = TimeWindow("start", date(2023, 11, 14), timedelta(days=1))
    assert await client.support_team_activity(nov14) == [TeamActivity("1", "Service Desk", [login])]
    everything = TimeWindow("start", date(2023, 11, 1))
    assert await client.support_team_activity(everything) == [
        TeamActivity("1", "Service Desk", [login]),
        TeamActivity("2", "Network", [chat]),
    ]
    assert await client.support_team_activity(everything, team_id="2") == [
        TeamActivity("2", "Network", [chat])
    ]


async def test_report_without_reporting_permission(
    host: str, state: SimApplianceState, http: httpx.AsyncClient, recorder: Recorder
) -> None:
    account = ApiAccount(
        "cmd-only", "cmd-only-secret-value", "Command only", {"perm_command": "full_access"}
    )
    state.accounts.append(account)
    client = make_client(host, account, http)
    with pytest.raises(AppliancePermissionError) as caught:
        [s async for s in client.support_sessions(lsid="a" * 32)]
    assert "perm_reporting_support" in caught.value.appliance_text
    assert caught.value.retryable is False
    assert_clean(caught.value, *secrets_of(state, recorder))


# --- tokens ---------------------------------------------------------------------------------


async def test_many_calls_share_one_token(
    client: ApplianceClient,
    state: SimApplianceState,
    stored: list[SupportSession],
    recorder: Recorder,
) -> None:
    await client.check_health()
    await client.get_api_info()
    assert [s async for s in client.support_sessions(lsid=stored[2].lsid)] == [stored[2]]
    reps, teams, listing = await asyncio.gather(
        asyncio.gather(*(client.get_logged_in_reps() for _ in range(10))),
        asyncio.gather(*(client.get_support_teams() for _ in range(10))),
        client.support_session_listing(TimeWindow("start", date(2024, 12, 2))),
    )
    assert [len(r) for r in reps] == [4] * 10 and all(r == reps[0] for r in reps)
    assert [len(t) for t in teams] == [3] * 10 and all(t == teams[0] for t in teams)
    assert [s.lsid for s in listing] == [s.lsid for s in stored]
    assert client.tokens.tokens_issued == 1
    assert [c.path for c in recorder.calls].count("/oauth2/token") == 1
    assert len(recorder.bearers) == client.requests_sent == 24
    assert set(recorder.bearers) == {recorder.bearers[0]}
    assert {c.status for c in recorder.calls} == {200}


@pytest.mark.parametrize(("ttl", "renew_at"), [(3600, 3540), (100, 90)])
async def test_token_is_renewed_before_it_expires(
    server: Server,
    state: SimApplianceState,
    clock: FakeClock,
    http: httpx.AsyncClient,
    recorder: Recorder,
    ttl: int,
    renew_at: int,
) -> None:
    host = plug(server, create_app(state, clock=clock, token_ttl=ttl, rate_per_second=1000))
    client = make_client(host, state.accounts[0], http)
    account = state.accounts[0]
    client.tokens = TokenCache(
        http, client.base_url, account.client_id, account.client_secret, clock=clock
    )
    await client.check_health()
    first = recorder.bearers[-1]
    clock.now = NOW + renew_at - 1
    await client.check_health()
    assert (client.tokens.tokens_issued, recorder.bearers[-1]) == (1, first)
    clock.now = NOW + renew_at
    await client.check_health()
    assert client.tokens.tokens_issued == 2
    assert recorder.bearers[-1] != first
    # Renewed while the old token still worked: no 401 was needed.
    assert state.account_for_token(first, clock.now) is not None
    assert recorder.trail == [
        ("/oauth2/token", 200),
        ("/api/command", 200),
        ("/api/command", 200),
        ("/oauth2/token", 200),
        ("/api/command", 200),
    ]


async def test_rotated_secret_reauthenticates_once_then_fails(
    client: ApplianceClient, state: SimApplianceState, recorder: Recorder
) -> None:
    account = state.accounts[0]
    old_secret = account.client_secret
    await client.check_health()
    # Same secret saved again: tokens die, the client silently gets a new one.
    state.rotate_secret(account.client_id, old_secret)
    assert (await client.check_health()).success
    assert client.tokens.tokens_issued == 2
    # A really new secret: one more token request, refused, and a clear error.
    new_secret = state.rotate_secret(account.client_id)
    with pytest.raises(ApplianceAuthError) as caught:
        await client.get_api_info()
    assert recorder.trail == [
        ("/oauth2/token", 200),
        ("/api/command", 200),
        ("/api/command", 401),
        ("/oauth2/token", 200),
        ("/api/command", 200),
        ("/api/command", 401),
        ("/oauth2/token", 401),
    ]
    err = caught.value
    assert err.retryable is False
    assert account.client_id in err.message and "secret" in err.message
    assert_clean(err, old_secret, new_secret, *recorder.bearers)


async def test_token_evicted_by_thirty_newer_ones_is_replaced(
    client: ApplianceClient, state: SimApplianceState, host: str, recorder: Recorder
) -> None:
    await client.check_health()
    mine = recorder.bearers[-1]
    account = state.accounts[0]
    async with httpx.AsyncClient() as raw:
        for _ in range(30):
            r = await raw.post(
                f"http://{host}/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(account.client_id, account.client_secret),
            )
            assert r.status_code == 200
    assert state.account_for_token(mine, NOW) is None
    info = await client.get_api_info()
    assert info.permissions["perm_command"] == "full_access"
    assert client.tokens.tokens_issued == 2
    assert recorder.trail == [
        ("/oauth2/token", 200),
        ("/api/command", 200),
        ("/api/command", 401),
        ("/oauth2/token", 200),
        ("/api/command", 200),
    ]
    assert recorder.bearers[1] == mine != recorder.bearers[2]


# --- errors from the simulator ------------------------------------------------------------------


async def test_bad_client_secret(
    host: str, state: SimApplianceState, http: httpx.AsyncClient, recorder: Recorder
) -> None:
    account = state.accounts[0]
    wrong = "WrongSecret-that-must-not-leak-0123456789"
    client = ApplianceClient(
        host, account.client_id, wrong, scheme="http", http=http, rate_limits=FAST
    )
    with pytest.raises(ApplianceAuthError) as caught:
        await client.check_health()
    assert caught.value.retryable is False
    assert "HTTP 401" in caught.value.message and account.client_id in caught.value.message
    assert recorder.trail == [("/oauth2/token", 401)] and client.requests_sent == 0
    assert_clean(caught.value, wrong, account.client_secret)


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        (
            {"queue_id": "rep:99"},
            RepresentativeNotFoundError,
            "Error validating parameter 'queue_id': The representative could not be found",
        ),
        (
            {"queue_id": "rep_username:nobody"},
            RepresentativeNotFoundError,
            "Error validating parameter 'queue_id': The representative could not be found",
        ),
        (
            {"queue_id": "rep:3"},
            RepresentativeUnavailableError,
            "Requested support representative is not available at this time",
        ),
        (
            {"queue_id": "rep_username:bwilson"},
            RepresentativeUnavailableError,
            "Requested support representative is not available at this time",
        ),
        (
            {"custom_attributes": {"not_configured": "x"}},
            InvalidCustomFieldError,
            "Error validating parameter 'session.custom.not_configured': "
            "invalid custom field code name",
        ),
        (
            {"queue_id": "team:42"},
            ApplianceCommandError,
            "Error validating parameter 'queue_id': The team could not be found",
        ),
    ],
)
async def test_generate_session_key_errors(
    client: ApplianceClient,
    state: SimApplianceState,
    recorder: Recorder,
    kwargs: dict[str, Any],
    error: type[ApplianceCommandError],
    text: str,
) -> None:
    with pytest.raises(ApplianceCommandError) as caught:
        await client.generate_session_key(**kwargs)
    err = caught.value
    assert type(err) is error
    assert (err.appliance_text, err.action, err.retryable) == (text, "generate_session_key", False)
    assert err.message.startswith(f"generate_session_key: the appliance answered {text!r}")
    assert state.session_keys == {}
    assert_clean(err, *secrets_of(state, recorder))


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_session_attributes("0" * 32),
        lambda c: c.set_session_attributes("0" * 32, {"ticket_id": "x"}),
        lambda c: c.join_session("0" * 32, rep_id=1),
        lambda c: c.transfer_session("0" * 32, "rep:1"),
        lambda c: c.terminate_session("0" * 32),
    ],
)
async def test_unknown_lsid(
    client: ApplianceClient,
    state: SimApplianceState,
    recorder: Recorder,
    call: Callable[[ApplianceClient], Awaitable[object]],
) -> None:
    with pytest.raises(SessionNotFoundError) as caught:
        await call(client)
    err = caught.value
    assert err.appliance_text == "Error validating parameter 'lsid': The session could not be found"
    assert err.retryable is False and "lsid" in err.message
    assert_clean(err, *secrets_of(state, recorder))


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.generate_session_key(),
        lambda c: c.set_session_attributes("0" * 32, {"ticket_id": "x"}),
        lambda c: c.terminate_session("0" * 32),
    ],
)
async def test_read_only_account_cannot_change_anything(
    read_only: ApplianceClient,
    state: SimApplianceState,
    recorder: Recorder,
    call: Callable[[ApplianceClient], Awaitable[object]],
) -> None:
    with pytest.raises(AppliancePermissionError) as caught:
        await call(read_only)
    err = caught.value
    assert err.appliance_text == (
        "Permission denied: this API account does not have perm_command access"
    )
    assert err.retryable is False and "API Configuration" in err.message
    assert state.session_keys == {}
    assert_clean(err, *secrets_of(state, recorder))
    # Reading is allowed.
    assert [r.id for r in await read_only.get_logged_in_reps()] == ["1", "2", "3", "5"]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"custom_attributes": {"ticket_id": "x" * 1025}}, "session.custom.ticket_id is 1,025"),
        ({"external_key": "k" * 1025}, "session.custom.external_key is 1,025"),
        ({"custom_attributes": {"external_key": "x"}}, "external_key=..."),
        ({"custom_attributes": {"bad name": "x"}}, "is not valid"),
    ],
)
async def test_custom_field_limits_are_checked_before_any_request(
    client: ApplianceClient,
    state: SimApplianceState,
    recorder: Recorder,
    kwargs: dict[str, Any],
    fragment: str,
) -> None:
    await client.check_health()
    sent, calls = client.requests_sent, len(recorder.calls)
    with pytest.raises(ClientScriptError, match=fragment.replace(".", r"\.")) as caught:
        await client.generate_session_key(**kwargs)
    with pytest.raises(ClientScriptError):
        await client.set_session_attributes(
            "a" * 32, kwargs.get("custom_attributes"), external_key=kwargs.get("external_key")
        )
    assert caught.value.retryable is False
    assert (client.requests_sent, len(recorder.calls)) == (sent, calls) == (1, 2)
    assert client.tokens.tokens_issued == 1
    assert state.session_keys == {}


# --- 429 -----------------------------------------------------------------------------------------


def fake_time_limiter(clock: FakeClock) -> SlidingWindowLimiter:
    """The client's limiter on the server's fake clock, sleeping by moving it."""
    return SlidingWindowLimiter(FAST, clock=clock, sleep=clock.sleep)


async def test_retry_after_within_the_limit_is_waited_out(
    server: Server,
    state: SimApplianceState,
    clock: FakeClock,
    http: httpx.AsyncClient,
    recorder: Recorder,
) -> None:
    host = plug(server, create_app(state, clock=clock, rate_per_second=2))
    client = make_client(host, state.accounts[0], http)
    client.limiter = fake_time_limiter(clock)
    healths = [await client.check_health() for _ in range(3)]
    assert all(h.success for h in healths)
    assert [s for _, s in recorder.trail] == [200, 200, 200, 429, 200]
    assert clock.sleeps == [1.0] and clock.now == NOW + 1
    assert client.requests_sent == 4


async def test_retry_after_longer_than_allowed_raises(
    server: Server,
    state: SimApplianceState,
    clock: FakeClock,
    http: httpx.AsyncClient,
    recorder: Recorder,
) -> None:
    host = plug(server, create_app(state, clock=clock, rate_per_second=2))
    client = make_client(host, state.accounts[0], http, max_rate_limit_wait=0)
    client.limiter = fake_time_limiter(clock)
    await client.check_health()
    await client.check_health()
    with pytest.raises(ApplianceRateLimitedError) as caught:
        await client.check_health()
    err = caught.value
    assert (err.retryable, err.retry_after) == (True, 1.0)
    assert "429" in err.message and "check_health" in err.message
    assert client.requests_sent == 3 and clock.sleeps == []
    assert client.limiter.delay() == 1.0  # every caller now holds back for Retry-After
    assert_clean(err, *secrets_of(state, recorder))
    # The next caller is told at once rather than left sleeping in the limiter.
    with pytest.raises(ApplianceRateLimitedError, match="budget is exhausted") as again:
        await client.get_api_info()
    assert again.value.retry_after == 1.0
    assert client.requests_sent == 3 and clock.sleeps == []


async def test_hourly_budget_exhausted_raises_with_retry_after(
    server: Server,
    state: SimApplianceState,
    clock: FakeClock,
    http: httpx.AsyncClient,
) -> None:
    host = plug(server, create_app(state, clock=clock, rate_per_second=100, rate_per_hour=2))
    client = make_client(host, state.accounts[0], http)  # max_rate_limit_wait=60
    client.limiter = fake_time_limiter(clock)
    clock.now += 100
    await client.check_health()
    clock.now += 10
    await client.get_api_info()
    with pytest.raises(ApplianceRateLimitedError) as caught:
        [s async for s in client.support_sessions(lsid="a" * 32)]
    assert caught.value.retry_after == 3600 - 10
    assert caught.value.retryable is True and "report SupportSession" in caught.value.message
    assert client.requests_sent == 3 and clock.sleeps == []


# --- small broken appliances ---------------------------------------------------------------------


Endpoint = Callable[[Request], Awaitable[Response]]


async def good_token(request: Request) -> Response:
    return JSONResponse({"access_token": FAKE_TOKEN, "token_type": "Bearer", "expires_in": 3600})


def answer(
    body: str | bytes,
    status: int = 200,
    media_type: str = "text/xml; charset=UTF-8",
    headers: dict[str, str] | None = None,
) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return Response(body, status, headers, media_type)

    return endpoint


def fake_appliance(
    *,
    command: Endpoint | None = None,
    reporting: Endpoint | None = None,
    token: Endpoint = good_token,
) -> Starlette:
    routes = [Route("/oauth2/token", token, methods=["POST"])]
    if command is not None:
        routes.append(Route("/api/command", command, methods=["POST"]))
    if reporting is not None:
        routes.append(Route("/api/reporting", reporting, methods=["POST"]))
    return Starlette(routes=routes)


def fake_client(host: str, http: httpx.AsyncClient) -> ApplianceClient:
    return ApplianceClient(host, "fake-id", FAKE_SECRET, scheme="http", http=http, rate_limits=FAST)


def cmd_doc(tag: str, inner: str) -> str:
    return f'{DECL}<{tag} xmlns="{COMMAND_NS}">{inner}</{tag}>\n'


HTML = "<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>"


@pytest.mark.parametrize(
    ("endpoint", "error", "retryable", "fragment"),
    [
        (answer(HTML, 503, "text/html"), ApplianceServerError, True, "HTTP 503"),
        (answer(cmd_doc("error", "boom"), 500), ApplianceServerError, True, "HTTP 500"),
        (answer(HTML, 200, "text/html; charset=utf-8"), ApplianceResponseError, False,
         "expected XML, got text/html"),
        (answer('{"ok": true}', 200, "application/json"), ApplianceResponseError, False,
         "expected XML, got application/json"),
        (answer(b"<health_check>", 200, ""), ApplianceResponseError, False,
         "expected XML, got no content type"),
        (answer(f"{DECL}<health_check><success>1</success>"), ApplianceResponseError, True,
         "malformed XML from the appliance at line 3, column 35"),
        (answer(""), ApplianceResponseError, True, "malformed XML"),
        (answer(cmd_doc("health_check", "<success>1</success><bad attr=>")),
         ApplianceResponseError, True, "malformed XML"),
        (answer(HTML, 403, "text/html"), AppliancePermissionError, False, "HTTP 403"),
        (answer("no", 418, "text/plain"), ApplianceResponseError, False, "unexpected HTTP 418"),
        (None, ApplianceResponseError, False, "does not exist (HTTP 404)"),
        (answer(cmd_doc("health_check", "<error>Internal failure</error>")),
         ApplianceCommandError, False, "'Internal failure'"),
        (answer(cmd_doc("error", "Something odd happened")), ApplianceCommandError, False,
         "'Something odd happened'"),
    ],
)  # fmt: skip
async def test_broken_command_endpoint(
    server: Server,
    http: httpx.AsyncClient,
    endpoint: Endpoint | None,
    error: type[ApplianceError],
    retryable: bool,
    fragment: str,
) -> None:
    client = fake_client(plug(server, fake_appliance(command=endpoint)), http)
    with pytest.raises(ApplianceError) as caught:
        await client.check_health()
    err = caught.value
    assert type(err) is error
    assert err.retryable is retryable
    assert fragment in err.message and "check_health" in err.message
    assert_clean(err, FAKE_SECRET, FAKE_TOKEN)
    assert client.requests_sent == 1


async def test_a_web_page_instead_of_the_api_names_host_and_port(
    server: Server, http: httpx.AsyncClient
) -> None:
    host = plug(server, fake_appliance(command=answer(HTML, 200, "text/html")))
    with pytest.raises(ApplianceResponseError) as caught:
        await fake_client(host, http).check_health()
    assert f"is {host} a BeyondTrust appliance?" in caught.value.message


async def test_unexpected_root_for_an_action(server: Server, http: httpx.AsyncClient) -> None:
    client = fake_client(
        plug(server, fake_appliance(command=answer(cmd_doc("session_key", "")))), http
    )
    with pytest.raises(ApplianceResponseError, match="expected <success>, got <session_key>"):
        await client.terminate_session("a" * 32)


async def test_server_that_always_refuses_the_token(
    server: Server, http: httpx.AsyncClient, recorder: Recorder
) -> None:
    denied = JSONResponse({"error": "access_denied", "message": "denied"}, 401)
    client = fake_client(
        plug(server, fake_appliance(command=answer(bytes(denied.body), 401, "application/json"))),
        http,
    )
    with pytest.raises(ApplianceAuthError) as caught:
        await client.get_api_info()
    assert recorder.trail == [
        ("/oauth2/token", 200),
        ("/api/command", 401),
        ("/oauth2/token", 200),
        ("/api/command", 401),
    ]
    assert caught.value.retryable is False and "twice" in caught.value.message
    assert_clean(caught.value, FAKE_SECRET, FAKE_TOKEN)


async def test_persistent_429_with_zero_retry_after_gives_up(
    server: Server, http: httpx.AsyncClient
) -> None:
    limited = answer(cmd_doc("error", "API rate limit exceeded"), 429, headers={"Retry-After": "0"})
    client = fake_client(plug(server, fake_appliance(command=limited)), http)
    with pytest.raises(ApplianceRateLimitedError) as caught:
        await client.check_health()
    assert (caught.value.retry_after, caught.value.retryable) == (0.0, True)
    assert client.requests_sent == 4  # the first try and three retries


async def test_429_without_retry_after_raises(server: Server, http: httpx.AsyncClient) -> None:
    limited = answer(cmd_doc("error", "API rate limit exceeded"), 429)
    client = fake_client(plug(server, fake_appliance(command=limited)), http)
    with pytest.raises(ApplianceRateLimitedError) as caught:
        await client.check_health()
    assert caught.value.retry_after is None and client.requests_sent == 1
    assert client.limiter.delay() > 0.9  # held back for a second anyway


@pytest.mark.parametrize(
    ("token", "error", "retryable", "fragment"),
    [
        (answer(HTML, 200, "text/html"), ApplianceResponseError, False,
         "did not answer with an OAuth token (HTTP 200, text/html"),
        (answer("Not Found", 404, "text/plain"), ApplianceResponseError, False, "HTTP 404"),
        (answer('{"token_type": "Bearer"}', 200, "application/json"), ApplianceResponseError,
         True, "did not answer with an OAuth token"),
        (answer(HTML, 502, "text/html"), ApplianceServerError, True, "HTTP 502"),
        (answer('{"error": "invalid_client"}', 400, "application/json"), ApplianceAuthError,
         False, "HTTP 400"),
        (answer("{}", 429, "application/json", {"Retry-After": "7"}), ApplianceRateLimitedError,
         True, "rate-limited the token request"),
    ],
)  # fmt: skip
async def test_broken_token_endpoint(
    server: Server,
    http: httpx.AsyncClient,
    token: Endpoint,
    error: type[ApplianceError],
    retryable: bool,
    fragment: str,
) -> None:
    client = fake_client(plug(server, fake_appliance(token=token)), http)
    with pytest.raises(ApplianceError) as caught:
        await client.check_health()
    assert type(caught.value) is error
    assert caught.value.retryable is retryable
    assert fragment in caught.value.message
    assert client.requests_sent == 0
    assert_clean(caught.value, FAKE_SECRET)
    if isinstance(caught.value, ApplianceRateLimitedError):
        assert caught.value.retry_after == 7.0


def report_bytes(sessions: list[SupportSession], namespace: str = REPORTING_NS) -> bytes:
    return report_xml.session_list(sessions, namespace=namespace)


SESSIONS = list(SessionGenerator(21).sessions(3))
FULL_REPORT = report_bytes(SESSIONS)
TRUNCATED = FULL_REPORT[: FULL_REPORT.index(f'lsid="{SESSIONS[2].lsid}"'.encode()) + 200]
NESTED_ERROR = (
    f'{DECL}<session_list xmlns="{REPORTING_NS}">\n<error>Report generation failed</error>\n'
    "</session_list>\n"
)


@pytest.mark.parametrize(
    ("endpoint", "error", "retryable", "fragment", "before"),
    [
        (answer(TRUNCATED), ApplianceReportError, True, "malformed report XML", 2),
        (answer(FULL_REPORT.replace(b"<lseq>", b"<lseq><<", 1)), ApplianceReportError, True,
         "malformed report XML at line", 0),
        (answer(f"{DECL}<other_list/>"), ApplianceReportError, False,
         "expected a <session_list> report, got <other_list>", 0),
        (answer(b'<!DOCTYPE s [<!ENTITY a "x">]><session_list/>'), ApplianceReportError,
         False, "declares a DTD", 0),
        (answer('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE s [<!ENTITY a "x">]>'
                "<session_list>&a;</session_list>".encode("utf-16")), ApplianceReportError,
         True, "malformed report XML", 0),
        (answer(FULL_REPORT.replace(b'timestamp="', b'timestamp="99999', 1)),
         ApplianceReportError,
         False, "expected a UNIX timestamp", 0),
        (answer(NESTED_ERROR), ApplianceCommandError, False, "'Report generation failed'", 0),
        (answer(report_xml.reporting_error("Something failed")), ApplianceCommandError, False,
         "'Something failed'", 0),
        (answer(HTML, 502, "text/html"), ApplianceServerError, True, "HTTP 502", 0),
        (answer(HTML, 200, "text/html"), ApplianceResponseError, False, "expected XML", 0),
        (answer(FULL_REPORT, 200, "application/octet-stream"), ApplianceResponseError, False,
         "expected XML, got application/octet-stream", 0),
        (None, ApplianceResponseError, False, "HTTP 404", 0),
    ],
)  # fmt: skip
async def test_broken_reporting_endpoint(
    server: Server,
    http: httpx.AsyncClient,
    endpoint: Endpoint | None,
    error: type[ApplianceError],
    retryable: bool,
    fragment: str,
    before: int,
) -> None:
    client = fake_client(plug(server, fake_appliance(reporting=endpoint)), http)
    got: list[SupportSession] = []
    with pytest.raises(ApplianceError) as caught:
        await drain(client.support_sessions(lsids=[s.lsid for s in SESSIONS]), got)
    assert got == SESSIONS[:before]  # what was complete arrived before the failure
    err = caught.value
    assert type(err) is error
    assert err.retryable is retryable
    assert fragment in err.message
    assert "SupportSession" in err.message or "session_list" in err.message
    assert_clean(err, FAKE_SECRET, FAKE_TOKEN)


async def drain(items: AsyncIterator[SupportSession], into: list[SupportSession]) -> None:
    async for item in items:
        into.append(item)


class Renamespace:
    """Serve an app's XML under other namespaces (as other appliance versions do)."""

    def __init__(self, app: ASGIApp, replacements: list[tuple[str, str]]) -> None:
        self.app = app
        self.replacements = [(a.encode(), b.encode()) for a, b in replacements]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def rewrite(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message["headers"] if k.lower() != b"content-length"]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                for old, new in self.replacements:
                    body = body.replace(old, new)
                message = {**message, "body": body}
            await send(message)

        await self.app(scope, receive, rewrite)


@pytest.mark.parametrize(
    ("command_ns", "reporting_ns"),
    [
        (
            "https://www.beyondtrust.com/namespaces/API/command",
            "https://www.beyondtrust.com/namespaces/API/reporting",
        ),
        ("", "http://www.beyondtrust.com/sra/namespaces/API/reporting"),
    ],
)
async def test_beyondtrust_namespaces_parse_the_same(
    server: Server,
    state: SimApplianceState,
    clock: FakeClock,
    http: httpx.AsyncClient,
    stored: list[SupportSession],
    command_ns: str,
    reporting_ns: str,
) -> None:
    sim = create_app(state, clock=clock, rate_per_second=1000)
    plain = make_client(plug(server, sim), state.accounts[0], http)
    window = TimeWindow("start", date(2024, 12, 2))
    expected = (
        await plain.get_api_info(),
        await plain.check_health(),
        await plain.get_support_teams(),
        await plain.get_logged_in_reps(),
        [s async for s in plain.support_sessions(window=window)],
        await plain.support_session_listing(window),
    )
    replacements = [(f' xmlns="{COMMAND_NS}"', f' xmlns="{command_ns}"' if command_ns else "")]
    replacements.append((REPORTING_NS, reporting_ns))
    host = plug(server, Renamespace(sim, replacements))
    async with httpx.AsyncClient() as raw:
        token = await plain.tokens.get()
        response = await raw.post(
            f"http://{host}/api/command",
            data={"action": "check_health"},
            headers={"Authorization": f"Bearer {token}"},
        )
    body = response.text
    assert COMMAND_NS not in body
    assert (f'<health_check xmlns="{command_ns}">' if command_ns else "<health_check>") in body
    other = make_client(host, state.accounts[0], http)
    got = (
        await other.get_api_info(),
        await other.check_health(),
        await other.get_support_teams(),
        await other.get_logged_in_reps(),
        [s async for s in other.support_sessions(window=window)],
        await other.support_session_listing(window),
    )
    assert got == expected
    assert got[4] == stored
    key = await other.generate_session_key(queue_id=Queue.rep(1), external_key="NS-1")
    assert (key.queue, key.queue_id, key.external_key) == ("rep", "1", "NS-1")
    assert key.short_key in state.session_keys


# --- transport failures -------------------------------------------------------------------------


async def test_unknown_host_is_permanent() -> None:
    async with ApplianceClient("appliance.invalid", "some-id", FAKE_SECRET) as client:
        with pytest.raises(ApplianceHostError) as caught:
            await client.check_health()
    err = caught.value
    assert err.retryable is False
    assert "'appliance.invalid' does not resolve" in err.message
    assert client.requests_sent == 0
    assert_clean(err, FAKE_SECRET)


async def test_connection_refused_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    async with ApplianceClient(
        f"127.0.0.1:{port}", "some-id", FAKE_SECRET, scheme="http"
    ) as client:
        with pytest.raises(ApplianceConnectionError) as caught:
            await client.check_health()
    err = caught.value
    assert type(err) is ApplianceConnectionError and err.retryable is True
    assert f"could not connect to the appliance '127.0.0.1:{port}'" in err.message
    assert_clean(err, FAKE_SECRET)


async def slow_headers(request: Request) -> Response:
    await asyncio.sleep(0.5)
    return Response(cmd_doc("success", "late"), media_type="text/xml")


def slow_body(document: str | bytes) -> Endpoint:
    data = document.encode() if isinstance(document, str) else document

    async def endpoint(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield data[:60]
            await asyncio.sleep(0.5)
            yield data[60:]

        return StreamingResponse(chunks(), media_type="text/xml; charset=UTF-8")

    return endpoint


@pytest.mark.parametrize(
    ("app", "call"),
    [
        (fake_appliance(command=slow_headers), lambda c: c.check_health()),
        (fake_appliance(command=slow_body(cmd_doc("health_check", "<success>1</success>"))),
         lambda c: c.check_health()),
        (fake_appliance(reporting=slow_body(FULL_REPORT)),
         lambda c: c.support_session_listing(TimeWindow("start", date(2024, 12, 2)))),
    ],
    ids=["headers", "command-body", "report-body"],
)  # fmt: skip
async def test_timeout_is_retryable(
    server: Server, app: Starlette, call: Callable[[ApplianceClient], Awaitable[object]]
) -> None:
    host = plug(server, app)
    async with ApplianceClient(host, "fake-id", FAKE_SECRET, scheme="http", timeout=0.1) as client:
        with pytest.raises(ApplianceConnectionError) as caught:
            await call(client)
    err = caught.value
    assert type(err) is ApplianceConnectionError and err.retryable is True
    assert "did not answer in time" in err.message
    assert_clean(err, FAKE_SECRET, FAKE_TOKEN)


@pytest.mark.parametrize(
    ("host", "fragment"),
    [
        ("https://support.example.com/", "has a scheme"),
        ("support.example.com/api", "not a host name"),
        ("support.example.com?x=1", "not a host name"),
        ("user@support.example.com", "not a host name"),
        ("support.example.com:abc", "not a host name"),
        ("support.example.com:70000", "use 1 to 65535"),
    ],
)
def test_host_is_validated_before_any_request(host: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment) as caught:
        ApplianceClient(host, "id", FAKE_SECRET)
    assert caught.value.message.startswith("appliance host ")
    assert FAKE_SECRET not in caught.value.message
