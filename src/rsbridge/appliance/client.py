"""Async client for the appliance's Command and Reporting APIs.

One :class:`ApplianceClient` per appliance and API account. It owns the OAuth token
(:class:`~rsbridge.appliance.auth.TokenCache`) and the request budget
(:class:`~rsbridge.appliance.ratelimit.SlidingWindowLimiter`); every failure surfaces
as an exception from :mod:`rsbridge.errors` with a retryable/permanent flag.

    async with ApplianceClient("support.example.com", client_id, secret) as appliance:
        key = await appliance.generate_session_key(queue_id=Queue.rep(3), ttl=1800)
        async for session in appliance.support_sessions(lsids=["..."]):
            ...
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, Self, TypeVar

import httpx

from rsbridge.appliance import command as cmd
from rsbridge.appliance.auth import TokenCache
from rsbridge.appliance.custom_fields import custom_field_params
from rsbridge.appliance.host import check_host
from rsbridge.appliance.ratelimit import (
    DEFAULT_RATE_LIMITS,
    Limiter,
    RateLimits,
    SlidingWindowLimiter,
)
from rsbridge.appliance.report_model import (
    ExitSurveyRecord,
    SessionSummary,
    SupportSession,
    TeamActivity,
)
from rsbridge.appliance.report_parser import (
    DEFAULT_LIMITS,
    EXIT_SURVEYS,
    SESSION_LISTING,
    SUPPORT_SESSIONS,
    TEAM_ACTIVITY,
    DamagedItem,
    ReportKind,
    ReportLimits,
    ReportParser,
)
from rsbridge.appliance.transport import map_transport_error, retry_after
from rsbridge.appliance.xml import Element, children, command_error, local_name, parse_document
from rsbridge.errors import (
    ApplianceAuthError,
    AppliancePermissionError,
    ApplianceRateLimitedError,
    ApplianceReportError,
    ApplianceResponseError,
    ApplianceServerError,
    ConfigurationError,
    ReportError,
    ReportSyntaxError,
)
from rsbridge.metrics import instrument_http, rate_limit_observer
from rsbridge.peer_http import http_client

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Longest time one call may take, from the request to the last byte of its answer.
DEFAULT_CALL_DEADLINE_SECONDS = 300.0

#: Command API answers are small; a wrong host streaming a large body is cut off here.
MAX_COMMAND_RESPONSE_BYTES = 4 * 1024 * 1024

#: lsids per SupportSession request when fetching a batch (POSTed, so no URL limit).
LSID_BATCH_SIZE = 100


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A Reporting API selection by time.

    ``field`` ``start`` selects sessions that began in the window (in-progress ones
    included), ``end`` only sessions that ended in it. ``since`` as a
    :class:`~datetime.date` uses ``*_date`` with a duration in whole days, as a
    :class:`~datetime.datetime` ``*_time`` with a duration in seconds. ``duration``
    ``None`` means up to now (``duration=0``).
    """

    field: Literal["start", "end"]
    since: date | datetime
    duration: timedelta | None = None

    def params(self) -> list[tuple[str, str]]:
        """The query parameters of this window."""
        if isinstance(self.since, datetime):
            if self.since.tzinfo is None:
                raise ValueError("TimeWindow.since must be timezone-aware")
            params = [(f"{self.field}_time", str(int(self.since.timestamp())))]
            seconds = 0 if self.duration is None else int(self.duration.total_seconds())
            return [*params, ("duration", str(seconds))]
        days = 0 if self.duration is None else self.duration.days
        if self.duration is not None and (days < 1 or self.duration != timedelta(days=days)):
            raise ValueError("a date window needs a duration in whole days (at least one)")
        return [(f"{self.field}_date", self.since.isoformat()), ("duration", str(days))]


class ApplianceClient:
    """Command and Reporting API client for one appliance and API account."""

    def __init__(
        self,
        host: str,
        client_id: str,
        client_secret: str,
        *,
        scheme: Literal["https", "http"] = "https",
        verify: bool | ssl.SSLContext = True,
        timeout: float = 30.0,
        deadline: float = DEFAULT_CALL_DEADLINE_SECONDS,
        rate_limits: RateLimits = DEFAULT_RATE_LIMITS,
        max_rate_limit_wait: float = 60.0,
        close_connections: bool = True,
        report_limits: ReportLimits = DEFAULT_LIMITS,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        """``host`` is the appliance's host name (``host:port`` allowed).

        ``timeout`` bounds each step of a call (connecting, each read); ``deadline`` the
        whole call, answer included, so an appliance that trickles its answer cannot
        hold a caller (see :mod:`rsbridge.deadline`). Both apply to the HTTP client made
        here, not to one passed as ``http``. ``close_connections`` sends ``Connection:
        close`` as the API documentation requires. ``max_rate_limit_wait`` is the
        longest ``Retry-After`` the client sleeps through by itself; a longer one raises
        :class:`~rsbridge.errors.ApplianceRateLimitedError` for the caller to schedule.
        """
        check_host(host, ConfigurationError, "appliance host")
        self.base_url = f"{scheme}://{host}"
        self._own_http = http is None
        self._http = http or http_client(deadline=deadline, verify=verify, timeout=timeout)
        instrument_http(self._http, peer="appliance")
        self._headers = {"Connection": "close"} if close_connections else {}
        self.tokens = TokenCache(self._http, self.base_url, client_id, client_secret)
        self.limiter: Limiter = SlidingWindowLimiter(rate_limits, on_wait=rate_limit_observer())
        self._max_wait = max_rate_limit_wait
        self._report_limits = report_limits
        self.requests_sent = 0
        self.unrequested_items = 0
        """Sessions (or survey records) answered without being asked for, and skipped."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._own_http:
            await self._http.aclose()

    # --- transport ----------------------------------------------------------------

    @asynccontextmanager
    async def _send(
        self, path: str, params: Sequence[tuple[str, str]], what: str
    ) -> AsyncIterator[httpx.Response]:
        """POST an API call, handling token refresh and 429; yield the 200 response."""
        url = f"{self.base_url}{path}"
        reauthenticated = False
        throttled = 0
        while True:
            queued = self.limiter.delay()
            if queued > self._max_wait:  # after a long 429, or the hourly budget is spent
                raise ApplianceRateLimitedError(
                    f"{what}: the API account's request budget is exhausted for {queued:.0f} s",
                    retry_after=queued,
                )
            # Token first so the slot does not age during a token request, and again after
            # the wait (normally a cache hit) so a token cannot expire while queued.
            await self.tokens.get()
            slot = await self.limiter.acquire()
            token = await self.tokens.get()
            request = self._http.build_request(
                "POST",
                url,
                data=dict(params),  # a repeated parameter: the last one wins
                headers={"Authorization": f"Bearer {token}", **self._headers},
            )
            self.requests_sent += 1
            try:
                response = await self._http.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise map_transport_error(exc, url) from None
            finally:
                self.limiter.settle(slot)
            try:
                status = response.status_code
                if status == 401 and not reauthenticated:
                    # Expired, evicted (31st token elsewhere) or revoked: one fresh token.
                    self.tokens.invalidate(token)
                    reauthenticated = True
                    continue
                if status == 429:
                    wait = retry_after(response)
                    self.limiter.pause(wait if wait is not None else 1.0)
                    throttled += 1
                    if wait is not None and wait <= self._max_wait and throttled <= 3:
                        continue
                    raise ApplianceRateLimitedError(
                        f"{what}: the appliance answered 429 Too Many Requests", retry_after=wait
                    )
                _raise_for_status(status, what, url)
                yield response
                return
            finally:
                await response.aclose()

    async def _command(self, action: str, params: Iterable[tuple[str, str]] = ()) -> Element:
        """Run a Command API action; return its root element, raising on ``<error>``."""
        async with self._send("/api/command", [("action", action), *params], action) as resp:
            _check_xml(resp, action)
            body = bytearray()
            try:
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_COMMAND_RESPONSE_BYTES:
                        raise ApplianceResponseError(
                            f"{action}: response larger than {MAX_COMMAND_RESPONSE_BYTES} bytes",
                            retryable=False,
                        )
            except httpx.HTTPError as exc:  # timed out or cut off while reading the body
                raise map_transport_error(exc, str(resp.url)) from None
        root = parse_document(bytes(body), action)
        if local_name(root) == "error":
            raise command_error(root.text or "", action)
        for name, el in children(root):
            if name == "error":
                raise command_error(el.text or "", action)
        return root

    async def _report(
        self,
        report: str,
        params: Iterable[tuple[str, str]],
        kind: ReportKind[T],
        *,
        wanted: Collection[str] | None = None,
        on_damaged: Callable[[DamagedItem], None] | None = None,
    ) -> AsyncIterator[T]:
        """Run a Reporting API report and stream its items as they are parsed.

        ``wanted``: the lsids asked for (items of other lsids are skipped unbuilt and
        counted in :attr:`unrequested_items`); ``on_damaged`` see :meth:`support_sessions`.
        """
        what = f"report {report}"
        async with self._send(
            "/api/reporting", [("generate_report", report), *params], what
        ) as resp:
            _check_xml(resp, what)
            parser = ReportParser(
                kind, self._report_limits, what=what, wanted=wanted, on_damaged=on_damaged
            )
            try:
                async for chunk in resp.aiter_bytes():
                    for item in parser.feed(chunk):
                        yield item
                for item in parser.close():
                    yield item
            except httpx.HTTPError as exc:  # timed out or cut off while streaming
                raise map_transport_error(exc, str(resp.url)) from None
            except ReportError as exc:
                # A cut-off transfer may go through next time; an oversized, refused or
                # nonsensical report will not.
                retryable = isinstance(exc, ReportSyntaxError)
                raise ApplianceReportError(
                    f"{what}: {exc.message}", retryable=retryable, item=exc.item
                ) from exc
            finally:
                if parser.items_skipped:
                    self.unrequested_items += parser.items_skipped
                    log.warning(
                        "%s: the appliance answered %d %s elements that were not asked for; "
                        "they were ignored",
                        what,
                        parser.items_skipped,
                        kind.item,
                    )

    # --- Command API --------------------------------------------------------------

    async def generate_session_key(
        self,
        *,
        queue_id: str = cmd.Queue.GENERAL,
        ttl: int | None = None,
        url_hostname: str | None = None,
        priority: Literal[1, 2, 3] | None = None,
        skills: Sequence[str] = (),
        external_key: str | None = None,
        custom_attributes: Mapping[str, str] | None = None,
    ) -> cmd.SessionKey:
        """Generate a session key (``type=support``) for the given queue.

        ``queue_id``: see :class:`~rsbridge.appliance.command.Queue`. ``ttl`` in
        seconds (the appliance's default is 24 hours). ``external_key`` and
        ``custom_attributes`` are validated against the documented limits first.
        """
        params = [("type", "support"), ("queue_id", queue_id)]
        if ttl is not None:
            params.append(("ttl", str(ttl)))
        if url_hostname:
            params.append(("url_hostname", url_hostname))
        if priority is not None:
            params.append(("priority", str(priority)))
        if skills:
            params.append(("skills", ",".join(skills)))
        params += custom_field_params(custom_attributes or {}, external_key=external_key)
        return cmd.read_session_key(await self._command("generate_session_key", params))

    async def get_session_attributes(self, lsid: str) -> dict[str, str]:
        """Custom attributes of an active session, code name -> value."""
        root = await self._command("get_session_attributes", [("lsid", lsid)])
        return cmd.read_custom_attributes(root)

    async def set_session_attributes(
        self,
        lsid: str,
        custom_attributes: Mapping[str, str] | None = None,
        *,
        external_key: str | None = None,
    ) -> None:
        """Set attributes of an active session; unlisted ones keep their value, ``""`` clears."""
        params = custom_field_params(custom_attributes or {}, external_key=external_key)
        cmd.read_success(await self._command("set_session_attributes", [("lsid", lsid), *params]))

    async def get_logged_in_reps(self) -> list[cmd.LoggedInRep]:
        """Representatives logged in now."""
        return cmd.read_logged_in_reps(await self._command("get_logged_in_reps"))

    async def get_support_teams(self, *, members: bool = True) -> list[cmd.SupportTeam]:
        """Support teams with their issues (and members unless ``members=False``)."""
        params = [("showmembers", "1")] if members else []
        return cmd.read_support_teams(await self._command("get_support_teams", params))

    async def get_api_info(self) -> cmd.ApiInfo:
        """API version, server time and the permissions of this API account."""
        return cmd.read_api_info(await self._command("get_api_info"))

    async def check_health(self) -> cmd.HealthCheck:
        """Appliance identity, version and failover role."""
        return cmd.read_health_check(await self._command("check_health"))

    async def join_session(
        self, lsid: str, *, rep_id: int | str | None = None, rep_username: str | None = None
    ) -> None:
        """Add a representative to an active session."""
        cmd.read_success(
            await self._command("join_session", [("lsid", lsid), *_rep(rep_id, rep_username)])
        )

    async def transfer_session(self, lsid: str, queue_id: str) -> None:
        """Move an active session to ``rep:ID``, ``team:ID`` or ``rep_username:NAME``."""
        params = [("lsid", lsid), ("queue_id", queue_id)]
        cmd.read_success(await self._command("transfer_session", params))

    async def terminate_session(self, lsid: str) -> None:
        """End an active session."""
        cmd.read_success(await self._command("terminate_session", [("lsid", lsid)]))

    # --- Reporting API ------------------------------------------------------------

    async def support_sessions(
        self,
        *,
        lsid: str | None = None,
        lsids: Iterable[str] | None = None,
        window: TimeWindow | None = None,
        on_damaged: Callable[[DamagedItem], None] | None = None,
    ) -> AsyncIterator[SupportSession]:
        """Stream SupportSession reports for one lsid, many lsids (batched) or a window.

        Selected by lsid, only the sessions asked for are yielded: others in the answer
        are skipped without being built (and counted in :attr:`unrequested_items`).
        ``on_damaged`` receives each session that is well-formed but holds a value that
        cannot be read (a count that is not a number, ...), and the rest of the answer is
        read on; without it such a session fails the call with
        :class:`~rsbridge.errors.ApplianceReportError` naming its lsid (``item``).
        """
        for params, wanted in _selections(lsid, lsids, window):
            async for session in self._report(
                "SupportSession", params, SUPPORT_SESSIONS, wanted=wanted, on_damaged=on_damaged
            ):
                yield session

    async def support_session_listing(self, window: TimeWindow) -> list[SessionSummary]:
        """lsids (and recording flags) of the sessions in a time window."""
        return [
            s async for s in self._report("SupportSessionListing", window.params(), SESSION_LISTING)
        ]

    async def exit_surveys(
        self,
        kind: Literal["customer", "rep"],
        *,
        lsid: str | None = None,
        lsids: Iterable[str] | None = None,
        window: TimeWindow | None = None,
    ) -> list[ExitSurveyRecord]:
        """Customer (SupportCustExitSurvey) or representative (SupportRepExitSurvey) surveys."""
        report = "SupportCustExitSurvey" if kind == "customer" else "SupportRepExitSurvey"
        records: list[ExitSurveyRecord] = []
        for params, wanted in _selections(lsid, lsids, window):
            records += [r async for r in self._report(report, params, EXIT_SURVEYS, wanted=wanted)]
        return records

    async def support_team_activity(
        self, window: TimeWindow, *, team_id: str | None = None
    ) -> list[TeamActivity]:
        """SupportTeam report: team events (logins, status changes, chat) in a window."""
        params = window.params() + ([("team_id", team_id)] if team_id else [])
        return [t async for t in self._report("SupportTeam", params, TEAM_ACTIVITY)]

    async def verify(self) -> cmd.ApiInfo:
        """Check host, credentials and permissions; raise with what to fix.

        The "test" button: a token is obtained, ``get_api_info`` answers, and the account
        may run reports and generate keys.
        """
        info = await self.get_api_info()
        missing = [
            name
            for name, level in (("perm_command", "full_access"), ("perm_reporting_support", "1"))
            if not info.can(name, level)
        ]
        if missing:
            raise AppliancePermissionError(
                f"the API account lacks {', '.join(missing)}; grant it in /login > Management "
                "> API Configuration",
                action="get_api_info",
            )
        return info


def _rep(rep_id: int | str | None, rep_username: str | None) -> list[tuple[str, str]]:
    if (rep_id is None) == (rep_username is None):
        raise ValueError("give exactly one of rep_id and rep_username")
    return (
        [("rep_id", str(rep_id))] if rep_id is not None else [("rep_username", rep_username or "")]
    )


def _selections(
    lsid: str | None, lsids: Iterable[str] | None, window: TimeWindow | None
) -> Iterable[tuple[list[tuple[str, str]], frozenset[str] | None]]:
    """One parameter list per request for the chosen selection, with the lsids it asks
    for (``None``: a time window, any session may come)."""
    if sum(x is not None for x in (lsid, lsids, window)) != 1:
        raise ValueError("give exactly one of lsid, lsids and window")
    if lsid is not None:
        return [([("lsid", lsid)], frozenset([lsid]))]
    if window is not None:
        return [(window.params(), None)]
    ids = list(dict.fromkeys(lsids or ()))
    batches = [ids[i : i + LSID_BATCH_SIZE] for i in range(0, len(ids), LSID_BATCH_SIZE)]
    return [([("lsids", ",".join(batch))], frozenset(batch)) for batch in batches]


def _raise_for_status(status: int, what: str, url: str) -> None:
    if status == 200:
        return
    if status == 401:
        raise ApplianceAuthError(
            f"{what}: the appliance refused the API token twice in a row; check that the API "
            "account is enabled and its secret has not been regenerated"
        )
    if status == 403:
        raise AppliancePermissionError(
            f"{what}: HTTP 403; the API account lacks the permission or the client's address "
            "is not allowed",
            action=what,
        )
    if status == 404:
        raise ApplianceResponseError(
            f"{what}: {url} does not exist (HTTP 404); check the host name and that the XML API "
            "is enabled in /login > Management > API Configuration",
            retryable=False,
        )
    if status >= 500:
        raise ApplianceServerError(f"{what}: the appliance answered HTTP {status}")
    raise ApplianceResponseError(f"{what}: unexpected HTTP {status} from {url}", retryable=False)


def _check_xml(response: httpx.Response, what: str) -> None:
    ctype = response.headers.get("content-type", "")
    if "xml" not in ctype:
        netloc = response.url.netloc.decode("ascii")  # host:port, as configured
        raise ApplianceResponseError(
            f"{what}: expected XML, got {ctype or 'no content type'}; is {netloc} "
            "a BeyondTrust appliance?",
            retryable=False,
        )
