"""effects_done: a job is done without its report only when every effect it would write
is in the ledger (several integrations, surveys, a survey that came first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rsbridge.appliance.events import CUSTOMER_SURVEY, END, MEMBER_ADDED, REP_SURVEY
from rsbridge.config import Config
from rsbridge.engine.ledger_check import (
    REPORT_EFFECT,
    effects_done,
    survey_detail,
    survey_effect,
)
from rsbridge.engine.store.base import IncomingEvent, Job, JobSpec, LedgerEntry, LedgerKey
from rsbridge.engine.store.memory import MemoryStore

from .conftest import engine_config

LSID = "a" * 32
RECEIVED = 1000.0


def _config(tmp_path: Path, **integration: Any) -> Config:
    return engine_config(
        tmp_path,
        None,
        integrations=[
            {
                "name": "one",
                "connector": "jsonl",
                "settings": {"path": str(tmp_path / "d.jsonl")},
                **integration,
            }
        ],
    )


async def _job(store: MemoryStore, event: str) -> Job:
    recorded = await store.record_event(
        IncomingEvent("default", event, "outbound", f"{event}-{LSID}", LSID),
        [JobSpec("one")],
        now=RECEIVED,
    )
    job = await store.get_job(recorded.job_ids[0])
    assert job is not None
    return job


async def _put(store: MemoryStore, event: str, effect: str, detail: dict[str, str]) -> None:
    key = LedgerKey("default", LSID, event, "one", effect)
    await store.ledger_put(LedgerEntry(key, "T1", "r", RECEIVED + 5, detail))


async def test_a_session_end_is_done_when_its_report_is_recorded(tmp_path: Path) -> None:
    config, store = _config(tmp_path), MemoryStore()
    job = await _job(store, END)
    assert await effects_done(store, config.integration("one"), job) is None
    # Another integration's record does not count.
    other = LedgerKey("default", LSID, END, "two", REPORT_EFFECT)
    await store.ledger_put(LedgerEntry(other, "T1", "r", RECEIVED + 5))
    assert await effects_done(store, config.integration("one"), job) is None
    await _put(store, END, REPORT_EFFECT, {})
    assert await effects_done(store, config.integration("one"), job) == "already delivered"


@pytest.mark.parametrize(
    ("recorded", "done"),
    [
        # (effects written: index -> (surveys in report, asked at)), with the session report
        ({0: (2, RECEIVED + 1), 1: (2, RECEIVED + 1)}, True),
        ({0: (2, RECEIVED + 1)}, False),  # the second survey is missing
        ({0: (1, RECEIVED - 1)}, False),  # that report was asked for before the event came
        ({0: (1, RECEIVED - 1), 1: (2, RECEIVED + 1)}, True),  # a later report: both there
        ({}, False),
    ],
)
async def test_a_survey_is_done_when_every_survey_of_a_late_enough_report_is(
    tmp_path: Path, recorded: dict[int, tuple[int, float]], done: bool
) -> None:
    config, store = _config(tmp_path), MemoryStore()
    job = await _job(store, CUSTOMER_SURVEY)
    await _put(store, END, REPORT_EFFECT, {})
    for index, (count, asked_at) in recorded.items():
        await _put(
            store,
            CUSTOMER_SURVEY,
            survey_effect("customer", index),
            {"status": "201", **survey_detail(count, asked_at)},
        )
    # Rep surveys do not stand in for customer surveys.
    await _put(store, REP_SURVEY, survey_effect("rep", 0), survey_detail(1, RECEIVED + 1))
    note = await effects_done(store, config.integration("one"), job)
    assert (note == "already delivered") is done


async def test_a_survey_without_the_session_import_is_not_done(tmp_path: Path) -> None:
    store = MemoryStore()
    job = await _job(store, REP_SURVEY)
    await _put(store, REP_SURVEY, survey_effect("rep", 0), survey_detail(1, RECEIVED + 1))
    # The integration imports session ends: the survey would bring the import along.
    assert await effects_done(store, _config(tmp_path).integration("one"), job) is None
    # One that takes surveys only has nothing more to do.
    surveys_only = _config(tmp_path, outbound_events=[REP_SURVEY]).integration("one")
    assert await effects_done(store, surveys_only, job) == "already delivered"


async def test_survey_records_without_report_details_are_not_taken_as_done(
    tmp_path: Path,
) -> None:
    config, store = _config(tmp_path), MemoryStore()
    job = await _job(store, CUSTOMER_SURVEY)
    await _put(store, END, REPORT_EFFECT, {})
    await _put(store, CUSTOMER_SURVEY, survey_effect("customer", 0), {"status": "201"})
    assert await effects_done(store, config.integration("one"), job) is None


async def test_joins_and_unknown_integrations(tmp_path: Path) -> None:
    store = MemoryStore()
    job = await _job(store, MEMBER_ADDED)
    off = _config(tmp_path).integration("one")
    on = _config(tmp_path, association={"create_on_join": True}).integration("one")
    assert await effects_done(store, off, job) == "auto-create on join is off"
    assert await effects_done(store, on, job) is None
    assert await effects_done(store, None, job) is None
    disabled = _config(tmp_path, disabled=True).integration("one")
    assert await effects_done(store, disabled, await _job(store, END)) is None


async def test_a_survey_report_asked_for_within_the_margin_does_not_count(tmp_path: Path) -> None:
    # Received and asked-at may be stamped by two nodes' clocks: a report asked for just
    # after the event (by the clocks) may in truth predate it.
    config, store = _config(tmp_path), MemoryStore()
    job = await _job(store, CUSTOMER_SURVEY)
    await _put(store, END, REPORT_EFFECT, {})
    detail = {"status": "201", **survey_detail(1, RECEIVED + 0.5)}
    await _put(store, CUSTOMER_SURVEY, survey_effect("customer", 0), detail)
    integration = config.integration("one")
    assert await effects_done(store, integration, job, margin=1.0) is None
    assert await effects_done(store, integration, job, margin=0.25) == "already delivered"
