"""Pollers: find sessions that ended since a persisted watermark and queue them.

Per polling integration, every ``polling_interval_seconds``, one SupportSessionListing
call by end time returns the lsids of the sessions that ended since the watermark; each
becomes a ``support_conference_end`` event (source ``poll``) and its job. The report
itself is fetched by the workers, batched by ``lsids=`` with other jobs, so a backlog
costs about two appliance calls per hundred sessions.

A long window (a first poll's ``poll_lookback_hours``, a pull from a date) is listed in
windows sized by what they return: the first spans a day at most, each next one grows
(up to :data:`WINDOW_GROWTH` times) towards half of :data:`LISTING_FULL` sessions, so a quiet
year costs a handful of calls and a busy day several. The reference documents no cap
on a listing's size, but an answer of :data:`LISTING_FULL` sessions or more is taken as
possibly cut short: it is not recorded, and its window is listed again in smaller parts
(down to one second), so an appliance that caps its answers loses no session.

The window starts ``report_wait_seconds`` before the watermark: the appliance lists a
session by its end time only once the report is complete, which may come after a poll
that already passed that time. Sessions seen twice are recognised by their event key
(``poll``, appliance, lsid), and the ledger keeps effects once-only across push and poll.

A manual pull (the actions API's ``POST /actions/pull``, the vendor's "Pull Support
Sessions" module) is a poll now, from the same watermark; it queues session ends for its
integration even when the integration takes them as outbound events and does not poll.

Customer exit surveys (``polling_events`` containing the survey event) are looked up
over the last ``survey_lookback_hours`` on every poll, so a survey submitted after the
poll that imported its session is picked up by a later poll instead of being lost.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from rsbridge.appliance.client import ApplianceClient, TimeWindow
from rsbridge.appliance.events import CUSTOMER_SURVEY, END
from rsbridge.config import Config, IntegrationConfig
from rsbridge.engine.intake import job_specs
from rsbridge.engine.store.base import (
    RANK_SESSION_END,
    EventSource,
    IncomingEvent,
    JobSpec,
    Store,
)

log = logging.getLogger(__name__)

LISTING_FULL = 1000
"""Sessions in one listing from which it may have been cut short (listed again, smaller)."""
WINDOW_GROWTH = 8
"""Most a window grows from one listing call to the next."""


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll found."""

    integration: str
    sessions: int
    """Sessions listed in the window."""
    queued: int
    """New events recorded (sessions and surveys not seen before)."""
    surveys: int = 0
    appliance_calls: int = 0
    since: float | None = None
    """Where a poll's window started (UNIX seconds)."""
    first_run: bool = False
    """Whether the poll had no watermark yet (``poll_lookback_hours`` back)."""


def poll_dedup_key(
    integration: str, appliance_id: str, event: str, lsid: str, extra: str = ""
) -> str:
    """The event key of a polled event: the same session polled twice is one event.

    Each polling integration records its own events (its jobs come with them).
    """
    text = "\0".join(("poll", integration, appliance_id, event, lsid, extra))
    return hashlib.sha256(text.encode()).hexdigest()


def watermark_name(integration: str) -> str:
    """The store key of an integration's polling watermark."""
    return f"poll:{integration}"


class Poller:
    """Polls one appliance for one integration.

    ``manual``: a pull someone asked for; session ends are queued for the integration
    even if it does not poll (it takes them as outbound events).
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        client: ApplianceClient,
        integration: IntegrationConfig,
        *,
        clock: Callable[[], float] = time.time,
        manual: bool = False,
        listing_full: int = LISTING_FULL,
    ) -> None:
        self.config = config
        self.manual = manual
        self.store = store
        self.client = client
        self.integration = integration
        self._clock = clock
        self._full = max(2, listing_full)

    async def poll(self, *, source: EventSource = "poll") -> PollResult:
        """Poll once from the persisted watermark (first run: ``poll_lookback_hours`` back)."""
        now = self._clock()
        name = watermark_name(self.integration.name)
        mark = await self.store.get_watermark(name)
        since = now - self.config.engine.poll_lookback_hours * 3600 if mark is None else mark
        since -= self.config.engine.report_wait_seconds if mark is not None else 0
        result = await self.pull(since, None, source=source)
        # The next window starts where this one was taken: the end of the window is "now".
        await self.store.set_watermark(name, now)
        return replace(result, since=since, first_run=mark is None)

    async def pull(
        self,
        since: float,
        until: float | None,
        *,
        source: EventSource = "pull",
        on_chunk: Callable[[int], None] | None = None,
        chunk_seconds: float = 86400.0,
        on_window: Callable[[int, int, int], None] | None = None,
    ) -> PollResult:
        """Queue sessions that ended in ``[since, until)`` (until: now).

        The first listing spans ``chunk_seconds`` at most; the next ones are sized by
        what the previous returned (see the module's doc). ``on_chunk`` is called with
        the seconds covered after each listing recorded (a progress bar), ``on_window``
        with those seconds, the sessions listed and the events newly queued; the
        watermark is left alone.
        """
        calls_before = self.client.requests_sent
        end = self._clock() if until is None else until
        sessions = queued = 0
        start = since
        # Whole seconds: the appliance reads whole seconds, and windows must neither
        # overlap nor leave a gap between them.
        span = max(1, int(min(chunk_seconds, end - start)))
        while start < end:
            span = max(1, min(span, math.ceil(end - start)))
            last = start + span >= end and until is None
            window = TimeWindow(
                "end",
                datetime.fromtimestamp(start, UTC),
                None if last else timedelta(seconds=span),
            )
            listing = await self.client.support_session_listing(window)
            if len(listing) >= self._full:
                if span > 1:
                    # Possibly cut short: the same start again, a part of the window.
                    span = min(span // 2, int(span * self._full / 2 / len(listing)))
                    continue
                log.warning(
                    "%s: %d sessions ended in one second at %s; the appliance may have "
                    "listed only some of them",
                    self.integration.name,
                    len(listing),
                    window.since.isoformat(),
                )
            sessions += len(listing)
            new = await self._record(END, ((s.lsid, s.external_key, "") for s in listing), source)
            queued += new
            if on_chunk is not None:
                on_chunk(span)
            if on_window is not None:
                on_window(span, len(listing), new)
            start += span
            span = int(span * min(WINDOW_GROWTH, self._full / 2 / max(1, len(listing))))
        surveys = 0
        if CUSTOMER_SURVEY in self.integration.polling_events:
            surveys = await self._surveys(source)
        return PollResult(
            self.integration.name,
            sessions,
            queued + surveys,
            surveys,
            self.client.requests_sent - calls_before,
        )

    async def _surveys(self, source: EventSource) -> int:
        lookback = self.integration.survey_lookback_hours * 3600
        window = TimeWindow("end", datetime.fromtimestamp(self._clock() - lookback, UTC))
        records = await self.client.exit_surveys("customer", window=window)
        return await self._record(
            CUSTOMER_SURVEY,
            ((r.lsid, None, r.timestamp.isoformat() if r.timestamp else "") for r in records),
            source,
        )

    async def _record(
        self, event_type: str, found: Iterable[tuple[str, str | None, str]], source: EventSource
    ) -> int:
        appliance_id = self.integration.appliance
        specs = [
            spec
            for spec in job_specs(self.config, appliance_id, event_type, polled=True)
            if spec.integration == self.integration.name
        ]
        if not specs and self.manual and event_type == END:
            specs = [JobSpec(self.integration.name, RANK_SESSION_END)]
        new = 0
        for lsid, external_key, extra in found:
            event = IncomingEvent(
                appliance_id,
                event_type,
                source,
                poll_dedup_key(self.integration.name, appliance_id, event_type, lsid, extra),
                lsid=lsid,
                external_key=external_key,
                timestamp=int(self._clock()),
                form=(("event", event_type), ("lsid", lsid)),
            )
            result = await self.store.record_event(event, specs)
            new += not result.duplicate
        if new:
            log.info("%s: queued %d new %s events", self.integration.name, new, event_type)
        return new
