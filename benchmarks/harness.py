"""What every benchmark script shares: peers in child processes, this process's CPU and
memory, percentiles, and the printed comparison of rsbridge against a baseline measured
in the same invocation.

A benchmark for a new system (``benchmarks/<system>.py``) imports what it needs from here
and keeps only what is its own: its peers, its baseline and its figures. See
docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

# --- peers in a child process ------------------------------------------------------------


class ChildPeer:
    """A peer served by a child process of the benchmark script itself.

    The benchmarks run their simulated peers in a child process so that the peers do not
    share a core with the code under test. The child is the same script started with an
    option that makes it serve; it calls :func:`announce` (one JSON line: its URLs,
    credentials) when ready and serves until terminated.

    ``with ChildPeer([script, "--serve-x", ...], "x") as peer:`` then ``peer.info``; if
    the info has a ``control`` URL, :meth:`control` and :meth:`call` query it.
    """

    def __init__(self, args: list[str], what: str) -> None:
        self._argv = [sys.executable, *args]
        self._what = what
        self._child: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> Self:
        self._child = subprocess.Popen(  # noqa: S603 (the benchmark script, as a child)
            self._argv, stdout=subprocess.PIPE, text=True
        )
        assert self._child.stdout is not None
        line = self._child.stdout.readline()
        if not line:
            self._child.wait()
            raise SystemExit(f"the {self._what} process did not start")
        self.info = json.loads(line)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._child is not None:
            self._child.terminate()
            self._child.wait()

    @property
    def pid(self) -> int:
        """The child's process id (while it runs)."""
        assert self._child is not None, "not started"
        return self._child.pid

    def results(self) -> dict[str, Any]:
        """What the peer received and holds (its ``serve_peer`` results)."""
        result: dict[str, Any] = self.control("/results")
        return result

    def control(self, path: str) -> Any:
        """GET a route of the child's control app (blocking); its JSON answer."""
        import httpx  # here: the parse benchmark's children measure their own memory

        response = httpx.get(f"{self.info['control']}{path}", timeout=120)
        response.raise_for_status()
        return response.json()

    async def call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """GET (or POST ``body`` to) a route of the child's control app; its JSON answer."""
        import httpx

        async with httpx.AsyncClient(base_url=self.info["control"], timeout=120) as http:
            if body is None:
                response = await http.get(path)
            else:
                response = await http.post(path, json=body)
        response.raise_for_status()
        return response.json()


async def announce(info: dict[str, Any]) -> None:
    """In the child: tell the parent where it serves, then serve until terminated."""
    print(json.dumps(info), flush=True)
    await asyncio.Event().wait()


async def serve_peer(
    app: Any, results: Callable[[float], dict[str, Any]], info: dict[str, Any]
) -> None:
    """In the child: serve the simulated peer ``app`` and a control app whose
    ``GET /results`` answers ``results(cpu)`` (``cpu``: the child's CPU seconds since it
    started serving); announce both URLs with ``info``, then serve until terminated."""
    # Imported here: the parse benchmark's children measure their own memory.
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from rsbridge.web.serve import serving

    cpu_start = cpu_seconds()

    async def answer(request: Request) -> Response:
        return JSONResponse(results(cpu_seconds() - cpu_start))

    control = Starlette(routes=[Route("/results", answer)])
    async with serving(app) as url, serving(control) as control_url:
        await announce({"url": url, "control": control_url, **info})


# --- this process ------------------------------------------------------------------------


def cpu_seconds() -> float:
    """CPU time of this process so far, every thread."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (a high-water mark)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class Stopwatch:
    """Wall and CPU seconds of a ``with`` block (``seconds``, ``cpu_seconds`` after it)."""

    def __enter__(self) -> Self:
        self._wall, self._cpu = time.perf_counter(), cpu_seconds()
        self.seconds = self.cpu_seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = cpu_seconds() - self._cpu


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the printed comparison ----------------------------------------------------------------


class Comparison:
    """The table every benchmark prints: baseline, rsbridge, ratio (rsbridge / baseline).

    ``label_width``: the width of the first column.
    """

    def __init__(self, label_width: int = 32) -> None:
        self.label_width = label_width

    def header(self) -> str:
        """The column titles."""
        return f"{'':{self.label_width}}{'baseline':>12}{'rsbridge':>12}{'ratio':>9}"

    def row(self, label: str, base: float | None, ours: float, fmt: str = "12.1f") -> str:
        """One figure: ``base`` None (no baseline figure) prints ``-`` and no ratio."""
        base_text = "-" if base is None else format(base, fmt)
        ratio = "" if base is None or base == 0 else f"{ours / base:8.2f}x"
        return (
            f"{label:{self.label_width}}{base_text:>12}{format(ours, fmt):>12}{ratio:>9}".rstrip()
        )


def verdict(met: bool) -> str:
    """How a target line says whether rsbridge met it."""
    return "met" if met else "NOT met"


def cross_check(
    counts: Sequence[tuple[str, int, int]], *, content: str, same_content: bool
) -> bool:
    """Print whether the baseline and rsbridge wrote the same data: each ``(what, baseline,
    rsbridge)`` count, then ``content`` (compared by digest); whether all agree."""
    same = True
    for what, base, ours in counts:
        same &= base == ours
        outcome = "same" if base == ours else "DIFFERENT"
        print(f"cross-check: {what}: baseline {base}, rsbridge {ours} -> {outcome}")
    print(f"cross-check: {content} -> {'same' if same_content else 'DIFFERENT'}")
    if not (same and same_content):
        print("  warning: the two sides did not write the same data")
    return same and same_content


# --- one importer's figures --------------------------------------------------------------


@dataclass
class Side:
    """One importer's figures in a run; ``peer`` is what the simulated peer reported
    (its ``calls`` at least). A benchmark subclasses it for figures of its own."""

    sessions: int
    seconds: float
    cpu_seconds: float
    client_calls: int
    peer: dict[str, Any]

    @property
    def calls(self) -> int:
        """Requests the peer answered."""
        return int(self.peer["calls"])

    @property
    def calls_per_session(self) -> float:
        return self.calls / self.sessions

    @property
    def rate(self) -> float:
        """Sessions per second."""
        return self.sessions / self.seconds

    @property
    def cpu_ms_per_session(self) -> float:
        return self.cpu_seconds * 1000 / self.sessions
