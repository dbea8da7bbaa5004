"""Faults the simulated appliance's Reporting API can inject, for tests and demos.

Set them on ``state.report_faults`` (under ``state.lock``) while the server runs. Outside
the damage asked for, answers stay byte for byte what the simulator answers normally.

* ``trickle_seconds``: every Reporting API answer is sent one byte at a time, with this
  pause before each byte; the headers go out at once, as a slow appliance's would.
* ``damaged``: lsid -> how that session's ``<session>`` is damaged in SupportSession
  answers: ``"value"`` (``file_transfer_count`` is ``12abc``: well-formed XML, a value no
  reader can use), ``"markup"`` (a stray ``<<`` in the same element: the XML is broken),
  or ``"elements"`` (``ELEMENTS_BLOAT`` empty elements inside it, more than a reader
  should hold for one session).
* ``unrequested``: SupportSession answers hold every session the appliance has,
  whatever ``lsid`` / ``lsids`` asked for.
* ``listing_limit``: SupportSessionListing answers hold at most this many sessions (those
  that ended first). The reference documents no such cap; a poller must still lose no
  session to an appliance that has one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

Damage = Literal["value", "markup", "elements"]

ELEMENTS_BLOAT = 300_000
"""Empty elements an ``"elements"`` damage puts into one session."""

_COUNT = b"<file_transfer_count>"


@dataclass
class ReportFaults:
    """What the Reporting API does wrong (nothing by default)."""

    trickle_seconds: float = 0.0
    damaged: dict[str, Damage] = field(default_factory=dict)
    unrequested: bool = False
    listing_limit: int | None = None


def damage_sessions(chunks: Iterable[bytes], damaged: dict[str, Damage]) -> Iterator[bytes]:
    """SupportSession answer ``chunks`` (one ``<session>`` per chunk) with ``damaged`` applied."""
    for chunk in chunks:
        how = next((d for lsid, d in damaged.items() if f'lsid="{lsid}"'.encode() in chunk), None)
        if how == "value":
            start = chunk.index(_COUNT) + len(_COUNT)
            chunk = chunk[:start] + b"12abc" + chunk[chunk.index(b"<", start) :]
        elif how == "markup":
            chunk = chunk.replace(_COUNT, _COUNT + b"<<", 1)
        elif how == "elements":
            chunk = chunk.replace(_COUNT, b"<padding/>" * ELEMENTS_BLOAT + _COUNT, 1)
        yield chunk


async def trickle(chunks: Iterable[bytes], pause: float) -> AsyncIterator[bytes]:
    """``chunks`` one byte at a time, ``pause`` seconds before each."""
    for chunk in chunks:
        for i in range(len(chunk)):
            await asyncio.sleep(pause)
            yield chunk[i : i + 1]
