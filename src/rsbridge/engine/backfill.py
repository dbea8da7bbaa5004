"""Backfill: queue the sessions that ended in a past period, as a background task.

A backfill lists the appliance's sessions by end time over ``[since, until)`` and queues
each one for one integration (a manual pull of that period: :meth:`Poller.pull`, the
integration's watermark left alone). Sessions already recorded for the integration (by a
poll, a pull or an earlier backfill) are recognised by their event key and not queued
again, and the ledger keeps effects once-only whatever arrives twice.

:class:`Backfills` runs them in the engine's process and keeps their progress for the
admin console (``/admin/pull/{run_id}``): one run at a time per integration, so that two
operators do not list the same period twice.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rsbridge.appliance.client import ApplianceClient
from rsbridge.config import Config, IntegrationConfig
from rsbridge.engine.poller import Poller
from rsbridge.engine.store.base import Store
from rsbridge.errors import ConfigurationError, RsbridgeError

log = logging.getLogger(__name__)

KEPT_RUNS = 50
"""Finished runs kept for their progress pages (the oldest are forgotten first)."""


@dataclass(slots=True)
class BackfillRun:
    """One backfill and how far it got."""

    id: str
    integration: str
    since: float
    until: float
    started_by: str
    started_at: float
    covered: float = 0.0
    """Seconds of the period listed so far."""
    sessions: int = 0
    """Sessions the appliance listed so far."""
    queued: int = 0
    """Sessions newly queued so far (not recorded for the integration before)."""
    finished_at: float | None = None
    error: str | None = None
    """Why the run stopped early (no secret, no peer's raw answer)."""

    @property
    def total(self) -> float:
        """Seconds in the period."""
        return self.until - self.since

    @property
    def done(self) -> bool:
        """Whether the run has ended (completely, or with :attr:`error`)."""
        return self.finished_at is not None


class BackfillRunningError(RsbridgeError):
    """A backfill for the integration runs already (``run`` is that one)."""

    def __init__(self, run: BackfillRun) -> None:
        super().__init__(f"a backfill for {run.integration} is running already")
        self.run = run


class Backfills:
    """The backfills of one engine process: start them, follow them."""

    def __init__(
        self,
        config: Config,
        store: Store,
        appliances: Mapping[str, ApplianceClient],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._store = store
        self._appliances = appliances
        self._clock = clock
        self._runs: dict[str, BackfillRun] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def get(self, run_id: str) -> BackfillRun | None:
        """The run called ``run_id``, if this process knows it."""
        return self._runs.get(run_id)

    def recent(self) -> list[BackfillRun]:
        """The runs this process knows, newest first."""
        return sorted(self._runs.values(), key=lambda r: r.started_at, reverse=True)

    def running(self, integration: str) -> BackfillRun | None:
        """The run of ``integration`` that has not ended, if any."""
        return next(
            (r for r in self._runs.values() if r.integration == integration and not r.done), None
        )

    def start(
        self, integration: IntegrationConfig, since: float, until: float, *, by: str
    ) -> BackfillRun:
        """Start backfilling ``[since, until)`` for ``integration`` in the background.

        ``until`` past the present is taken as now.

        Raises:
            BackfillRunningError: the integration has a run that has not ended.
            ConfigurationError: the integration is not active, or the period is empty.
        """
        client = self._appliances.get(integration.appliance)
        if integration.disabled or client is None:
            raise ConfigurationError(f"integration {integration.name} is not active")
        until = min(until, self._clock())
        if until <= since:
            raise ConfigurationError("the period is empty: since must be before until (and now)")
        already = self.running(integration.name)
        if already is not None:
            raise BackfillRunningError(already)
        run = BackfillRun(secrets.token_hex(8), integration.name, since, until, by, self._clock())
        self._forget_old()
        self._runs[run.id] = run
        poller = Poller(self._config, self._store, client, integration, manual=True)
        task = asyncio.create_task(self._run(run, poller), name=f"backfill-{integration.name}")
        self._tasks[run.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run.id, None))
        return run

    async def aclose(self) -> None:
        """Cancel the runs that have not ended (what they queued stays queued)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _run(self, run: BackfillRun, poller: Poller) -> None:
        def advance(seconds: int, listed: int, queued: int) -> None:
            run.covered = min(run.total, run.covered + seconds)
            run.sessions += listed
            run.queued += queued

        try:
            await poller.pull(run.since, run.until, source="pull", on_window=advance)
        except RsbridgeError as exc:
            run.error = exc.message
            log.warning("%s: backfill %s stopped: %s", run.integration, run.id, exc.message)
        except asyncio.CancelledError:
            run.error = "stopped: the engine shut down"
            raise
        except Exception as exc:
            # The type only: the text of an unexpected exception may quote anything.
            run.error = f"unexpected error: {type(exc).__name__}"
            log.exception("%s: backfill %s failed", run.integration, run.id)
        else:
            log.info(
                "%s: backfill %s listed %d sessions, queued %d",
                run.integration,
                run.id,
                run.sessions,
                run.queued,
            )
        finally:
            run.finished_at = self._clock()

    def _forget_old(self) -> None:
        finished = sorted((r for r in self._runs.values() if r.done), key=lambda r: r.started_at)
        for run in finished[: max(0, len(finished) - KEPT_RUNS + 1)]:
            del self._runs[run.id]
