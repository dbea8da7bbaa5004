"""The serve command's log formats and the fields bound to a task (rsbridge.log_setup)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from rsbridge.log_setup import (
    HumanFormatter,
    JsonFormatter,
    _ContextFilter,
    bind_log_fields,
    log_context,
)


def _record(message: str, *args: object) -> logging.LogRecord:
    record = logging.LogRecord("rsbridge.test", logging.WARNING, __file__, 1, message, args, None)
    _ContextFilter().filter(record)
    return record


def test_fields_are_bound_inside_the_context_only() -> None:
    with log_context(integration="audit", job=12, lsid=None):
        inside = _record("x")
    outside = _record("y")
    assert (
        HumanFormatter()
        .format(inside)
        .endswith("WARNING rsbridge.test: x [integration='audit' job=12]")
    )
    assert HumanFormatter().format(outside).endswith("WARNING rsbridge.test: y")


def test_a_hostile_value_stays_one_json_line() -> None:
    lsid = 'L1"}\n{"level": "ERROR'
    with log_context(lsid=lsid, appliance="default"):
        line = JsonFormatter().format(_record("session %s", lsid))
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["lsid"], entry["appliance"], entry["level"]) == (lsid, "default", "WARNING")
    assert entry["message"] == f"session {lsid}"
    # In the human format the value is quoted: it cannot pass for another field or line.
    with log_context(lsid=lsid):
        human = HumanFormatter().format(_record("m"))
    assert "\n" not in human and "lsid='L1\"}\\n" in human


async def test_a_task_binding_ends_with_the_task() -> None:
    async def job() -> dict[str, object]:
        bind_log_fields(job=7, integration="audit")
        entry: dict[str, object] = json.loads(JsonFormatter().format(_record("in the job")))
        return entry

    inside = await asyncio.create_task(job())
    after = json.loads(JsonFormatter().format(_record("after")))
    assert (inside["job"], inside["integration"]) == (7, "audit")
    assert "job" not in after


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown log fields: ticket"), log_context(ticket="INC1"):
        pass
