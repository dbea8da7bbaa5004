"""Session reports rendered in other processes (``[engine] render_processes``).

The engine runs in one event-loop thread, and rendering a session's report with Jinja2 is
the largest piece of its CPU work during a backlog. With ``render_processes = N`` a
:class:`RenderPool` renders reports and exit surveys in up to N child processes, so that a
node uses more than one core; the event loop only pickles the session there and the
rendered text back.

- Children are started with ``spawn`` (never ``fork``: the engine has threads, the
  SQLite writer's among them, whose locks a forked child would inherit held). Each builds
  the same :class:`~rsbridge.engine.render.Renderer` per integration once, from a
  :class:`RendererSpec`, in the pool's initializer; the output is the same text as the
  in-process renderer's (tests/engine/test_render_pool.py).
- A :class:`~rsbridge.errors.TemplateError` raised in a child reaches the caller as the
  same error (type, message, template and line survive pickling).
- A child that dies (killed, out of memory) breaks the whole pool: it is replaced by a
  new one and the job is sent again; if that breaks too, the job is rendered in the event
  loop's thread, the old path, so no job is lost to the pool. After
  :data:`MAX_BROKEN_IN_A_ROW` pools broke without one success between them the node
  renders in-process for good (a child that cannot start, say).
- Processes start with the engine's workers (or the first job) and end with
  :meth:`RenderPool.aclose` (the engine's stop); a later job starts them again. They
  ignore SIGINT and SIGTERM, which a terminal or systemd sends to the whole process group:
  the engine stops them after its workers' last renders. A child whose engine died exits.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Literal, TypeVar

from rsbridge.appliance.report_model import ExitSurvey, SupportSession
from rsbridge.connectors.base import RenderedPart, RenderedReport
from rsbridge.engine.render import Renderer

log = logging.getLogger(__name__)

__all__ = ["MAX_BROKEN_IN_A_ROW", "RenderPool", "RendererSpec"]

MAX_BROKEN_IN_A_ROW = 3
"""Pools that may break one after the other, with no job rendered between them, before the
node stops using processes and renders in its event loop's thread."""

_CLOSE_GRACE_SECONDS = 5.0
"""At close, how long children get to finish what they render before they are killed."""

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RendererSpec:
    """What builds an integration's :class:`~rsbridge.engine.render.Renderer`: the same
    in the engine and in a rendering process."""

    override_dir: Path | None = None
    import_events: tuple[str, ...] | None = None
    fast_paths: bool = True

    def build(self) -> Renderer:
        """The renderer these settings describe."""
        return Renderer(
            self.override_dir, import_events=self.import_events, fast_paths=self.fast_paths
        )


# --- in the child -------------------------------------------------------------------------

_renderers: dict[str, Renderer] = {}
"""A rendering process's renderers, by integration name (built by :func:`_start_child`)."""


def _start_child(specs: Mapping[str, RendererSpec]) -> None:
    # The engine ends its children itself, after its workers' last renders: a Ctrl-C (sent
    # to the terminal's whole process group) or systemd's SIGTERM (sent to the whole
    # control group) must not kill them first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        # The job queue's pipe stays open in the child itself, so an engine that dies
        # (SIGKILL, a crash) would leave it waiting for ever: it exits with its engine.
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    _renderers.clear()
    _renderers.update({name: spec.build() for name, spec in specs.items()})


def _exit_with(parent: BaseProcess) -> None:
    multiprocessing.connection.wait([parent.sentinel])
    os._exit(0)


def _render_report(
    integration: str, session: SupportSession, templates: Collection[str] | None
) -> RenderedReport:
    return _renderers[integration].render(session, templates)


def _render_survey(
    integration: str,
    session: SupportSession,
    kind: Literal["customer", "rep"],
    survey: ExitSurvey,
) -> RenderedPart:
    return _renderers[integration].render_survey(session, kind, survey)


def _ready() -> None:
    """A job that only starts a process (and its renderers)."""


# --- in the engine ------------------------------------------------------------------------


class RenderPool:
    """Renders session reports and surveys in ``processes`` child processes.

    Args:
        specs: each integration's renderer settings, by integration name.
        renderers: the engine's own renderers (same settings), for rendering in-process
            when the pool breaks twice for one job.
        processes: how many children at most (>= 1).
    """

    def __init__(
        self,
        specs: Mapping[str, RendererSpec],
        renderers: Mapping[str, Renderer],
        processes: int,
    ) -> None:
        if processes < 1:
            raise ValueError("a render pool needs at least one process")
        self.processes = processes
        self._specs = dict(specs)
        self._renderers = renderers
        self._executor: ProcessPoolExecutor | None = None
        self._broken_in_a_row = 0
        self.in_process = 0
        """Jobs rendered in the event loop's thread because the pool broke (for tests
        and logs)."""

    @property
    def disabled(self) -> bool:
        """Whether pools broke too often and the node renders in-process for good."""
        return self._broken_in_a_row >= MAX_BROKEN_IN_A_ROW

    def start(self) -> None:
        """Start the processes now rather than with the first jobs (idle ones wait)."""
        if self.disabled:
            return
        executor = self._pool()
        for _ in range(self.processes):
            # Each job finding no idle process starts one, up to ``processes``.
            executor.submit(_ready)

    async def render(
        self, integration: str, session: SupportSession, templates: Collection[str] | None
    ) -> RenderedReport:
        """:meth:`Renderer.render <rsbridge.engine.render.Renderer.render>` of
        ``integration``'s renderer, in a child process."""
        return await self._run(
            _render_report,
            (integration, session, templates),
            lambda: self._renderers[integration].render(session, templates),
        )

    async def render_survey(
        self,
        integration: str,
        session: SupportSession,
        kind: Literal["customer", "rep"],
        survey: ExitSurvey,
    ) -> RenderedPart:
        """:meth:`Renderer.render_survey <rsbridge.engine.render.Renderer.render_survey>`
        of ``integration``'s renderer, in a child process."""
        return await self._run(
            _render_survey,
            (integration, session, kind, survey),
            lambda: self._renderers[integration].render_survey(session, kind, survey),
        )

    def pids(self) -> list[int]:
        """Process ids of the running children (for tests)."""
        executor = self._executor
        processes: dict[int, Any] = getattr(executor, "_processes", None) or {}
        return sorted(processes)

    async def aclose(self) -> None:
        """Stop the children (they finish what they render, within a few seconds) and
        wait for them to exit. A later job starts new ones."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await _shut_down(executor)

    # --- internals ----------------------------------------------------------------------

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_child,
                initargs=(self._specs,),
            )
        return self._executor

    async def _run(
        self, function: Callable[..., _T], args: tuple[Any, ...], in_process: Callable[[], _T]
    ) -> _T:
        """``function(*args)`` in a child; on a pool that breaks twice (or for good),
        ``in_process()`` here."""
        for attempt in range(2):
            if self.disabled:
                break
            executor = self._pool()
            try:
                future: Future[_T] = executor.submit(function, *args)
                result: _T = await asyncio.wrap_future(future)
            except BrokenProcessPool:
                self._broken(executor, retry=attempt == 0)
                continue
            except Exception:
                self._broken_in_a_row = 0  # the child answered: the pool works
                raise
            self._broken_in_a_row = 0
            return result
        self.in_process += 1
        return in_process()

    def _broken(self, executor: ProcessPoolExecutor, *, retry: bool) -> None:
        """The pool ``executor`` broke (a child died): every job it held fails with
        BrokenProcessPool; the first to see it replaces the pool."""
        if self._executor is executor:
            self._executor = None
            self._broken_in_a_row += 1
            executor.shutdown(wait=False, cancel_futures=True)
            if self.disabled:
                log.error(
                    "%d render pools broke in a row (a rendering process died each time); "
                    "rendering in the event loop's thread from now on",
                    self._broken_in_a_row,
                )
            else:
                log.warning("a rendering process died; starting new ones")
        if not retry:
            log.warning("the render pool broke twice for one job; rendered it in-process")


async def _shut_down(executor: ProcessPoolExecutor) -> None:
    """Shut ``executor`` down without blocking the event loop; a child still busy after
    the grace is killed (the executor then ends the others and returns)."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    waiting = asyncio.ensure_future(
        asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
    )
    try:
        await asyncio.wait_for(asyncio.shield(waiting), _CLOSE_GRACE_SECONDS)
    except TimeoutError:
        log.warning("a rendering process was still busy at shutdown; killed")
        for process in processes:
            process.kill()
        await waiting
