"""Whether the idempotency ledger already holds every effect a job would have.

A replayed event, a session end polled after it was pushed, or the end event of a session
its survey imported first would each fetch the session's report only to find that every
effect is recorded. The worker asks :func:`effects_done` before fetching and finishes
such a job without an appliance call.

The answer must be exact: "done" only when every effect the job would write is in the
ledger for its integration (jobs are per integration, so several integrations are each
checked on their own).

* A session end has one effect, the session report (``session_report``); the ticket it
  was written to is recorded before it or with it.
* A survey has the session report too, when its integration imports session ends (a
  survey that came first imports the session under the end's key), and one effect per
  survey of its kind in the report. How many that is, only a report tells: each survey
  effect records how many surveys of its kind the report it was written from held and
  when that report was asked for (:func:`survey_detail`). The job is done when, for the
  newest such report, every one of those surveys is recorded and that report was asked
  for a safety margin after its event was received (so it held what the event announced,
  whichever node's clock stamped each time).
* A join (auto-create) is done without a report when auto-create on join is off.

Entries written before these details existed count as not done: the job fetches.
"""

from __future__ import annotations

from collections.abc import Sequence

from rsbridge.appliance.events import END, MEMBER_ADDED, SURVEY_EVENTS
from rsbridge.config import IntegrationConfig
from rsbridge.engine.store.base import Job, LedgerEntry, LedgerKey, Store

REPORT_EFFECT = "session_report"
"""The effect of a session end: its report written to the ticket."""
SURVEYS_IN_REPORT = "surveys_in_report"
"""Ledger detail of a survey effect: surveys of its kind in the report it came from."""
REPORT_ASKED_AT = "report_asked_at"
"""Ledger detail of a survey effect: when that report was asked for (UNIX seconds)."""

ALREADY_DELIVERED = "already delivered"
JOIN_OFF = "auto-create on join is off"


def imports_end(integration: IntegrationConfig) -> bool:
    """Whether the integration imports session ends (then a survey brings the import)."""
    return END in integration.outbound_events or END in integration.polling_events


def survey_effect(kind: str, index: int) -> str:
    """The effect name of the ``index``-th survey of ``kind`` in a report."""
    return f"survey:{kind}:{index}"


def survey_detail(count: int, asked_at: float | None) -> dict[str, str]:
    """What a survey effect records besides the connector's detail (see the module)."""
    if asked_at is None:
        return {}
    return {SURVEYS_IN_REPORT: str(count), REPORT_ASKED_AT: repr(asked_at)}


def _report_of(entry: LedgerEntry) -> tuple[float, int] | None:
    """(asked at, surveys in it) of the report a survey effect came from, if recorded."""
    try:
        return float(entry.detail[REPORT_ASKED_AT]), int(entry.detail[SURVEYS_IN_REPORT])
    except (KeyError, ValueError):
        return None


async def effects_done(
    store: Store,
    integration: IntegrationConfig | None,
    job: Job,
    *,
    margin: float = 0.0,
    session_ledger: Sequence[LedgerEntry] | None = None,
) -> str | None:
    """A note when the ledger holds every effect ``job`` would have; None otherwise.

    A survey's report counts only when asked for at least ``margin`` seconds after the
    survey's event was recorded (``[engine] clock_margin_seconds``): the two times may
    come from two nodes' clocks, and the appliance may take a moment to show the survey.

    None also when the job is not one this check knows (it then runs as usual).
    ``session_ledger``: every entry of the job's session (any integration), when the
    caller read them already (for a batch of jobs at once); None reads them here.
    """
    if integration is None or integration.disabled or not job.lsid:
        return None
    if job.event_type == MEMBER_ADDED:
        return None if integration.association.create_on_join else JOIN_OFF
    key = LedgerKey(job.appliance_id, job.lsid, END, job.integration, REPORT_EFFECT)
    if job.event_type == END:
        if session_ledger is None:
            recorded = await store.ledger_get(key) is not None
        else:
            recorded = any(entry.key == key for entry in session_ledger)
        return ALREADY_DELIVERED if recorded else None
    kind = SURVEY_EVENTS.get(job.event_type)
    if kind is None:
        return None
    if session_ledger is None:
        session_ledger = await store.ledger_for_session(job.appliance_id, job.lsid)
    entries = {e.key: e for e in session_ledger if e.key.integration == job.integration}
    if imports_end(integration) and key not in entries:
        return None
    reports = [
        found
        for k, e in entries.items()
        if k.event == job.event_type
        and k.effect.startswith(f"survey:{kind}:")
        and (found := _report_of(e)) is not None
    ]
    if not reports:
        return None
    asked_at, count = max(reports)
    effects = {k.effect for k in entries if k.event == job.event_type}
    if any(survey_effect(kind, i) not in effects for i in range(count)):
        return None
    event = await store.get_event(job.event_id)
    if event is None or asked_at < event.received_at + margin:
        return None
    return ALREADY_DELIVERED
