"""Live sessions played step by step on the simulated appliance: the rehearsal stage.

An administrator rehearses the whole story without an appliance: a customer uses a session
key, a representative joins, they chat, the representative writes a note and sends a file,
surveys are filled in, the session ends. Each step changes the simulated appliance's state
(the Command API sees the live session, the Reporting API reports it once ended) and sends
the outbound events the appliance sends for it (begin, member added, owner changed, end,
exit surveys) to the recipients configured on the simulator.

:class:`Rehearsal` is the Python API; :mod:`.control` serves it over HTTP under ``/sim/``
and ``rsbridge rehearse`` is its command line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

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
from rsbridge.sim.appliance.emitter import OutboundEventEmitter, events_for_session
from rsbridge.sim.appliance.state import EXTERNAL_KEY, SimApplianceState, SimCommandError

MAX_TEXT = 64_000
"""Longest chat line or note a step takes (characters): a rehearsal, not a load test."""


class RehearsalError(ValueError):
    """A step that cannot be played; the message says why and what to do instead."""


@dataclass
class _Live:
    """What the rehearsal knows of one session beyond the appliance's own state."""

    report: SupportSession
    customer: Actor
    owner: Actor | None = None
    next_gsnumber: int = 2
    sent: int = 0
    """How many of the session's outbound events have been queued so far."""
    ended: bool = False
    reps: dict[str, Actor] = field(default_factory=dict)


class Rehearsal:
    """Plays live sessions on ``state`` and queues their outbound events on ``emitter``.

    Args:
        state: the simulated appliance.
        emitter: where the outbound events go (``None``: nowhere, the state still changes).
        clock: UNIX seconds; the steps' times (tests move it forward).
        send_custom_fields: the events carry the session's custom attributes.
    """

    def __init__(
        self,
        state: SimApplianceState,
        emitter: OutboundEventEmitter | None = None,
        *,
        clock: Callable[[], float] = time.time,
        send_custom_fields: bool = False,
    ) -> None:
        self.state = state
        self.emitter = emitter
        self.clock = clock
        self.send_custom_fields = send_custom_fields
        self._live: dict[str, _Live] = {}

    # --- steps ----------------------------------------------------------------------------

    def new_key(
        self,
        *,
        queue: str = "general",
        external_key: str | None = None,
        custom: Mapping[str, str] | None = None,
    ) -> str:
        """Generate a session key on the appliance, as the Command API does; its short key."""
        items = [*(custom or {}).items()]
        if external_key:
            items.append((EXTERNAL_KEY, external_key))
        try:
            key = self.state.generate_session_key(queue_id=queue, custom=items, now=self.clock())
        except SimCommandError as exc:
            raise RehearsalError(exc.message) from None
        return key.short_key

    def start(
        self, key: str, *, customer: str = "Customer", details: Mapping[str, str] | None = None
    ) -> str:
        """The customer uses ``key`` (short key or access key); returns the session's lsid."""
        name = _text(customer, "customer name", limit=200)
        now = self.clock()
        try:
            lsid = self.state.start_session(key, customer=name, now=now)
        except LookupError as exc:
            raise RehearsalError(f"{exc}: generate a key first (rsbridge rehearse key)") from None
        active = self.state.active_sessions[lsid]
        actor = Actor("customer", name, 1)
        report = SupportSession(
            lsid=lsid,
            lseq=active.lseq,
            start_time=_dt(now),
            public_site=NamedRef(active.portal.name, str(active.portal.id)),
            primary_customer=PrimaryCustomer(name, 1),
            customers=[
                Customer(gsnumber=1, primary=True, info={"name": name, **_strings(details or {})})
            ],
        )
        live = self._live[lsid] = _Live(report, actor)
        self._event(live, EventType.SESSION_START)
        self._event(live, EventType.CONFERENCE_MEMBER_ADDED, to=actor)
        self._refresh(live)
        self._send(live)
        return lsid

    def join(self, lsid: str, rep: str) -> None:
        """Representative ``rep`` (a username) joins; the first one owns the session."""
        live = self._open(lsid)
        if rep in live.reps:
            raise RehearsalError(f"{rep} is already in session {lsid}")
        try:
            self.state.join_session(lsid, rep_id=None, rep_username=rep)
        except SimCommandError as exc:
            raise RehearsalError(exc.message) from None
        found = next(r for r in self.state.reps if r.username == rep)
        gs = live.next_gsnumber
        live.next_gsnumber += 1
        actor = live.reps[rep] = Actor("representative", found.private_display_name, gs)
        first = live.owner is None
        live.report.representatives.append(
            Representative(
                gsnumber=gs,
                id=str(found.id),
                username=found.username,
                display_name=found.private_display_name,
                public_display_name=found.public_display_name,
                private_display_name=found.private_display_name,
                session_owner=first,
                primary=first,
                invited=found.type == "Invited",
            )
        )
        self._event(live, EventType.CONFERENCE_MEMBER_ADDED, to=actor)
        if first:
            live.owner = actor
            live.report.primary_rep = PrimaryRep(actor.name, gs, str(found.id))
            self._event(live, EventType.CONFERENCE_OWNER_CHANGED, to=actor, data={"owner": rep})
        self._send(live)

    def chat(self, lsid: str, text: str, *, sender: str = "customer") -> None:
        """A chat line from the customer to the owner, or from the owner to the customer."""
        if sender not in ("customer", "rep"):
            raise RehearsalError(f"sender must be customer or rep, not {sender!r}")
        live = self._open(lsid)
        owner = self._owner(live, "chat")
        by, to = (live.customer, owner) if sender == "customer" else (owner, live.customer)
        self._event(live, EventType.CHAT_MESSAGE, by=by, to=to, body=_text(text, "chat line"))

    def note(self, lsid: str, text: str) -> None:
        """The owner adds a session note."""
        live = self._open(lsid)
        by = self._owner(live, "add a note")
        self._event(live, EventType.SESSION_NOTE_ADDED, by=by, body=_text(text, "note"))

    def file(self, lsid: str, name: str, size: int, *, direction: str = "upload") -> None:
        """A file transfer: ``upload`` (rep to customer) or ``download`` (customer to rep)."""
        live = self._open(lsid)
        rep = self._owner(live, "transfer a file")
        if direction not in ("upload", "download") or size < 0:
            raise RehearsalError("direction must be upload or download, size 0 or more")
        kind, by, to = (
            (EventType.FILE_UPLOAD, rep, live.customer)
            if direction == "upload"
            else (EventType.FILE_DOWNLOAD, live.customer, rep)
        )
        filename = _text(name, "file name", limit=1000)
        self._event(live, kind, by=by, to=to, filename=filename, filesize=size)
        live.report.file_transfer_count += 1

    def attributes(self, lsid: str, values: Mapping[str, str]) -> None:
        """Set custom attributes (``external_key`` included) as the Command API does."""
        live = self._open(lsid)
        try:
            self.state.set_session_attributes(lsid, _strings(values).items())
        except SimCommandError as exc:
            raise RehearsalError(exc.message) from None
        self._refresh(live)

    def survey(self, lsid: str, kind: str, answers: Mapping[str, str]) -> None:
        """An exit survey, ``customer`` or ``rep``; before the end, or after it as a late one."""
        live = self._known(lsid)
        if kind not in ("customer", "rep"):
            raise RehearsalError(f"survey kind must be customer or rep, not {kind!r}")
        by = live.customer if kind == "customer" else self._owner(live, "fill a rep survey")
        surveys = live.report.customer_surveys if kind == "customer" else live.report.rep_surveys
        if surveys:
            raise RehearsalError(f"session {lsid} already has a {kind} exit survey")
        values = [SurveyAnswer(k, v) for k, v in _strings(answers).items()]
        surveys.append(ExitSurvey(by.gsnumber, values))
        event_type = (
            EventType.CUSTOMER_EXIT_SURVEY
            if kind == "customer"
            else EventType.REPRESENTATIVE_EXIT_SURVEY
        )
        self._event(live, event_type, by=by)
        if live.ended:
            # A late survey: the stored report gains it, and its event goes out now.
            self.state.add_report(live.report, now=self.clock())
            self._send(live)

    def end(self, lsid: str) -> SupportSession:
        """End the session: its report is stored and the end (and survey) events go out."""
        live = self._open(lsid)
        self._refresh(live)
        now = self.clock()
        report = live.report
        self._event(live, EventType.SESSION_END)
        report.end_time = _dt(now)
        assert report.start_time is not None
        report.duration = report.end_time - report.start_time
        self.state.complete_session(lsid, report, now=now)
        live.ended = True
        self._send(live)
        return report

    def status(self, lsid: str) -> dict[str, object]:
        """What a session holds so far (for the control API and tests)."""
        live = self._known(lsid)
        return {
            "lsid": lsid,
            "ended": live.ended,
            "events": len(live.report.events),
            "outbound_events": live.sent,
            "representatives": sorted(live.reps),
        }

    def sessions(self) -> list[dict[str, object]]:
        """Every rehearsed session, newest first: live ones, then ended ones (for the page)."""
        rows = [
            {
                **self.status(lsid),
                "customer": live.customer.name,
                "external_key": live.report.external_key or "",
                "started": live.report.start_time,
            }
            for lsid, live in self._live.items()
        ]
        rows.reverse()
        rows.sort(key=lambda row: bool(row["ended"]))
        return rows

    # --- inside -----------------------------------------------------------------------------

    def _known(self, lsid: str) -> _Live:
        live = self._live.get(lsid)
        if live is None:
            raise RehearsalError(f"no rehearsed session {lsid!r}: start one from a key")
        return live

    def _open(self, lsid: str) -> _Live:
        live = self._known(lsid)
        if live.ended:
            raise RehearsalError(f"session {lsid} has ended")
        return live

    @staticmethod
    def _owner(live: _Live, doing: str) -> Actor:
        if live.owner is None:
            raise RehearsalError(f"a representative must join before you {doing}")
        return live.owner

    def _refresh(self, live: _Live) -> None:
        """Copy the live session's attributes (set here or through the Command API)."""
        values = {
            code: (name, value)
            for code, name, value in self.state.session_attributes(live.report.lsid)
        }
        external = values.pop(EXTERNAL_KEY, ("", ""))[1]
        live.report.external_key = external or None
        live.report.custom_attributes = [
            CustomAttribute(code, name, value) for code, (name, value) in values.items() if value
        ]

    def _event(
        self,
        live: _Live,
        event_type: str,
        *,
        by: Actor | None = None,
        to: Actor | None = None,
        body: str | None = None,
        filename: str | None = None,
        filesize: int | None = None,
        data: dict[str, str] | None = None,
    ) -> None:
        # Whole seconds, never before the previous event: the report XML carries seconds.
        stamp = _dt(self.clock())
        if live.report.events and stamp < live.report.events[-1].timestamp:
            stamp = live.report.events[-1].timestamp
        live.report.events.append(
            SessionEvent(
                stamp,
                event_type,
                performed_by=by,
                destination=to,
                body=body,
                filename=filename,
                filesize=filesize,
                data=data or {},
            )
        )

    def _send(self, live: _Live) -> None:
        """Queue the session's outbound events that have not gone out yet."""
        # Only what has been played: end and survey events come once the session has ended.
        events = events_for_session(
            live.report, self.state.appliance_id, send_custom_fields=self.send_custom_fields
        )
        for event in events[live.sent :]:
            if self.emitter is not None:
                self.emitter.enqueue(event)
        live.sent = max(live.sent, len(events))


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(int(ts), UTC)


def _text(value: str, what: str, *, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RehearsalError(f"the {what} is empty")
    if len(value) > limit:
        raise RehearsalError(f"the {what} is longer than {limit} characters")
    return value


def _strings(values: Mapping[str, object]) -> dict[str, str]:
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
        raise RehearsalError("names and values must be strings")
    return {str(k): str(v) for k, v in values.items()}


__all__ = ["MAX_TEXT", "Rehearsal", "RehearsalError"]
