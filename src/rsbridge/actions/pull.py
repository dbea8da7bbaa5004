"""Pull now: the vendor's "Pull Support Sessions" module, as an action.

The sessions that ended since the integration's watermark (the first time: the last
``engine.poll_lookback_hours``, 24 by default, as the vendor's module) are listed on the
appliance and queued, one job each, for the engine's workers to import. It is one poll of
:class:`~rsbridge.engine.poller.Poller`, the same as the background poller's and
``rsbridge pull``'s, from the same persisted watermark: sessions already queued (by a poll,
a pull or an outbound event) are not queued or imported twice.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rsbridge.actions.base import ActionBase, log
from rsbridge.actions.models import PullResult
from rsbridge.engine.poller import Poller


class PullActions(ActionBase):
    """``pull_now``: list the sessions that ended since the last pull and queue them."""

    async def pull_now(self, integration: str) -> PullResult:
        """Poll the integration's appliance now and queue what ended since the watermark.

        Works for an integration that takes outbound events too: its session ends are
        queued for it (a session that also arrives as an event is imported once).
        """
        parts = self._parts(integration)
        poller = Poller(
            self.config,
            self.store,
            parts.appliance,
            parts.integration,
            clock=self.clock,
            manual=True,
        )
        result = await poller.poll(source="pull")
        since = result.since if result.since is not None else self.clock()
        log.info(
            "%s: pull now listed %d sessions, queued %d (and %d surveys)",
            integration,
            result.sessions,
            result.queued - result.surveys,
            result.surveys,
        )
        return PullResult(
            integration=integration,
            since=datetime.fromtimestamp(since, UTC),
            first_run=result.first_run,
            sessions_listed=result.sessions,
            sessions_queued=result.queued - result.surveys,
            surveys_queued=result.surveys,
            appliance_calls=result.appliance_calls,
        )
