"""The data behind the simulated appliance, and the operations the APIs perform on it.

Everything is plain dataclasses guarded by one re-entrant lock, so the server thread
and a test (or scenario) thread can both change the state. Operations that the
Command API would refuse raise :class:`SimCommandError` carrying the exact
``<error>`` text the simulator answers (the client classifies errors by these texts).

Hooks for the rest of the simulator take an optional ``now`` (UNIX seconds): pass the
same clock the server was created with when the server's clock is a fake one.
"""

from __future__ import annotations

import dataclasses
import random
import secrets
import string
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rsbridge.appliance.report_model import (
    Actor,
    CustomAttribute,
    Customer,
    EventType,
    ExitSurvey,
    NamedRef,
    PrimaryCustomer,
    PrimaryRep,
    Representative,
    SessionEvent,
    SupportSession,
    SurveyAnswer,
)
from rsbridge.sim.appliance import report_xml
from rsbridge.sim.appliance.faults import ReportFaults

#: Permission names in the order ``get_api_info`` lists them (real RS 19.1 response).
PERMISSION_NAMES = (
    "perm_command",
    "perm_reporting_support",
    "perm_reporting_presentation",
    "perm_reporting_license",
    "perm_reporting_archive",
    "perm_real_time_state",
    "perm_ecm",
    "perm_backup",
    "perm_scim",
)
# The simulator stands in for the appliance, so it enforces the documented limits with
# its own constants rather than the client's validation (which it exists to test).
MAX_TOKENS_PER_ACCOUNT = 30
MAX_CUSTOM_VALUE_CHARS = 1024
MAX_CUSTOM_TOTAL_BYTES = 10240
EXTERNAL_KEY = "external_key"
SEEDED_TICKETS = ("INC0010001", "INC0010002", "INC0010003")
"""The tickets pre-loaded sessions name: open incidents of ``rsbridge sim servicenow``'s seed."""
REP_NOT_FOUND = "Error validating parameter '{param}': The representative could not be found"
REP_UNAVAILABLE = "Requested support representative is not available at this time"
SESSION_NOT_FOUND = "Error validating parameter 'lsid': The session could not be found"


class SimCommandError(Exception):
    """A request the simulated appliance answers with ``<error>message</error>``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def invalid_parameter(name: str) -> SimCommandError:
    """The error for a parameter whose value cannot be used."""
    return SimCommandError(f"Error validating parameter '{name}': invalid value")


@dataclass
class ApiAccount:
    """An API account: OAuth client credentials and the permissions ``get_api_info`` shows."""

    client_id: str
    client_secret: str = field(repr=False)
    name: str
    permissions: dict[str, str] = field(default_factory=dict)

    def permission(self, name: str) -> str:
        """The value of permission ``name`` (``deny`` / ``0`` when not set)."""
        return self.permissions.get(name, "deny" if name == "perm_command" else "0")


@dataclass
class SimRep:
    """A representative account and its console status."""

    id: int
    username: str
    public_display_name: str
    private_display_name: str
    logged_in: bool = True
    available: bool = True
    showing_on_rep_list: bool = True
    type: str = "Normal"
    logged_in_since: float = 0.0
    presentation_count: int = 0

    @property
    def can_take_sessions(self) -> bool:
        """Logged in and not marked unavailable."""
        return self.logged_in and self.available


@dataclass
class SimIssue:
    """An issue of a support team (selectable with ``queue_id=issue:<code_name>``)."""

    id: int
    code_name: str
    description: str


@dataclass
class TeamMember:
    """A representative's membership of a team; ``role`` is member, lead or manager."""

    rep_id: int
    role: str = "member"


@dataclass
class SimTeam:
    """A support team with its issues and members."""

    id: int
    name: str
    code_name: str
    issues: list[SimIssue] = field(default_factory=list)
    members: list[TeamMember] = field(default_factory=list)


@dataclass
class PublicPortal:
    """A public site; its hostname is what ``url_hostname`` may select."""

    id: int
    name: str
    hostname: str


@dataclass
class SessionKey:
    """A key made by ``generate_session_key``; ``queue`` is general, rep, team or issue."""

    short_key: str
    access_key: str
    expires: int
    queue: str
    queue_id: str | None
    available: bool
    portal: PublicPortal
    custom: dict[str, str] = field(default_factory=dict)
    priority: int = 2
    skills: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The ``key_url`` a customer opens."""
        return f"https://{self.portal.hostname}/?ak={self.access_key}"


@dataclass
class ActiveSession:
    """A session in progress; ``custom`` holds ``external_key`` too, ``members`` owner first."""

    lsid: str
    lseq: int
    start_time: float
    portal: PublicPortal
    queue: str
    custom: dict[str, str] = field(default_factory=dict)
    members: list[int] = field(default_factory=list)
    customer: str = "Customer"
    """The customer's name, as typed on the portal (reported as gsnumber 1)."""


@dataclass
class _Token:
    client_id: str
    expires_at: float


@dataclass
class _StoredReport:
    report: SupportSession
    ready_at: float
    xml: bytes | None = None
    """The report's ``<session>`` element as served, when kept (``add_report(keep_xml=)``)."""


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _shifted(report: SupportSession, delta: timedelta) -> SupportSession:
    """``report`` with its start, end and event times moved by ``delta``."""
    events = [dataclasses.replace(e, timestamp=e.timestamp + delta) for e in report.events]
    return dataclasses.replace(
        report,
        start_time=report.start_time + delta if report.start_time else None,
        end_time=report.end_time + delta if report.end_time else None,
        events=events,
    )


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(int(ts), UTC)


@dataclass
class SimApplianceState:
    """Everything the simulated appliance knows. Use :meth:`default` for a seeded one."""

    appliance_id: str
    hostname: str
    company_name: str
    version: str = "19.1.8 (37380-749b17ca33d2475427428f263608ae98d69f7a35)"
    api_version: str = "1.19.0"
    accounts: list[ApiAccount] = field(default_factory=list)
    reps: list[SimRep] = field(default_factory=list)
    teams: list[SimTeam] = field(default_factory=list)
    portals: list[PublicPortal] = field(default_factory=list)
    custom_fields: dict[str, str] = field(default_factory=dict)
    active_sessions: dict[str, ActiveSession] = field(default_factory=dict)
    session_keys: dict[str, SessionKey] = field(default_factory=dict)
    team_events: list[tuple[int, SessionEvent]] = field(default_factory=list)
    report_faults: ReportFaults = field(default_factory=ReportFaults)
    """Faults the Reporting API injects (see :mod:`.faults`); none by default."""
    calls: Counter[str] = field(default_factory=Counter)
    """Authenticated API requests answered, by report (``generate_report``) or command
    (``action``) name: what tests count appliance calls with."""
    request_times: list[float] = field(default_factory=list, repr=False)
    """When each authenticated API request arrived (the server's clock), before any rate
    limiting: what tests check a request budget against, from the appliance's side."""
    tokens_issued: int = 0
    """OAuth tokens issued since the simulator started."""
    rng: random.Random = field(default_factory=random.Random, repr=False)
    live_rng: random.Random | None = field(default=None, repr=False)
    """Source of the ids of new session keys and live sessions; ``None`` uses ``rng`` (a
    reproducible series, for tests). ``rsbridge sim appliance`` gives it a fresh source, so
    that a restarted simulator never reuses an lsid an engine has already stored."""
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    _tokens: dict[str, _Token] = field(default_factory=dict, init=False, repr=False)
    _reports: dict[str, _StoredReport] = field(default_factory=dict, init=False, repr=False)
    _lseq: int = field(default=0, init=False, repr=False)

    def count_call(self, name: str) -> None:
        """Count one API request (see :attr:`calls`)."""
        with self.lock:
            self.calls[name] += 1

    # --- OAuth -------------------------------------------------------------------

    def authenticate_client(self, client_id: str, client_secret: str) -> ApiAccount | None:
        """The account with these credentials, or ``None``."""
        with self.lock:
            for account in self.accounts:
                if account.client_id == client_id and secrets.compare_digest(
                    account.client_secret.encode(), client_secret.encode()
                ):
                    return account
            return None

    def issue_token(self, client_id: str, *, ttl: float, now: float | None = None) -> str:
        """A new bearer token; the account's oldest live token goes if it already has 30."""
        now = _now(now)
        with self.lock:
            self._drop_expired(now)
            own = [t for t, info in self._tokens.items() if info.client_id == client_id]
            for stale in own[: max(0, len(own) - MAX_TOKENS_PER_ACCOUNT + 1)]:
                del self._tokens[stale]
            token = self._alnum(40)
            self._tokens[token] = _Token(client_id, now + ttl)
            self.tokens_issued += 1
            return token

    def account_for_token(self, token: str, now: float | None = None) -> ApiAccount | None:
        """The account a live bearer token belongs to, or ``None``."""
        now = _now(now)
        with self.lock:
            info = self._tokens.get(token)
            if info is None or info.expires_at <= now:
                return None
            return next((a for a in self.accounts if a.client_id == info.client_id), None)

    def rotate_secret(self, client_id: str, new_secret: str | None = None) -> str:
        """Give an account a new client secret; all its tokens stop working at once."""
        with self.lock:
            account = next(a for a in self.accounts if a.client_id == client_id)
            account.client_secret = new_secret or self._alnum(44)
            for token in [t for t, i in self._tokens.items() if i.client_id == client_id]:
                del self._tokens[token]
            return account.client_secret

    def revoke_tokens(self, client_id: str) -> int:
        """End every live token of an account (as expiry or an administrator would);
        how many there were. Its next requests with them get 401."""
        with self.lock:
            own = [t for t, i in self._tokens.items() if i.client_id == client_id]
            for token in own:
                del self._tokens[token]
            return len(own)

    def live_tokens(self, client_id: str) -> int:
        """How many tokens of the account are live now."""
        with self.lock:
            self._drop_expired(_now(None))
            return sum(1 for i in self._tokens.values() if i.client_id == client_id)

    def _drop_expired(self, now: float) -> None:
        for token in [t for t, i in self._tokens.items() if i.expires_at <= now]:
            del self._tokens[token]

    def _alnum(self, length: int) -> str:
        return "".join(self.rng.choices(string.ascii_letters + string.digits, k=length))

    def _hex(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    # --- lookups -----------------------------------------------------------------

    def rep(self, rep_id: int) -> SimRep | None:
        """The representative with this id, or ``None``."""
        return next((r for r in self.reps if r.id == rep_id), None)

    def _find_rep(self, ref: str, *, by_username: bool, param: str) -> SimRep:
        if by_username:
            found = [r for r in self.reps if r.username == ref]
        else:
            found = [r for r in self.reps if str(r.id) == ref]
        if len(found) != 1:
            raise SimCommandError(REP_NOT_FOUND.format(param=param))
        if not found[0].can_take_sessions:
            raise SimCommandError(REP_UNAVAILABLE)
        return found[0]

    def _team_available(self, teams: Iterable[SimTeam]) -> bool:
        return any(
            (rep := self.rep(m.rep_id)) is not None and rep.can_take_sessions
            for team in teams
            for m in team.members
        )

    def _resolve_queue(self, queue_id: str, kinds: tuple[str, ...]) -> tuple[str, str | None, bool]:
        """``(queue, queue_id, available)`` for a ``queue_id`` parameter of the allowed kinds."""
        kind, _, ref = queue_id.partition(":")
        if kind not in kinds or (kind == "general") == bool(ref):
            raise invalid_parameter("queue_id")
        if kind == "general":
            return "general", None, any(r.can_take_sessions for r in self.reps)
        if kind in ("rep", "rep_username"):
            rep = self._find_rep(ref, by_username=kind == "rep_username", param="queue_id")
            return "rep", str(rep.id), True
        if kind == "team":
            team = next((t for t in self.teams if str(t.id) == ref), None)
            if team is None:
                raise SimCommandError(
                    "Error validating parameter 'queue_id': The team could not be found"
                )
            return "team", str(team.id), self._team_available([team])
        owners = [t for t in self.teams for i in t.issues if i.code_name == ref]
        if not owners:
            raise SimCommandError(
                "Error validating parameter 'queue_id': The issue could not be found"
            )
        issue = next(i for i in owners[0].issues if i.code_name == ref)
        return "issue", str(issue.id), self._team_available(owners)

    def _apply_custom(
        self, base: dict[str, str], items: Iterable[tuple[str, str]]
    ) -> dict[str, str]:
        """``base`` updated with ``session.custom.*`` items, checked like the appliance does."""
        result = dict(base)
        for code, value in items:
            param = f"session.custom.{code}"
            if code != EXTERNAL_KEY and code not in self.custom_fields:
                raise SimCommandError(
                    f"Error validating parameter '{param}': invalid custom field code name"
                )
            result[code] = value
            total = sum(len(v.encode()) for v in result.values())
            if len(value) > MAX_CUSTOM_VALUE_CHARS or total > MAX_CUSTOM_TOTAL_BYTES:
                raise SimCommandError(f"Error validating parameter '{param}': value is too long")
        return result

    def _portal(self, hostname: str | None) -> PublicPortal:
        if hostname is None:
            return self.portals[0]
        for portal in self.portals:
            if portal.hostname.lower() == hostname.lower():
                return portal
        raise invalid_parameter("url_hostname")

    def _active(self, lsid: str) -> ActiveSession:
        session = self.active_sessions.get(lsid)
        if session is None:
            raise SimCommandError(SESSION_NOT_FOUND)
        return session

    # --- Command API operations ----------------------------------------------------

    def generate_session_key(
        self,
        *,
        queue_id: str,
        ttl: int = 86400,
        url_hostname: str | None = None,
        priority: int = 2,
        skills: Iterable[str] = (),
        custom: Iterable[tuple[str, str]] = (),
        now: float | None = None,
    ) -> SessionKey:
        """Make a session key for a queue (``general``, ``rep:ID``, ``team:ID`` ...)."""
        now = _now(now)
        with self.lock:
            queue, qid, available = self._resolve_queue(
                queue_id, ("general", "rep", "team", "rep_username", "issue")
            )
            portal = self._portal(url_hostname)
            values = self._apply_custom({}, custom)
            live = self.live_rng or self.rng
            short_key = f"{live.randrange(10**7):07d}"
            while short_key in self.session_keys:
                short_key = f"{live.randrange(10**7):07d}"
            key = SessionKey(
                short_key,
                f"{live.getrandbits(128):032x}",
                int(now) + ttl,
                queue,
                qid,
                available,
                portal,
                values,
                priority,
                list(skills),
            )
            self.session_keys[short_key] = key
            return key

    def session_attributes(self, lsid: str) -> list[tuple[str, str, str]]:
        """``(code_name, display_name, value)`` of the external key and every custom field."""
        with self.lock:
            custom = self._active(lsid).custom
            fields = {EXTERNAL_KEY: "External Key", **self.custom_fields}
            return [(code, name, custom.get(code, "")) for code, name in fields.items()]

    def set_session_attributes(self, lsid: str, items: Iterable[tuple[str, str]]) -> None:
        """Set the listed attributes; an empty string clears one, unlisted ones keep theirs."""
        with self.lock:
            session = self._active(lsid)
            session.custom = {
                k: v for k, v in self._apply_custom(session.custom, items).items() if v
            }

    def join_session(self, lsid: str, *, rep_id: str | None, rep_username: str | None) -> None:
        """Add a representative to an active session."""
        with self.lock:
            session = self._active(lsid)
            ref = rep_id if rep_id is not None else rep_username
            rep = self._find_rep(ref or "", by_username=rep_id is None, param="rep_id")
            if rep.id not in session.members:
                session.members.append(rep.id)

    def transfer_session(self, lsid: str, queue_id: str) -> None:
        """Move an active session to a representative's or team's queue."""
        with self.lock:
            session = self._active(lsid)
            queue, qid, _ = self._resolve_queue(queue_id, ("rep", "team", "rep_username"))
            session.queue = f"{queue}:{qid}"
            if queue == "rep":
                owner = int(qid or 0)
                session.members = [owner, *(m for m in session.members if m != owner)]

    def terminate_session(self, lsid: str, now: float | None = None) -> None:
        """End an active session (its report is complete at once)."""
        with self.lock:
            self._active(lsid)
            self.complete_session(lsid, now=now)

    def support_session_count(self, rep_id: int) -> int:
        """How many active sessions the representative takes part in."""
        with self.lock:
            return sum(rep_id in s.members for s in self.active_sessions.values())

    # --- hooks for the rest of the simulator -------------------------------------

    def start_session(
        self, key: str, *, customer: str = "Customer", now: float | None = None
    ) -> str:
        """A customer uses a session key (short key or ``ak`` value): returns the new lsid.

        Raises :class:`LookupError` for unknown, used or expired keys.
        """
        now = _now(now)
        with self.lock:
            found = next(
                (k for k in self.session_keys.values() if key in (k.short_key, k.access_key)), None
            )
            if found is None or found.expires <= now:
                raise LookupError(f"unknown or expired session key {key!r}")
            del self.session_keys[found.short_key]
            self._lseq += 1
            members = [int(found.queue_id)] if found.queue == "rep" and found.queue_id else []
            session = ActiveSession(
                f"{(self.live_rng or self.rng).getrandbits(128):032x}",
                self._lseq,
                now,
                found.portal,
                f"{found.queue}:{found.queue_id}" if found.queue_id else found.queue,
                dict(found.custom),
                members,
                customer,
            )
            self.active_sessions[session.lsid] = session
            return session.lsid

    def complete_session(
        self,
        lsid: str,
        report: SupportSession | None = None,
        *,
        report_delay: float = 0.0,
        now: float | None = None,
    ) -> SupportSession:
        """End an active session and store its report (built from the session if not given).

        For ``report_delay`` seconds the SupportSession report still shows the session
        without an end time, as a real appliance does while it finishes the report.
        """
        now = _now(now)
        with self.lock:
            active = self.active_sessions.pop(lsid, None)
            if report is None:
                if active is None:
                    raise SimCommandError(SESSION_NOT_FOUND)
                report = self._report_of(active)
                report.end_time = _dt(now)
                report.duration = timedelta(seconds=int(now) - int(active.start_time))
                report.events.append(SessionEvent(_dt(now), EventType.SESSION_END))
            elif active is not None and report.start_time is not None:
                # A scripted report of a session that ran here: it started when the
                # session did, as the appliance's own report would say.
                report = _shifted(report, _dt(active.start_time) - report.start_time)
            self.add_report(report, report_delay=report_delay, now=now)
            return report

    def add_report(
        self,
        report: SupportSession,
        *,
        report_delay: float = 0.0,
        now: float | None = None,
        keep_xml: bool = False,
    ) -> None:
        """Store a finished session's report (replacing any earlier one for its lsid).

        A stored report is not changed in place: store it again after changing it.
        ``keep_xml`` serialises it now and serves those bytes from then on (a benchmark's
        backlog: the work is done while the backlog is made, not while it is fetched).
        """
        xml = report_xml.session_bytes(report) if keep_xml else None
        with self.lock:
            self._reports[report.lsid] = _StoredReport(report, _now(now) + report_delay, xml)

    def session_xml(self, session: SupportSession) -> bytes:
        """``session``'s element in a SupportSession report: the kept bytes when
        ``session`` is a stored report whose XML was kept, else serialised now."""
        with self.lock:
            stored = self._reports.get(session.lsid)
            if stored is not None and stored.report is session and stored.xml is not None:
                return stored.xml
        return report_xml.session_bytes(session)

    def add_team_event(self, team_id: int, event: SessionEvent) -> None:
        """Record an event for the SupportTeam report."""
        with self.lock:
            self.team_events.append((team_id, event))

    def report_sessions(self, now: float | None = None) -> list[SupportSession]:
        """Every session as the SupportSession report shows it now, in start order."""
        now = _now(now)
        with self.lock:
            views = [self._view(stored, now) for stored in self._reports.values()]
            views += [
                self._report_of(a)
                for a in self.active_sessions.values()
                if a.lsid not in self._reports
            ]
        epoch = datetime.fromtimestamp(0, UTC)
        return sorted(views, key=lambda s: (s.start_time or epoch, s.lseq or 0))

    @staticmethod
    def _view(stored: _StoredReport, now: float) -> SupportSession:
        if now >= stored.ready_at:
            return stored.report
        return dataclasses.replace(
            stored.report,
            end_time=None,
            duration=None,
            customer_surveys=[],
            rep_surveys=[],
            events=[e for e in stored.report.events if e.event_type != EventType.SESSION_END],
        )

    def _report_of(self, active: ActiveSession) -> SupportSession:
        """The report of a session still in progress."""
        reps = [r for r in map(self.rep, active.members) if r is not None]
        kind, _, ref = active.queue.partition(":")
        teams = [
            NamedRef(t.name, str(t.id)) for t in self.teams if kind == "team" and str(t.id) == ref
        ]
        custom = active.custom
        return SupportSession(
            lsid=active.lsid,
            lseq=active.lseq,
            start_time=_dt(active.start_time),
            public_site=NamedRef(active.portal.name, str(active.portal.id)),
            external_key=custom.get(EXTERNAL_KEY) or None,
            custom_attributes=[
                CustomAttribute(code, name, custom[code])
                for code, name in self.custom_fields.items()
                if code in custom
            ],
            primary_rep=PrimaryRep(reps[0].public_display_name, 2, str(reps[0].id))
            if reps
            else None,
            primary_customer=PrimaryCustomer(active.customer, 1),
            customers=[Customer(1, primary=True, info={"name": active.customer})],
            representatives=[
                Representative(
                    gsnumber=i + 2,
                    id=str(r.id),
                    username=r.username,
                    display_name=r.public_display_name,
                    public_display_name=r.public_display_name,
                    private_display_name=r.private_display_name,
                    session_owner=i == 0,
                    primary=i == 0,
                    invited=r.type == "Invited",
                )
                for i, r in enumerate(reps)
            ],
            teams=teams,
            events=[SessionEvent(_dt(active.start_time), EventType.SESSION_START)],
        )

    # --- seed --------------------------------------------------------------------

    @classmethod
    def default(
        cls, *, seed: int = 0, sessions: int = 0, now: float | None = None
    ) -> SimApplianceState:
        """A small realistic appliance, reproducible from ``seed``.

        Five reps (``bwilson`` logged out, ``mjones`` unavailable, ``guest`` invited),
        three teams with issues, two portals, ServiceNow-style custom fields, a
        full-access API account (``accounts[0]``) and a read-only one (``accounts[1]``),
        plus ``sessions`` finished sessions spread over the past hours.
        """
        now = _now(now)
        rng = random.Random(seed)
        full = {p: "1" if p.startswith("perm_reporting") else "0" for p in PERMISSION_NAMES[1:]}
        state = cls(
            appliance_id=f"{rng.getrandbits(128):032x}",
            hostname="support.example.com",
            company_name="examplecorp",
            rng=rng,
            reps=[
                SimRep(1, "admin", "Admin", "Administrator", logged_in_since=now - 7200),
                SimRep(2, "jsmith", "John", "John Smith", logged_in_since=now - 3600),
                SimRep(
                    3, "mjones", "Mary", "Mary Jones", available=False, logged_in_since=now - 600
                ),
                SimRep(4, "bwilson", "Bob", "Bob Wilson", logged_in=False),
                SimRep(
                    5,
                    "guest",
                    "Guest",
                    "Guest Expert",
                    type="Invited",
                    showing_on_rep_list=False,
                    logged_in_since=now - 300,
                ),
            ],
            teams=[
                SimTeam(
                    1,
                    "Service Desk",
                    "service_desk",
                    [
                        SimIssue(1, "printing", "Printing problems"),
                        SimIssue(2, "password_reset", "Password reset"),
                    ],
                    [TeamMember(2), TeamMember(3, "lead"), TeamMember(1, "manager")],
                ),
                SimTeam(
                    2,
                    "Network",
                    "network",
                    [SimIssue(3, "vpn", "VPN access")],
                    [TeamMember(3), TeamMember(2)],
                ),
                SimTeam(
                    3,
                    "Field Services",
                    "field_services",
                    [SimIssue(4, "hardware", "Hardware")],
                    [TeamMember(4, "lead")],
                ),
            ],
            portals=[
                PublicPortal(1, "Default", "support.example.com"),
                PublicPortal(2, "Partners", "partners.example.com"),
            ],
            custom_fields={
                "snow_task_id": "ServiceNow Task",
                "snow_cmdb_ci_id": "Configuration Item",
                "snow_call_id": "ServiceNow Call",
                "snow_interaction_id": "ServiceNow Interaction",
                "ticket_id": "Ticket",
                "rsb_sig": "rsbridge signature",
            },
        )
        state.accounts = [
            ApiAccount(
                f"{rng.getrandbits(160):040x}",
                state._alnum(44),
                "Integration",
                {"perm_command": "full_access", **full},
            ),
            ApiAccount(
                f"{rng.getrandbits(160):040x}",
                state._alnum(44),
                "Read Only",
                {"perm_command": "read_only", **full},
            ),
        ]
        for i in range(sessions):
            state._seed_session(now - (sessions - i) * 3600)
        return state

    def _seed_session(self, start: float) -> None:
        rep = self.rng.choice([r for r in self.reps if r.logged_in])
        self._lseq += 1
        # The open incidents of the simulated ServiceNow instance's demo data, in turn, so
        # that a rehearsal with both simulators lands on tickets that exist.
        ticket = SEEDED_TICKETS[(self._lseq - 1) % len(SEEDED_TICKETS)]
        end = start + self.rng.randint(300, 3000)
        customer = Actor("customer", f"Customer {self._lseq}", 2)
        survey = ExitSurvey(2, [SurveyAnswer("rating", str(self.rng.randint(1, 5)))])
        self.add_report(
            SupportSession(
                lsid=self._hex(),
                lseq=self._lseq,
                start_time=_dt(start),
                end_time=_dt(end),
                duration=timedelta(seconds=int(end) - int(start)),
                public_site=NamedRef(self.portals[0].name, str(self.portals[0].id)),
                external_key=ticket,
                custom_attributes=[CustomAttribute("ticket_id", "Ticket", ticket)],
                primary_customer=PrimaryCustomer(customer.name, 2),
                primary_rep=PrimaryRep(rep.public_display_name, 1, str(rep.id)),
                customers=[Customer(2, primary=True, info={"name": customer.name})],
                representatives=[
                    Representative(
                        1,
                        str(rep.id),
                        rep.username,
                        rep.public_display_name,
                        rep.public_display_name,
                        rep.private_display_name,
                        session_owner=True,
                        primary=True,
                    )
                ],
                events=[
                    SessionEvent(_dt(start), EventType.SESSION_START),
                    SessionEvent(
                        _dt(start + 60),
                        EventType.CHAT_MESSAGE,
                        Actor("representative", rep.public_display_name, 1),
                        customer,
                        body="Hello, how can I help?",
                    ),
                    SessionEvent(_dt(end), EventType.SESSION_END),
                ],
                customer_surveys=[survey],
            ),
            now=end,
        )
