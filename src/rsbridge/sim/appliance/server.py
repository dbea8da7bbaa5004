"""The simulated appliance's HTTP surface: OAuth, Command API and Reporting API.

Command responses are laid out byte for byte like the RS 19.1.8 responses recorded
in shared/reference/beyondtrust-api.md §2 (declaration, blank line, default
namespace, tab indentation, trailing newline). Where the recordings are odd
(``session_key`` has a blank line after its start tag, ``api_information`` indents
permissions with four tabs and leaves a ``\\t\\t`` line, ``health_check`` ends in a
staircase of tabs and two newlines) the oddity is reproduced.

Inferred, no public sample exists: the ``get_support_teams`` layout (``support_team``
with ``name``, ``code_name``, ``issues/issue``, and ``members/member`` only with
``showmembers=1``), ``get_logged_in_reps``' ``logged_in_since`` (ISO 8601 text with a
``ts`` UNIX attribute, like ``connected_since``) and ``direct_link`` target, the
HTTP statuses for bad tokens (401) and rate limiting (429), and every error text
(standardised in :mod:`.state` and here; the client classifies errors by them).
"""

from __future__ import annotations

import base64
import bisect
import html
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from rsbridge.appliance.report_model import (
    EventType,
    ExitSurveyRecord,
    SessionSummary,
    SupportSession,
    SurveyQuestion,
    TeamActivity,
)
from rsbridge.sim.appliance import faults, report_xml
from rsbridge.sim.appliance.control import control_routes
from rsbridge.sim.appliance.rehearsal import Rehearsal
from rsbridge.sim.appliance.state import (
    PERMISSION_NAMES,
    ApiAccount,
    SessionKey,
    SimApplianceState,
    SimCommandError,
    invalid_parameter,
)

COMMAND_NS = "http://www.bomgar.com/namespaces/API/command"
XML_CONTENT_TYPE = "text/xml; charset=UTF-8"
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n\n'
ACCESS_DENIED = {
    "error": "access_denied",
    "message": "The resource owner or authorization server denied the request.",
}
RATE_LIMITED = "API rate limit exceeded"
_EPOCH = datetime.fromtimestamp(0, UTC)
_HEADERS = {
    "Server": "Apache",
    "Cache-Control": "must-revalidate, no-cache, no-store, post-check=0, pre-check=0, private",
    "X-Frame-Options": "SAMEORIGIN",
    "Strict-Transport-Security": "max-age=31536000",
    "X-Content-Type-Options": "nosniff",
    "Connection": "close",
}
_API_HEADERS = {**_HEADERS, "Vary": "X-Requested-With,Authorization"}
_TOKEN_HEADERS = {**_HEADERS, "Vary": "Accept,X-Requested-With,Authorization"}
_OPEN_ACTIONS = frozenset({"get_api_info", "check_health"})
_READ_ACTIONS = frozenset({"get_logged_in_reps", "get_support_teams", "get_session_attributes"})
_SURVEY_REPORTS = {"SupportCustExitSurvey": "customer", "SupportRepExitSurvey": "rep"}
_CUSTOM_PREFIX = "session.custom."

Params = dict[str, str]


def _esc(value: str, *, attr: bool = False) -> str:
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value.replace('"', "&quot;") if attr else value


def _el(tag: str, content: str | list[str] = "", **attrs: str) -> list[str]:
    """An element as lines: text on one line, or child lines indented by one tab."""
    start = tag + "".join(f' {k}="{_esc(v, attr=True)}"' for k, v in attrs.items())
    if isinstance(content, list):
        return [f"<{start}>", *(f"\t{line}" for line in content), f"</{tag}>"]
    return [f"<{start}>{_esc(content)}</{tag}>"]


def _document(tag: str, children: list[str]) -> str:
    lines = _el(tag, children)
    lines[0] = f'<{tag} xmlns="{COMMAND_NS}">'
    return DECLARATION + "\n".join(lines) + "\n"


def _command_error(message: str) -> str:
    return f'{DECLARATION}<error xmlns="{COMMAND_NS}">{_esc(message)}</error>\n'


def _success(message: str) -> str:
    return f'{DECLARATION}<success xmlns="{COMMAND_NS}">{_esc(message)}</success>\n'


def _require(params: Params, name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise SimCommandError(f"Missing required parameter '{name}'")
    return value


def _int(params: Params, name: str, default: int, lowest: int, highest: int = 2**31) -> int:
    raw = params.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or not lowest <= int(raw) <= highest:
        raise invalid_parameter(name)
    return int(raw)


def _custom_items(params: Params) -> list[tuple[str, str]]:
    return [
        (k.removeprefix(_CUSTOM_PREFIX), v)
        for k, v in params.items()
        if k.startswith(_CUSTOM_PREFIX)
    ]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).isoformat()


class _RateLimiter:
    """Sliding one-second and one-hour windows per API account."""

    def __init__(self, per_second: int, per_hour: int, clock: Callable[[], float]) -> None:
        self.per_second, self.per_hour, self._clock = per_second, per_hour, clock
        self._hits: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def hit(self, key: str) -> tuple[int, int]:
        """Count a request: ``(remaining this hour, seconds to wait)``; wait 0 = allowed."""
        now = self._clock()
        with self._lock:
            hits = self._hits[key]
            while hits and hits[0] <= now - 3600:
                hits.popleft()
            in_second = len(hits) - bisect.bisect_right(hits, now - 1)
            if len(hits) >= self.per_hour:
                wait = hits[len(hits) - self.per_hour] + 3600 - now
            elif in_second >= self.per_second:
                wait = hits[len(hits) - self.per_second] + 1 - now
            else:
                hits.append(now)
                return self.per_hour - len(hits), 0
            return self.per_hour - len(hits), max(1, math.ceil(wait))


class _Appliance:
    def __init__(
        self,
        state: SimApplianceState,
        *,
        token_ttl: int,
        limiter: _RateLimiter,
        clock: Callable[[], float],
    ) -> None:
        self.state, self.token_ttl, self.limiter, self.clock = state, token_ttl, limiter, clock
        self.actions: dict[str, Callable[[ApiAccount, Params], str]] = {
            "generate_session_key": self.generate_session_key,
            "get_session_attributes": self.get_session_attributes,
            "set_session_attributes": self.set_session_attributes,
            "join_session": self.join_session,
            "transfer_session": self.transfer_session,
            "terminate_session": self.terminate_session,
            "get_logged_in_reps": self.get_logged_in_reps,
            "get_support_teams": self.get_support_teams,
            "get_api_info": self.get_api_info,
            "check_health": self.check_health,
        }

    # --- HTTP endpoints ------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:
            client_id = secret = ""
        account = None
        if scheme.lower() == "basic" and client_id:
            account = self.state.authenticate_client(client_id, secret)
        if account is None:
            body = {"error": "invalid_client", "message": "Client authentication failed"}
            return JSONResponse(body, 401, headers=_TOKEN_HEADERS)
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            message = "The authorization grant type is not supported by the authorization server."
            body = {"error": "unsupported_grant_type", "message": message}
            return JSONResponse(body, 400, headers=_TOKEN_HEADERS)
        token = self.state.issue_token(account.client_id, ttl=self.token_ttl, now=self.clock())
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl},
            headers=_TOKEN_HEADERS,
        )

    async def health_page(self, request: Request) -> Response:
        return PlainTextResponse("The appliance is healthy.\n", headers=_HEADERS)

    async def command(self, request: Request) -> Response:
        return await self._api(request, self._command, _command_error)

    async def reporting(self, request: Request) -> Response:
        trickle = self.state.report_faults.trickle_seconds
        return await self._api(request, self._reporting, report_xml.reporting_error, trickle)

    async def _api(
        self,
        request: Request,
        handler: Callable[[ApiAccount, Params], str | bytes | Iterator[bytes]],
        error: Callable[[str], str | bytes],
        trickle: float = 0.0,
    ) -> Response:
        """Authenticate, rate-limit and parse a request, then answer with XML (one byte
        at a time, ``trickle`` seconds apart, when that fault is on)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        account = (
            self.state.account_for_token(token, self.clock())
            if scheme.lower() == "bearer"
            else None
        )
        if account is None:
            return JSONResponse(ACCESS_DENIED, 401, headers=_API_HEADERS)
        with self.state.lock:
            self.state.request_times.append(self.clock())
        remaining, wait = self.limiter.hit(account.client_id)
        headers = {
            **_API_HEADERS,
            "X-RateLimit-Limit": str(self.limiter.per_hour),
            "X-RateLimit-Remaining": str(remaining),
        }
        if wait:
            headers["Retry-After"] = str(wait)
            return Response(error(RATE_LIMITED), 429, headers, XML_CONTENT_TYPE)
        params = dict(parse_qsl(request.url.query, keep_blank_values=True))
        try:
            if request.method == "POST":
                content_type = request.headers.get("content-type", "")
                if content_type.startswith("multipart/"):
                    raise SimCommandError("Multipart POST requests are not supported")
                if content_type.startswith("application/x-www-form-urlencoded"):
                    body = (await request.body()).decode("utf-8", "replace")
                    params.update(parse_qsl(body, keep_blank_values=True))
            self.state.count_call(params.get("generate_report") or params.get("action") or "")
            result = handler(account, params)
        except SimCommandError as exc:
            result = error(exc.message)
        if trickle > 0:
            whole = result.encode() if isinstance(result, str) else result
            chunks = [whole] if isinstance(whole, bytes) else whole
            slowly = faults.trickle(chunks, trickle)
            return StreamingResponse(slowly, headers=headers, media_type=XML_CONTENT_TYPE)
        if isinstance(result, str | bytes):
            return Response(result, headers=headers, media_type=XML_CONTENT_TYPE)
        return StreamingResponse(result, headers=headers, media_type=XML_CONTENT_TYPE)

    # --- Command API -----------------------------------------------------------------

    def _command(self, account: ApiAccount, params: Params) -> str:
        action = _require(params, "action")
        handler = self.actions.get(action)
        if handler is None:
            raise SimCommandError(f"Invalid action: '{action}'")
        allowed = ("read_only", "full_access") if action in _READ_ACTIONS else ("full_access",)
        if action not in _OPEN_ACTIONS and account.permission("perm_command") not in allowed:
            raise SimCommandError(
                "Permission denied: this API account does not have perm_command access"
            )
        return handler(account, params)

    def generate_session_key(self, account: ApiAccount, params: Params) -> str:
        if _require(params, "type") != "support":
            raise invalid_parameter("type")
        key = self.state.generate_session_key(
            queue_id=_require(params, "queue_id"),
            ttl=_int(params, "ttl", 86400, 1),
            url_hostname=params.get("url_hostname") or None,
            priority=_int(params, "priority", 2, 1, 3),
            skills=[s.strip() for s in params.get("skills", "").split(",") if s.strip()],
            custom=_custom_items(params),
            now=self.clock(),
        )
        return _session_key_document(key)

    def get_session_attributes(self, account: ApiAccount, params: Params) -> str:
        attributes = self.state.session_attributes(_require(params, "lsid"))
        return _document(
            "custom_attributes",
            [
                line
                for code, name, value in attributes
                for line in _el("custom_attribute", value, display_name=name, code_name=code)
            ],
        )

    def set_session_attributes(self, account: ApiAccount, params: Params) -> str:
        self.state.set_session_attributes(_require(params, "lsid"), _custom_items(params))
        return _success("Session attributes were set")

    def join_session(self, account: ApiAccount, params: Params) -> str:
        lsid = _require(params, "lsid")
        rep_id, rep_username = params.get("rep_id") or None, params.get("rep_username") or None
        if rep_id is None and rep_username is None:
            raise SimCommandError("Missing required parameter 'rep_id'")
        self.state.join_session(lsid, rep_id=rep_id, rep_username=rep_username)
        return _success("Representative successfully added")

    def transfer_session(self, account: ApiAccount, params: Params) -> str:
        self.state.transfer_session(_require(params, "lsid"), _require(params, "queue_id"))
        return _success("Successfully transferred")

    def terminate_session(self, account: ApiAccount, params: Params) -> str:
        self.state.terminate_session(_require(params, "lsid"), now=self.clock())
        return _success("Successfully terminated")

    def get_logged_in_reps(self, account: ApiAccount, params: Params) -> str:
        state, children = self.state, []
        with state.lock:
            for rep in (r for r in state.reps if r.logged_in):
                name = html.escape(rep.public_display_name)
                href = html.escape(
                    f"https://{state.hostname}/api/start_session?id={rep.id}"
                    f"&name={quote(rep.public_display_name)}"
                )
                children += _el(
                    "rep",
                    [
                        *_el("display_name", rep.public_display_name),
                        *_el("public_display_name", rep.public_display_name),
                        *_el("private_display_name", rep.private_display_name),
                        *_el("type", rep.type),
                        *_el("direct_link", f'<a href="{href}">{name}</a>'),
                        *_el(
                            "logged_in_since",
                            _iso(rep.logged_in_since),
                            ts=str(int(rep.logged_in_since)),
                        ),
                        *_el("presentation_count", str(rep.presentation_count)),
                        *_el("support_session_count", str(state.support_session_count(rep.id))),
                        *_el("showing_on_rep_list", "1" if rep.showing_on_rep_list else "0"),
                    ],
                    id=str(rep.id),
                )
        return _document("logged_in_reps", children)

    def get_support_teams(self, account: ApiAccount, params: Params) -> str:
        state, children = self.state, []
        show_members = params.get("showmembers") == "1"
        with state.lock:
            for team in state.teams:
                issues: list[str] = []
                for issue in team.issues:
                    issues += _el(
                        "issue",
                        [
                            *_el("code_name", issue.code_name),
                            *_el("description", issue.description),
                        ],
                        id=str(issue.id),
                    )
                members: list[str] = []
                for member in team.members if show_members else []:
                    rep = state.rep(member.rep_id)
                    if rep is not None:
                        members += _el(
                            "member",
                            [
                                *_el("username", rep.username),
                                *_el("public_display_name", rep.public_display_name),
                                *_el("private_display_name", rep.private_display_name),
                                *_el("role", member.role),
                            ],
                            id=str(rep.id),
                        )
                body = [
                    *_el("name", team.name),
                    *_el("code_name", team.code_name),
                    *_el("issues", issues),
                ]
                if show_members:
                    body += _el("members", members)
                children += _el("support_team", body, id=str(team.id))
        return _document("support_teams", children)

    def get_api_info(self, account: ApiAccount, params: Params) -> str:
        permissions = "".join(
            f'\t\t\t\t<permission name="{name}">{_esc(account.permission(name))}</permission>\n'
            for name in PERMISSION_NAMES
        )
        return (
            f'{DECLARATION}<api_information xmlns="{COMMAND_NS}">\n'
            f"\t<api_version>{_esc(self.state.api_version)}</api_version>\n"
            f"\t<company_name>{_esc(self.state.company_name)}</company_name>\n"
            f"\t<timestamp>{int(self.clock())}</timestamp>\n"
            f"\t<permissions>\n{permissions}\t\t\n\t</permissions>\n</api_information>\n"
        )

    def check_health(self, account: ApiAccount, params: Params) -> str:
        state = self.state
        return (
            f'{DECLARATION}<health_check xmlns="{COMMAND_NS}">\n'
            f'\t<appliance id="{state.appliance_id}">{_esc(state.hostname)}</appliance>\n'
            f"\t<version>{_esc(state.version)}</version>\n"
            "\t<success>1</success>\n"
            "\t\t<failover_role>none</failover_role>\n"
            "\t\t\t</health_check>\n\n"
        )

    # --- Reporting API -----------------------------------------------------------------

    def _reporting(self, account: ApiAccount, params: Params) -> bytes | Iterator[bytes]:
        if account.permission("perm_reporting_support") != "1":
            raise SimCommandError(
                "Permission denied: this API account does not have perm_reporting_support access"
            )
        report = _require(params, "generate_report")
        if report == "SupportTeam":
            return self._team_report(params)
        if report not in ("SupportSession", "SupportSessionListing", *_SURVEY_REPORTS):
            raise SimCommandError(f"Invalid report type: '{report}'")
        selected = _session_filter(params)
        injected = self.state.report_faults
        if report == "SupportSession" and injected.unrequested:
            selected = lambda s: True  # noqa: E731 (the fault: whatever was asked)
        sessions = [s for s in self.state.report_sessions(self.clock()) if selected(s)]
        if report == "SupportSession":
            chunks = report_xml.session_list_chunks(sessions, serialise=self.state.session_xml)
            if injected.damaged:
                return faults.damage_sessions(chunks, dict(injected.damaged))
            return chunks
        if report == "SupportSessionListing":
            if injected.listing_limit is not None:
                by_end = sorted(sessions, key=lambda s: s.end_time or s.start_time or _EPOCH)
                sessions = by_end[: injected.listing_limit]
            summaries = (
                SessionSummary(s.lsid, s.recording is not None, s.external_key) for s in sessions
            )
            return report_xml.session_summary_list(summaries)
        return report_xml.exit_survey_list(_survey_records(sessions, _SURVEY_REPORTS[report]))

    def _team_report(self, params: Params) -> bytes:
        begin, end, _ = _window(params)
        team_id = params.get("team_id") or None
        with self.state.lock:
            teams = [t for t in self.state.teams if team_id is None or str(t.id) == team_id]
            activities = [
                TeamActivity(
                    str(team.id),
                    team.name,
                    [
                        ev
                        for tid, ev in self.state.team_events
                        if tid == team.id and begin <= ev.timestamp.timestamp() < end
                    ],
                )
                for team in teams
            ]
        return report_xml.team_activity_list(a for a in activities if a.events)


def _session_key_document(key: SessionKey) -> str:
    lines = [
        *_el("type", "support"),
        *_el("expires", str(key.expires)),
        *_el("queue", key.queue, available="1" if key.available else "0"),
        *(_el("queue_id", key.queue_id) if key.queue_id else []),
        *(
            _el("external_key", key.custom["external_key"])
            if key.custom.get("external_key")
            else []
        ),
        *_el("short_key", key.short_key),
        *_el("key_url", key.url),
        *_el("mail_subject", "Remote Support Invitation"),
    ]
    mail_body = _esc(
        "Click on the link below and follow the directions.\n\n"
        f"{key.url}\n\n"
        "Bomgar(TM) enables a support representative to view your screen in order to assist you.\n"
        "Session traffic is fully encrypted to protect your system's data.\n"
        "Once a session has begun, you will be able to end it at any time"
    )
    children = "".join(f"\t{line}\n" for line in lines)
    return (
        f'{DECLARATION}<session_key xmlns="{COMMAND_NS}">\n\n{children}'
        f"\t<mail_body>\n{mail_body}\n\t</mail_body>\n</session_key>\n"
    )


_WINDOW_PARAMS = ("start_date", "start_time", "end_date", "end_time")


def _window(params: Params) -> tuple[float, float, bool]:
    """``(begin, end, by_end_time)`` of the time-window parameters; end is exclusive."""
    name = next((n for n in _WINDOW_PARAMS if params.get(n)), None)
    if name is None:
        raise SimCommandError(
            "Missing required parameter 'start_date', 'start_time', 'end_date', 'end_time', "
            "'lsid' or 'lsids'"
        )
    raw = params[name]
    try:
        if name.endswith("_date"):
            begin = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
        else:
            begin = float(int(raw))
    except ValueError:
        raise invalid_parameter(name) from None
    duration = _int(params, "duration", 0, 0)
    span = duration * 86400 if name.endswith("_date") else duration
    return begin, begin + span if span else math.inf, name.startswith("end_")


def _session_filter(params: Params) -> Callable[[SupportSession], bool]:
    """Which sessions ``lsid``, ``lsids`` or the time window select."""
    if params.get("lsid") or params.get("lsids"):
        wanted = {params.get("lsid", ""), *params.get("lsids", "").split(",")} - {""}
        return lambda s: s.lsid in wanted
    begin, end, by_end = _window(params)

    def selected(s: SupportSession) -> bool:
        moment = s.end_time if by_end else s.start_time
        return moment is not None and begin <= moment.timestamp() < end

    return selected


def _survey_records(sessions: list[SupportSession], submitted_by: str) -> list[ExitSurveyRecord]:
    """Exit-survey report records derived from the surveys embedded in session reports."""
    records = []
    for s in sessions:
        surveys = s.customer_surveys if submitted_by == "customer" else s.rep_surveys
        event_type = (
            EventType.CUSTOMER_EXIT_SURVEY
            if submitted_by == "customer"
            else EventType.REPRESENTATIVE_EXIT_SURVEY
        )
        stamp = next((e.timestamp for e in s.events_of(event_type)), s.end_time)
        for survey in surveys:
            questions: dict[str, SurveyQuestion] = {}
            for answer in survey.answers:
                question = questions.setdefault(
                    answer.name, SurveyQuestion(str(len(questions) + 1), answer.name, answer.name)
                )
                question.answers.append(answer.value)
            records.append(
                ExitSurveyRecord(
                    s.lsid,
                    stamp,
                    submitted_by,
                    s.primary_rep,
                    s.primary_customer,
                    s.representatives,
                    list(questions.values()),
                )
            )
    return records


def create_app(
    state: SimApplianceState,
    *,
    token_ttl: int = 3600,
    rate_per_second: int = 20,
    rate_per_hour: int = 15000,
    clock: Callable[[], float] = time.time,
    rehearsal: Rehearsal | None = None,
) -> Starlette:
    """A Starlette app that answers like an appliance's OAuth, Command and Reporting APIs.

    ``clock`` (UNIX seconds) drives token expiry, rate-limit windows, key expiry and
    report readiness, so tests can move time forward. ``rehearsal`` adds the control API
    (:mod:`.control`) and runs its outbound-event emitter while the app is served.
    """
    appliance = _Appliance(
        state,
        token_ttl=token_ttl,
        limiter=_RateLimiter(rate_per_second, rate_per_hour, clock),
        clock=clock,
    )
    routes = [
        Route("/oauth2/token", appliance.token, methods=["POST"]),
        Route("/api/command", appliance.command, methods=["GET", "POST"]),
        Route("/api/reporting", appliance.reporting, methods=["GET", "POST"]),
        Route("/check_health", appliance.health_page, methods=["GET"]),
    ]
    if rehearsal is None:
        return Starlette(routes=routes)
    emitter = rehearsal.emitter

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if emitter is None:
            yield
            return
        emitter.start()
        try:
            yield
        finally:
            await emitter.aclose()

    return Starlette(routes=[*routes, *control_routes(rehearsal)], lifespan=lifespan)
