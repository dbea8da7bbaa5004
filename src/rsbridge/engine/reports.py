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
"""

from __future__ import annotations

import logging
from collections.abc import Collection, MutableMapping

from rsbridge.appliance.client import ApplianceClient
from rsbridge.appliance.report_model import SupportSession
from rsbridge.appliance.report_parser import DamagedItem
from rsbridge.errors import ApplianceReportError, RsbridgeError

log = logging.getLogger(__name__)

FetchResult = SupportSession | Exception | None
"""What a fetch found for one lsid: the report, why it could not be had, or nothing yet."""


class ReportFetch:
    """Fills ``found`` (lsid -> report or error) for ``lsids`` from one appliance.

    An lsid missing from ``found`` afterwards is not in the appliance's report (yet).
    """

    def __init__(
        self,
        client: ApplianceClient,
        appliance_id: str,
        lsids: Collection[str],
        found: MutableMapping[str, FetchResult],
    ) -> None:
        self._client = client
        self._appliance_id = appliance_id
        self._remaining = set(lsids)
        self._found = found

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
                self._found[session.lsid] = session
                self._remaining.discard(session.lsid)

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
        self._found[lsid] = error
        self._remaining.discard(lsid)
