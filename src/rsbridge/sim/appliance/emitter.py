"""The appliance's outbound-event sender, for the simulator and delivery tests.

It delivers the way the appliance does (reference §5): each event is an
``application/x-www-form-urlencoded`` POST; every recipient has its own FIFO queue
whose head is retried, every ``retry_interval`` seconds, until it gets HTTP 200, and no
later event is sent before that. Anything else (another status, a connection error, a
timeout) counts as a failure; once ``retry_duration`` has passed since the head's first
attempt it is dropped and counted, and the queue moves on.

::

    emitter = OutboundEventEmitter([Recipient("http://127.0.0.1:8080/ERSPost")])
    for event in events_for_session(session, appliance_id):
        emitter.enqueue(event)
    await emitter.run_until_idle()
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from urllib.parse import urlencode

import httpx

from rsbridge.appliance.events import (
    BEGIN,
    CUSTOMER_SURVEY,
    END,
    EVENT_NAMES,
    FORM_CONTENT_TYPE,
    MEMBER_ADDED,
    MEMBER_DEPARTED,
    OWNER_CHANGED,
    REP_SURVEY,
)
from rsbridge.appliance.report_model import Actor, EventType, SupportSession

log = logging.getLogger(__name__)

SCHEMA_VERSION = "3"
"""Value of the ``version`` variable (the real value is undocumented)."""

__all__ = [
    "BEGIN",
    "CUSTOMER_SURVEY",
    "END",
    "EVENT_NAMES",
    "FORM_CONTENT_TYPE",
    "MEMBER_ADDED",
    "MEMBER_DEPARTED",
    "OWNER_CHANGED",
    "REP_SURVEY",
    "OutboundEvent",
    "OutboundEventEmitter",
    "Recipient",
    "events_for_session",
]

_MEMBER_EVENTS: dict[str, str] = {
    EventType.CONFERENCE_MEMBER_ADDED: MEMBER_ADDED,
    EventType.CONFERENCE_MEMBER_DEPARTED: MEMBER_DEPARTED,
    EventType.CONFERENCE_OWNER_CHANGED: OWNER_CHANGED,
}


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    """One outbound event: its name and its other form variables, in sending order."""

    event: str
    variables: tuple[tuple[str, str], ...] = ()

    def form(self) -> list[tuple[str, str]]:
        """All form variables as sent, ``event`` first."""
        return [("event", self.event), *self.variables]

    def get(self, name: str) -> str | None:
        """The value of variable ``name``, or ``None``."""
        return next((value for key, value in self.form() if key == name), None)


def _member_variables(session: SupportSession, actor: Actor) -> list[tuple[str, str]] | None:
    """``type, name, username, user_id, display_name`` of a customer or rep, else None."""
    if actor.type == "representative":
        rep = next((r for r in session.representatives if r.gsnumber == actor.gsnumber), None)
        if rep is None:
            return None
        username, user_id, display_name = rep.username, rep.id, rep.display_name
    elif actor.type == "customer":
        customer = next((c for c in session.customers if c.gsnumber == actor.gsnumber), None)
        username = customer.username if customer else None
        user_id, display_name = None, actor.name
    else:
        return None
    return [
        ("type", actor.type),
        ("name", actor.name),
        ("username", username or ""),
        ("user_id", user_id or ""),
        ("display_name", display_name or actor.name),
    ]


def events_for_session(
    session: SupportSession, appliance_id: str, *, send_custom_fields: bool = False
) -> list[OutboundEvent]:
    """The outbound events the appliance sends for ``session``, in sending order.

    Begin, then one member-added / owner-changed / member-departed event per matching
    report event whose destination is a customer or representative (the system's
    pre-start ownership is not announced), then end and, when the report has them, the
    customer and rep exit-survey events (stamped with the end time: surveys are
    submitted as the session closes). A session that has not ended gets no end or
    survey events. ``send_custom_fields`` adds the session's custom attributes.
    """
    if session.start_time is None:
        raise ValueError(f"session {session.lsid} has no start time")
    # The appliance's naming of custom-field variables is unverified (reference §5);
    # session.custom.<code_name> mirrors how they are set through the APIs.
    custom = (
        [(f"session.custom.{a.code_name}", a.value) for a in session.custom_attributes]
        if send_custom_fields
        else []
    )

    def make(name: str, when: datetime, extra: Sequence[tuple[str, str]] = ()) -> OutboundEvent:
        return OutboundEvent(
            name,
            (
                ("version", SCHEMA_VERSION),
                ("timestamp", str(int(when.timestamp()))),
                ("appliance_id", appliance_id),
                ("lsid", session.lsid),
                ("external_key", session.external_key or ""),
                *extra,
                *custom,
            ),
        )

    events = [make(BEGIN, session.start_time)]
    for report_event in session.events:
        name = _MEMBER_EVENTS.get(report_event.event_type)
        if name is None or report_event.destination is None:
            continue
        member = _member_variables(session, report_event.destination)
        if member is not None:
            events.append(make(name, report_event.timestamp, member))
    if session.end_time is not None:
        events.append(make(END, session.end_time))
        events += [make(CUSTOMER_SURVEY, session.end_time) for _ in session.customer_surveys]
        events += [make(REP_SURVEY, session.end_time) for _ in session.rep_surveys]
    return events


class Recipient:
    """One HTTP recipient: its settings, its FIFO queue and its delivery counters.

    Args:
        url: where events are POSTed.
        retry_interval: seconds between attempts at a failing event.
        retry_duration: seconds after an event's first attempt past which it is
            dropped instead of retried.
        timeout: seconds an attempt may take before it counts as a failure.
        events: the "Events to Send": names of the events this recipient gets
            (default: all of them).

    The default timings are the simulator's own; the appliance's are not documented.

    Counters: ``sent`` (events answered 200), ``attempts`` (POSTs tried), ``dropped``
    (events given up after ``retry_duration``) and ``queued`` (events waiting,
    the one being retried included).
    """

    def __init__(
        self,
        url: str,
        *,
        retry_interval: float = 60.0,
        retry_duration: float = 3600.0,
        timeout: float = 30.0,
        events: Collection[str] | None = None,
    ) -> None:
        self.url = url
        self.retry_interval = retry_interval
        self.retry_duration = retry_duration
        self.timeout = timeout
        self.events = frozenset(EVENT_NAMES if events is None else events)
        self.sent = 0
        self.attempts = 0
        self.dropped = 0
        self._queue: deque[OutboundEvent] = deque()
        self._lock = asyncio.Lock()
        self._wakeup = asyncio.Event()

    @property
    def queued(self) -> int:
        """Events waiting for delivery, the one being retried included."""
        return len(self._queue)

    def __repr__(self) -> str:
        return f"Recipient({self.url!r}, queued={self.queued}, sent={self.sent})"


class OutboundEventEmitter:
    """Sends outbound events to several recipients, each through its own queue.

    Drive it with :meth:`run_until_idle` (deliver everything queued, then return) or
    run it in the background with :meth:`start` and stop it with :meth:`aclose` (also
    ``async with``). An ``httpx.AsyncClient`` may be passed in; otherwise the emitter
    owns one and closes it.
    """

    def __init__(
        self, recipients: Iterable[Recipient], *, client: httpx.AsyncClient | None = None
    ) -> None:
        self.recipients = list(recipients)
        self._client = client or httpx.AsyncClient()
        self._owns_client = client is None
        self._workers: list[asyncio.Task[None]] = []
        self._running = False

    @property
    def sent(self) -> int:
        """Events delivered, over all recipients."""
        return sum(r.sent for r in self.recipients)

    @property
    def attempts(self) -> int:
        """POSTs tried, over all recipients."""
        return sum(r.attempts for r in self.recipients)

    @property
    def dropped(self) -> int:
        """Events given up, over all recipients."""
        return sum(r.dropped for r in self.recipients)

    @property
    def queued(self) -> int:
        """Events waiting, over all recipients."""
        return sum(r.queued for r in self.recipients)

    def add(self, recipient: Recipient) -> None:
        """Add a recipient; while running in the background it is served at once."""
        self.recipients.append(recipient)
        if self._running:
            self._workers.append(asyncio.create_task(self._work(recipient)))

    def enqueue(self, event: OutboundEvent) -> None:
        """Queue ``event`` for every recipient whose "Events to Send" include it."""
        for recipient in self.recipients:
            if event.event in recipient.events:
                recipient._queue.append(event)
                recipient._wakeup.set()

    async def run_until_idle(self) -> None:
        """Deliver (or drop) everything queued, for all recipients concurrently."""
        await asyncio.gather(*(self._drain(r) for r in self.recipients))

    def start(self) -> None:
        """Deliver in the background, as events are queued, until :meth:`aclose`."""
        if not self._running:
            self._running = True
            self._workers = [asyncio.create_task(self._work(r)) for r in self.recipients]

    async def aclose(self) -> None:
        """Stop background delivery (events not yet delivered stay queued)."""
        self._running = False
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> OutboundEventEmitter:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _work(self, recipient: Recipient) -> None:
        while True:
            await recipient._wakeup.wait()
            recipient._wakeup.clear()
            await self._drain(recipient)

    async def _drain(self, recipient: Recipient) -> None:
        # The lock keeps a background worker and run_until_idle from sending the same
        # head twice; the head leaves the queue only once delivered or dropped.
        async with recipient._lock:
            while recipient._queue:
                await self._deliver(recipient, recipient._queue[0])
                recipient._queue.popleft()

    async def _deliver(self, recipient: Recipient, event: OutboundEvent) -> None:
        loop = asyncio.get_running_loop()
        first_attempt = loop.time()
        while True:
            recipient.attempts += 1
            if await self._post(recipient, event):
                recipient.sent += 1
                return
            if loop.time() + recipient.retry_interval - first_attempt > recipient.retry_duration:
                recipient.dropped += 1
                log.warning("dropped %s for %s after retrying", event.event, recipient.url)
                return
            await asyncio.sleep(recipient.retry_interval)

    async def _post(self, recipient: Recipient, event: OutboundEvent) -> bool:
        try:
            response = await self._client.post(
                recipient.url,
                content=urlencode(event.form()),
                headers={"Content-Type": FORM_CONTENT_TYPE},
                timeout=recipient.timeout,
            )
        except httpx.HTTPError as exc:
            log.debug("%s to %s failed: %r", event.event, recipient.url, exc)
            return False
        return response.status_code == 200
