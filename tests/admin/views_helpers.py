"""What the overview, sessions and session-page tests share: a console whose engine has
delivered real sessions through the pipeline (simulated appliance, intake over HTTP,
workers), into one integration that works (``audit``) and one that cannot (``broken``:
its directory does not exist, so its jobs die)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import Config
from tests.admin.conftest import Console, console_config, serving_console, unmasked
from tests.engine.conftest import SimAppliance, drained, emit, ended_sessions

SVG = "{http://www.w3.org/2000/svg}"
TICKETS = ["INC0010001", "INC0010002", "INC0010003"]


def two_integrations(tmp_path: Path, sim: SimAppliance) -> Config:
    """The console's configuration with ``audit`` (delivers) and ``broken`` (dies)."""
    config = console_config(tmp_path, sim)
    data = config.model_dump(mode="python")
    audit = data["integrations"][0]
    broken = {
        **audit,
        "name": "broken",
        "settings": {**audit["settings"], "path": str(tmp_path / "nowhere" / "x.jsonl")},
    }
    data["integrations"] = [audit, broken]
    return Config.model_validate(unmasked(data))


@dataclass
class Delivered:
    """The console, and the sessions its engine has processed."""

    console: Console
    sessions: list[SupportSession]


@asynccontextmanager
async def delivered(
    tmp_path: Path, sim: SimAppliance, sessions: list[SupportSession] | None = None
) -> AsyncIterator[Delivered]:
    """A console after ``sessions`` (default: three, signed for ``audit``) were emitted
    by the appliance and the workers were done with them."""
    if sessions is None:
        sessions = ended_sessions(TICKETS, 3, seed=41, integration="audit", surveys=False)
    for session in sessions:
        sim.state.add_report(session)
    async with serving_console(two_integrations(tmp_path, sim)) as console:
        await emit(console.url, sessions)
        await drained(console.engine)
        yield Delivered(console, sessions)


_SVG_RE = re.compile(r"<svg\b.*?</svg>", re.DOTALL)


def charts_of(page: str) -> dict[str, ET.Element]:
    """The page's SVG charts by title."""
    charts = {}
    for markup in _SVG_RE.findall(page):
        root = ET.fromstring(markup)  # noqa: S314 - the console's own output
        title = root.find(f"{SVG}title")
        assert title is not None and title.text
        charts[title.text] = root
    return charts


def desc_of(chart: ET.Element) -> str:
    """A chart's ``<desc>`` text."""
    desc = chart.find(f"{SVG}desc")
    assert desc is not None
    return desc.text or ""


_ROW = re.compile(r"<tr>(.*?)</tr>", re.DOTALL)
_CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def table_rows(page: str) -> list[list[str]]:
    """The text of each body row's cells (tags stripped), in page order."""
    rows = []
    for row in _ROW.findall(page):
        cells = [_TAG.sub("", c).strip() for c in _CELL.findall(row)]
        if cells:
            rows.append(cells)
    return rows
