"""What the tests of the fixing pages share: a console whose jsonl integration can be
broken and mended (its file's directory), sessions ended on the simulated appliance, and
the audit log as it was written."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import Config
from rsbridge.engine.store.base import AuditFilter
from rsbridge.sim.appliance.scenarios import SessionGenerator
from tests.admin.conftest import Console, admin_section, unmasked
from tests.conftest import sign_session
from tests.engine.conftest import SimAppliance, engine_config


def jsonl_integration(name: str, path: Path, **extra: Any) -> dict[str, Any]:
    """A jsonl integration writing to ``path`` (a missing directory makes every
    delivery fail for good: dead letters)."""
    return {
        "name": name,
        "connector": "jsonl",
        "association": {"on_unmatched": "create"},
        "settings": {"path": str(path), "fsync": False},
        **extra,
    }


def fixing_config(
    tmp_path: Path,
    sim: SimAppliance | None,
    integrations: list[dict[str, Any]],
    **engine: Any,
) -> Config:
    """The console's test configuration with these integrations."""
    base = engine_config(tmp_path, sim, integrations=integrations, engine=engine or None)
    data = base.model_dump(mode="python")
    data["admin"] = admin_section()
    return Config.model_validate(unmasked(data))


def ended(
    seed: int, count: int, ago: float, integration: str, step: float = 1.0
) -> list[SupportSession]:
    """``count`` signed sessions (no surveys) for ``integration`` that ended ``ago``
    seconds ago, each next one ``step`` seconds earlier."""
    generator = SessionGenerator(seed)
    made = []
    for i in range(count):
        session = generator.session_from_key("INC0010001", {})
        assert session.start_time is not None and session.end_time is not None
        shift = datetime.now(UTC) - timedelta(seconds=ago + i * step) - session.end_time
        moved = dataclasses.replace(
            session,
            start_time=session.start_time + shift,
            end_time=session.end_time + shift,
            customer_surveys=[],
            rep_surveys=[],
        )
        made.append(sign_session(moved, integration))
    return made


def delivered(path: Path) -> Counter[str]:
    """How many session reports the jsonl file holds per lsid."""
    if not path.exists():
        return Counter()
    lines = [json.loads(line) for line in path.read_text().splitlines() if line]
    return Counter(line["lsid"] for line in lines if line["kind"] == "session_report")


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 30.0) -> None:
    """Wait until ``check`` holds (fails the test after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def watch_audit(caplog: pytest.LogCaptureFixture) -> None:
    """Capture the audit log's lines (written at INFO) from now on."""
    caplog.set_level(logging.INFO, logger="rsbridge.audit")


async def audited(console: Console) -> list[str]:
    """The console's audit log so far, oldest first, each entry as a line
    (``audit: <who> <action> <target> <detail>``), read from the engine's store."""
    entries = await console.engine.store.list_audit(AuditFilter(limit=1000))
    return [
        " ".join(f"audit: {e.actor} {e.action} {e.target} {e.detail}".split())
        for e in reversed(entries)
    ]
