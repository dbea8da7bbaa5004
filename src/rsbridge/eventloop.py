"""The event loop the engine runs on: uvloop where it is installed, else asyncio's own.

uvloop (libuv, in C) does the loop's own work (polling, callbacks, socket reads and
writes, timers) for less CPU than asyncio's loop, written in Python: in a webhook
backlog (``benchmarks/pipeline.py``) the engine's process used about 12% less CPU per
session and drained 4 to 8% faster (docs/benchmarks.md, sixth round). It is a fast path
of issue 15: with :mod:`rsbridge.fastpaths` off, and where uvloop does not build
(Windows, PyPy), asyncio's loop runs. ``[engine] event_loop`` chooses too
(``asyncio`` to rule uvloop out).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

from rsbridge import fastpaths
from rsbridge.errors import ConfigurationError

T = TypeVar("T")

EventLoopChoice = Literal["auto", "uvloop", "asyncio"]
"""``[engine] event_loop``: ``auto`` is uvloop if installed, else asyncio's loop."""


def uvloop_installed() -> bool:
    """Whether uvloop can be imported here."""
    return importlib.util.find_spec("uvloop") is not None


def loop_name(choice: EventLoopChoice = "auto") -> Literal["uvloop", "asyncio"]:
    """The loop that ``choice`` means on this machine; ``uvloop`` when it is not installed
    is a :class:`~rsbridge.errors.ConfigurationError`."""
    if choice == "asyncio" or not fastpaths.enabled():
        return "asyncio"
    if uvloop_installed():
        return "uvloop"
    if choice == "uvloop":  # the configuration refuses it; this is for other callers
        raise ConfigurationError("event_loop = 'uvloop' but uvloop is not installed here")
    return "asyncio"


def loop_factory(choice: EventLoopChoice = "auto") -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the event loop ``choice`` means (for :class:`asyncio.Runner`)."""
    if loop_name(choice) == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], choice: EventLoopChoice = "auto") -> T:
    """Run ``main`` to completion on a new event loop of ``choice`` (as :func:`asyncio.run`)."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)
