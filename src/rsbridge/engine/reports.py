"""Fetching the session reports a batch of jobs needs from one appliance.

One call asks for up to 100 lsids. What comes back is read one session at a time, and one
damaged session must not cost the others of the same answer:

* a session that is well-formed XML but holds a value that cannot be read (a file size
  ``12abc``) is reported by the parser, which reads on: that lsid fails, the rest arrive;
* when the parser cannot read past the damage (broken markup, a session over the size
  limits), the lsid that broke it is failed when the parser knows it, and the sessions
  not yet received are asked for again without it; when it does not know it, each of
  them is asked for alone, so the damage stays with its own session.

Every other failure (the appliance unreachable, a call past its deadline, a refusal) is
the answer for every lsid still missing. Sessions the appliance sends without being asked
are skipped by the client and counted there (``unrequested_items``).

A job gets its session's answer as soon as that session is read (or has failed), not when
the whole batch has arrived: reading 100 sessions takes a tenth of a second or more, and
the jobs of the first ones go to work meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping
from dataclasses import dataclass

from rsbridge.appliance.client import ApplianceClient
from rsbridge.appliance.report_model import SupportSession
from rsbridge.appliance.report_parser import DamagedItem
from rsbridge.engine.report_cache import ReportCache
from rsbridge.engine.store.base import Job
from rsbridge.errors import ApplianceReportError, ConfigurationError, RsbridgeError

log = logging.getLogger(__name__)

FetchResult = SupportSession | Exception | None
"""What a fetch found for one lsid: the report, why it could not be had, or nothing yet."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """What one fetch found per lsid, and when it was asked for (None: not asked)."""

    found: Mapping[str, FetchResult]
    asked_at: float | None


Answer = Fetched | str | asyncio.Future[Fetched]
"""What a job that needs a report gets: the reports, a note (its effects are done
already: no report needed), or its session's answer from a running fetch, to wait for."""


class _Answers:
    """The answer of each lsid of one running fetch, given as soon as it is known."""

    def __init__(self, lsids: Collection[str]) -> None:
        loop = asyncio.get_running_loop()
        self.of: dict[str, asyncio.Future[Fetched]] = {lsid: loop.create_future() for lsid in lsids}

    def give(self, lsid: str, result: FetchResult, asked_at: float) -> None:
        """``lsid``'s final result (a fetch never changes one it has set)."""
        future = self.of.get(lsid)
        if future is not None and not future.done():
            future.set_result(Fetched({lsid: result}, asked_at))

    def end(self, task: asyncio.Task[Fetched]) -> None:
        """The fetch is over: the lsids still unanswered get its whole answer (without
        them: not in the appliance's report yet), its failure or its cancellation."""
        for future in self.of.values():
            if future.done():
                continue
            if task.cancelled():
                future.cancel()
            elif (error := task.exception()) is not None:
                future.set_exception(error)
            else:
                future.set_result(task.result())


class ReportFetcher:
    """The worker's report fetches: one task per appliance and batch, counted.

    One fetch per appliance at a time: gentle on its request budget, and the call count
    stays exact. The complete reports of appliances in ``keep`` go into ``cache`` for
    the jobs that follow on the same sessions (see :mod:`.report_cache`). A fetch asks
    ``gather`` seconds after its jobs became runnable at the earliest
    (``[engine] report_gather_seconds``).
    """

    def __init__(
        self,
        appliances: Mapping[str, ApplianceClient],
        cache: ReportCache,
        *,
        keep: Collection[str],
        clock: Callable[[], float],
        gather: float = 0.0,
    ) -> None:
        self._appliances = appliances
        self._gather = gather
        self.cache = cache
        self._keep = frozenset(keep)
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self.running: set[asyncio.Task[Fetched]] = set()
        self.calls = 0
        """Report fetches made (each may cover up to 100 sessions)."""
        self.unrequested = 0
        """Sessions appliances answered without being asked for (ignored)."""

    async def answers(
        self, jobs: Collection[Job], done: Callable[[Job], Awaitable[str | None]]
    ) -> dict[int, Answer]:
        """For each of ``jobs`` (that need a report): ``done``'s note when it has one,
        else a kept report it can use, else the fetch it waits for (started here)."""
        checks = await asyncio.gather(*(done(job) for job in jobs), return_exceptions=True)
        answers: dict[int, Answer] = {}
        wanted: dict[str, set[str]] = {}
        # A fresh job's fetch waits a moment for its session's companions (the appliance
        # sends a session's end and its surveys together): asked after they arrived, its
        # report serves them from the cache; asked before, each would fetch again.
        not_before: dict[str, float] = {}
        now = self._clock()
        for job, note in zip(jobs, checks, strict=True):
            lsid = job.lsid or ""
            if isinstance(note, BaseException):
                # The job itself meets the store's failure (or succeeds after all).
                log.warning("job %d: the ledger could not be checked: %s", job.id, note)
                note = None
            if note is not None:
                answers[job.id] = note
                continue
            # Asked only when it is used: the cache counts every answer as a hit.
            kept = self.cache.get(job.appliance_id, lsid, asked_since=job.run_after, now=now)
            if kept is not None:
                answers[job.id] = Fetched({lsid: kept.session}, kept.asked_at)
            else:
                wanted.setdefault(job.appliance_id, set()).add(lsid)
                ready = job.run_after + self._gather
                not_before[job.appliance_id] = max(ready, not_before.get(job.appliance_id, 0.0))
        fetches = self.start(wanted, not_before)
        for job in jobs:
            if job.id not in answers:
                answers[job.id] = fetches[job.appliance_id].of[job.lsid or ""]
        return answers

    def start(
        self, wanted: Mapping[str, Collection[str]], not_before: Mapping[str, float] | None = None
    ) -> dict[str, _Answers]:
        """One fetch task per appliance of ``wanted`` (appliance -> lsids), asking no
        earlier than its time in ``not_before`` (worker clock); the answers of its lsids,
        each given as soon as it is known."""
        fetches = {}
        for appliance_id, lsids in wanted.items():
            answers = _Answers(lsids)
            at = (not_before or {}).get(appliance_id, 0.0)
            task = asyncio.create_task(self._fetch(appliance_id, set(lsids), answers, at))
            self.running.add(task)
            task.add_done_callback(self.running.discard)
            task.add_done_callback(answers.end)
            fetches[appliance_id] = answers
        return fetches

    async def _fetch(
        self, appliance_id: str, lsids: set[str], answers: _Answers, not_before: float = 0.0
    ) -> Fetched:
        """The reports of ``lsids`` from one appliance, asked no earlier than
        ``not_before``, or per lsid why not; each given to ``answers`` as soon as it is
        known.

        Never raises (but for cancellation): the jobs waiting for it each get an answer.
        """
        client = self._appliances.get(appliance_id)
        if client is None:
            error = ConfigurationError(f"appliance {appliance_id} is not configured")
            return Fetched(dict.fromkeys(lsids, error), None)
        wait = not_before - self._clock()
        if wait > 0:
            await asyncio.sleep(min(wait, self._gather))
        found: dict[str, FetchResult] = {}
        async with self._locks.setdefault(appliance_id, asyncio.Lock()):
            calls, unasked = client.requests_sent, client.unrequested_items
            # Before the call: the answer holds at least what the appliance had then.
            asked_at = self._clock()

            def known(lsid: str, result: FetchResult) -> None:
                if isinstance(result, SupportSession) and appliance_id in self._keep:
                    self.cache.put(appliance_id, result, asked_at)
                answers.give(lsid, result, asked_at)

            try:
                await ReportFetch(client, appliance_id, lsids, found, known).run()
            except Exception as exc:  # a bug: fail the jobs visibly rather than hang them
                log.exception("report fetch from appliance %s failed", appliance_id)
                for lsid in lsids:
                    found.setdefault(lsid, exc)
            finally:
                self.calls += client.requests_sent - calls
                self.unrequested += client.unrequested_items - unasked
        return Fetched(found, asked_at)


class ReportFetch:
    """Fills ``found`` (lsid -> report or error) for ``lsids`` from one appliance, and
    tells ``known`` each result as it is set (once per lsid: it never changes).

    An lsid missing from ``found`` afterwards is not in the appliance's report (yet).
    """

    def __init__(
        self,
        client: ApplianceClient,
        appliance_id: str,
        lsids: Collection[str],
        found: MutableMapping[str, FetchResult],
        known: Callable[[str, FetchResult], None] | None = None,
    ) -> None:
        self._client = client
        self._appliance_id = appliance_id
        self._remaining = set(lsids)
        self._found = found
        self._known = known

    async def run(self) -> None:
        """Fetch; raises nothing but cancellation and bugs (errors go into ``found``)."""
        # Each round either ends the fetch or fails one more lsid: at most len(lsids) calls.
        while self._remaining:
            try:
                await self._ask(sorted(self._remaining))
            except ApplianceReportError as exc:
                if exc.item is not None and exc.item in self._remaining:
                    self._fail(exc.item, exc)
                    continue  # the others again, without the one that broke the answer
                await self._one_by_one()
            except RsbridgeError as exc:
                log.warning(
                    "report fetch from appliance %s failed: %s", self._appliance_id, exc.message
                )
                for lsid in list(self._remaining):
                    self._fail(lsid, exc)
            return

    async def _ask(self, lsids: list[str]) -> None:
        async for session in self._client.support_sessions(lsids=lsids, on_damaged=self._damaged):
            if session.lsid in self._remaining:
                self._set(session.lsid, session)
            # One chunk of the answer holds many sessions, built one by one without a
            # pause: let the loop run the others' I/O between two (a chunk built in one
            # go held every answer waiting in the loop for tens of milliseconds).
            await asyncio.sleep(0)

    async def _one_by_one(self) -> None:
        for lsid in sorted(self._remaining):
            try:
                await self._ask([lsid])
            except ApplianceReportError as exc:
                self._fail(lsid, exc)
            except RsbridgeError as exc:  # not about this session: the rest would fail too
                log.warning(
                    "report fetch from appliance %s failed: %s", self._appliance_id, exc.message
                )
                for rest in list(self._remaining):
                    self._fail(rest, exc)
                return

    def _damaged(self, item: DamagedItem) -> None:
        if item.key is None or item.key not in self._remaining:
            return  # the client only builds sessions asked for; a repeated one is ignored
        self._fail(
            item.key,
            ApplianceReportError(
                f"the report of session {item.key!r} from appliance {self._appliance_id} "
                f"cannot be read: {item.error.message}",
                retryable=False,
                item=item.key,
            ),
        )

    def _fail(self, lsid: str, error: Exception) -> None:
        self._set(lsid, error)

    def _set(self, lsid: str, result: FetchResult) -> None:
        self._found[lsid] = result
        self._remaining.discard(lsid)
        if self._known is not None:
            self._known(lsid, result)
