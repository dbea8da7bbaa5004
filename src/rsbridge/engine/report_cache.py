"""Complete session reports kept in memory for the jobs that follow on the same session.

A session's survey jobs run only after its end job has finished (per-session ordering),
so they are claimed in a later batch, and each used to fetch the report again although
the end job's fetch already held everything. The worker keeps the complete reports it
fetched here, a bounded number for a bounded time, and a later job of the same session
uses one instead of calling the appliance.

Only when that is exact: a report serves a job only if it was asked for a margin
(``[engine] clock_margin_seconds``, for clock skew between nodes) after the moment the job
became runnable (``run_after``: when its event was recorded, or when a
wait for the appliance ended), so it is an answer the job's own fetch could have had. A
job that waited because the report lacked something (no end time, no survey yet) became
runnable after that answer, and fetches again.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from rsbridge.appliance.report_model import SupportSession

DEFAULT_ENTRIES = 200
"""Reports kept (two batches): enough for the jobs that follow a batch."""
DEFAULT_MAX_AGE_SECONDS = 600.0
"""How long a report is kept at most."""


@dataclass(frozen=True, slots=True)
class CachedReport:
    """A complete report and when it was asked for (worker clock, UNIX seconds)."""

    session: SupportSession
    asked_at: float


class ReportCache:
    """Complete reports by (appliance, lsid), least recently stored dropped first."""

    def __init__(
        self,
        *,
        entries: int = DEFAULT_ENTRIES,
        max_age: float = DEFAULT_MAX_AGE_SECONDS,
        margin: float = 0.0,
    ) -> None:
        self._entries = max(0, entries)
        self._margin = margin
        self._max_age = max_age
        self._reports: OrderedDict[tuple[str, str], CachedReport] = OrderedDict()
        self.hits = 0
        """Reports served instead of an appliance call."""

    def __len__(self) -> int:
        return len(self._reports)

    def put(self, appliance_id: str, session: SupportSession, asked_at: float) -> None:
        """Keep ``session`` (asked for at ``asked_at``) if it is complete."""
        if session.end_time is None or self._entries == 0:
            return  # an incomplete report would be fetched again anyway
        key = (appliance_id, session.lsid)
        known = self._reports.get(key)
        if known is not None and known.asked_at > asked_at:
            return  # a newer answer is kept already
        self._reports[key] = CachedReport(session, asked_at)
        self._reports.move_to_end(key)
        while len(self._reports) > self._entries:
            self._reports.popitem(last=False)

    def get(
        self, appliance_id: str, lsid: str, *, asked_since: float, now: float
    ) -> CachedReport | None:
        """The report of ``lsid`` if one asked for at least the margin after ``asked_since``
        is kept (``asked_since`` may come from another node's clock)."""
        key = (appliance_id, lsid)
        found = self._reports.get(key)
        if found is None:
            return None
        if now - found.asked_at > self._max_age:
            del self._reports[key]
            return None
        if found.asked_at < asked_since + self._margin:
            return None
        self.hits += 1
        return found
