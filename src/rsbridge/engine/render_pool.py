"""Session reports rendered in child processes (``[engine] render_processes``).

The engine runs in one event-loop thread, and rendering a report with Jinja2 is the
largest piece of its CPU work during a backlog. A :class:`RenderPool` renders reports and
exit surveys in up to N child processes instead, so that the loop only pickles a session
there and the rendered text back.

- Children are started with ``spawn`` (never ``fork``: the engine has threads whose locks
  a forked child would inherit held). Each builds one
  :class:`~rsbridge.engine.render.Renderer` per integration from a :class:`RendererSpec`,
  once, then answers requests over a ``socket.socketpair()``: frames of a 4-byte
  big-endian length and a pickle, answered in the order they were sent. The parent reads
  and writes its end on the event loop, never blocking it, and gives a child up to
  :data:`PIPELINE_DEPTH` requests at once: the next ones wait in the socket while the
  child renders, so that the child never waits for a busy event loop between requests.
  The request whose turn it is to read takes every whole answer the socket holds then,
  for the requests behind it: one answer per turn of a busy loop left the child blocked
  on sending the others.
- A :class:`~rsbridge.errors.TemplateError` (or ``ValueError``) raised in a child reaches
  the caller as the same error: what the worker does with it does not change.
- A child that does not answer within the deadline, dies, closes its socket or sends a
  frame that is not an answer is broken: it is SIGKILLed, reaped in the background and
  replaced, and the request is sent once more to another child; if that breaks too, it is
  rendered in-process. The other request it held is sent again too, without counting the
  child as broken twice. No request is lost. After :data:`MAX_BROKEN_IN_A_ROW` broken
  children without an answer between them, the pool renders in-process for good.
- Children ignore SIGINT and SIGTERM (a terminal or systemd signals the whole group; the
  engine ends its children after its workers' last renders), exit on end-of-file (their
  engine died), and any left when the interpreter exits are killed.

Sessions are attacker-controlled data: they are only pickled and rendered, and nothing of
them is logged here (logs name the child's pid and what went wrong).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.util
import pickle
import signal
import socket
import struct
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from rsbridge.appliance.report_model import ExitSurvey, SupportSession
from rsbridge.connectors.base import RenderedPart, RenderedReport
from rsbridge.engine.render import Renderer

log = logging.getLogger(__name__)

__all__ = [
    "DEADLINE_SECONDS",
    "MAX_BROKEN_IN_A_ROW",
    "MAX_FRAME_BYTES",
    "PIPELINE_DEPTH",
    "RenderPool",
    "RendererSpec",
]

DEADLINE_SECONDS = 30.0
"""How long a child may take to answer one request before it is killed."""

START_SECONDS = 60.0
"""How long a new child may take to import rsbridge and build its renderers."""

MAX_BROKEN_IN_A_ROW = 3
"""Children that may break one after the other, with no answer between them, before the
pool stops using children and renders in-process."""

PIPELINE_DEPTH = 16
"""Requests a child holds at once: one it renders, the others waiting in its socket. With
one request at a time a child sat idle between them while the event loop, busy with other
work, got round to reading its answer and sending the next (about half the time, in a
backlog with one child). With 4, and 32 workers, the child still waited for requests 38%
of the time while 12 to 16 requests (on average) waited for room in it
(docs/benchmarks.md, sixth round)."""

MAX_FRAME_BYTES = 256 * 1024 * 1024
"""The largest frame either side accepts; a larger length is a broken peer."""

CLOSE_GRACE_SECONDS = 5.0
"""At close, how long children get to exit by themselves before they are killed."""

_REAP_SECONDS = 10.0
"""How long a killed child is waited for (in the background) before it is left alone."""

_HEADER = struct.Struct(">I")
_READ_BYTES = 256 * 1024
"""The most the engine reads from a child's socket at once."""
_READY = "ready"
_T = TypeVar("_T")
Operation = Literal["report", "survey"]


@dataclass(frozen=True, slots=True)
class RendererSpec:
    """What builds an integration's :class:`~rsbridge.engine.render.Renderer`: the same
    settings in the engine and in its children (picklable)."""

    override_dir: Path | None = None
    import_events: tuple[str, ...] | None = None
    fast_paths: bool = True

    def build(self) -> Renderer:
        """The renderer these settings describe.

        Raises:
            TemplateError: ``override_dir`` is not a directory.
        """
        return Renderer(
            self.override_dir, import_events=self.import_events, fast_paths=self.fast_paths
        )


class _BrokenChildError(Exception):
    """The child did not answer as it should (for the pool's logs: no session data)."""


# --- in the child -------------------------------------------------------------------------


def _recv_exactly_blocking(sock: socket.socket, size: int) -> bytes | None:
    """``size`` bytes from ``sock``; None at end-of-file."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            return None
        got += n
    return bytes(buffer)


def _send_blocking(sock: socket.socket, message: object) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_HEADER.pack(len(body)) + body)


def _answer(renderers: Mapping[str, Renderer], request: tuple[Any, ...]) -> tuple[Any, ...]:
    """The answer frame to one request frame: (id, True, result) or (id, False, error)."""
    request_id, integration, operation, session, argument = request
    try:
        renderer = renderers[integration]
        if operation == "report":
            templates, session_json = argument
            result: object = renderer.render(session, templates, session_json=session_json)
        else:
            kind, survey = argument
            result = renderer.render_survey(session, kind, survey)
    except Exception as exc:  # the caller gets it, as if rendered in its own process
        return (request_id, False, _portable(exc))
    return (request_id, True, result)


def _child_main(sock: socket.socket, specs: Mapping[str, RendererSpec]) -> None:
    """A child's life: build the renderers, say ready, answer until end-of-file."""
    # The engine ends its children itself, after its workers' last renders: Ctrl-C (sent to
    # the terminal's process group) or systemd's SIGTERM (its control group) must not.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock.setblocking(True)
    # The engine gone (killed, or it killed this child's request) is the end, not an error.
    with contextlib.suppress(OSError):
        _serve(sock, specs)


def _serve(sock: socket.socket, specs: Mapping[str, RendererSpec]) -> None:
    try:
        renderers = {name: spec.build() for name, spec in specs.items()}
    except Exception as exc:
        _send_blocking(sock, (_READY, False, _portable(exc)))
        return
    _send_blocking(sock, (_READY, True, None))
    while True:
        header = _recv_exactly_blocking(sock, _HEADER.size)
        if header is None:
            return  # the engine closed its end or died
        (size,) = _HEADER.unpack(header)
        if size > MAX_FRAME_BYTES:
            return
        body = _recv_exactly_blocking(sock, size)
        if body is None:
            return
        answer = _answer(renderers, pickle.loads(body))  # noqa: S301 (our own parent's frame)
        try:
            _send_blocking(sock, answer)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
            # A result that does not pickle (never seen: reports are strings).
            _send_blocking(sock, (answer[0], False, RuntimeError("unpicklable render result")))


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling both ways (TemplateError and ValueError do), else a
    plain error naming its type only (its message might carry anything)."""
    try:
        pickle.loads(pickle.dumps(exc))  # noqa: S301 (what we just pickled)
    except Exception:  # any failure to pickle
        return RuntimeError(f"{type(exc).__name__} in a render process")
    return exc


# --- in the engine ------------------------------------------------------------------------


class _Child:
    """One child process and the engine's end of its socket."""

    def __init__(self, process: BaseProcess, sock: socket.socket) -> None:
        self.process = process
        self.sock = sock
        self.pid: int = process.pid or 0
        self.ready = False
        self.users = 0
        """Requests that hold this child (at most :data:`PIPELINE_DEPTH`)."""
        self.retired = False
        """Killed (or being replaced): its requests fail over without counting it again."""
        self._starting = asyncio.Lock()
        self._sending = asyncio.Lock()
        self._sent = 0
        self._read = 0
        """Answer frames taken from the socket so far (the next one's number)."""
        self._ahead: dict[int, tuple[Any, ...]] = {}
        """Answers read with an earlier one, by request number, for their requests."""
        self._inbox = bytearray()
        """Bytes read from the socket that are not yet a whole frame."""
        self._eof = False
        self._turn = asyncio.Event()
        """Set (and replaced) each time answers have been read: the next reader's turn."""

    async def ensure_ready(self) -> None:
        """Read the child's ready frame, once, whichever request asks first (the others
        wait for it).

        Raises:
            _BrokenChildError: no ready frame, or its renderers failed to build.
        """
        async with self._starting:
            if self.ready or self.retired:
                return
            message = await self.receive()
            if message[0] != _READY:
                raise _BrokenChildError("no ready frame")
            if message[1] is not True:
                raise _BrokenChildError("its renderers failed to build")
            self.ready = True

    async def request(self, frame: bytes, deadline: float) -> tuple[Any, ...]:
        """Send one request frame and receive its answer frame, in the order of sending:
        other requests may be in the socket before and after this one.

        ``deadline`` bounds the send (a stopped child fills the socket's buffer) and, once
        the answers before this one are read, the wait for this one; the wait for those
        is bounded by their own requests' deadlines.

        Raises:
            _BrokenChildError: the child is retired, or its socket failed or closed.
            TimeoutError: past the deadline.
        """
        async with self._sending:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for wraps the coroutine in
            # a task of its own, two or three a render, and a send that needs no wait
            # then still took a turn of the event loop.
            async with asyncio.timeout(deadline):
                await self.send(frame)
            number = self._sent
            self._sent += 1
        while not self.retired and number not in self._ahead and self._read != number:
            await self._turn.wait()
        if self.retired:
            raise _BrokenChildError("retired while waiting for its turn")
        if number in self._ahead:
            return self._ahead.pop(number)
        # On failure the socket is out of step and the next reader's turn never comes:
        # the caller retires this child, which wakes the readers to give up.
        async with asyncio.timeout(deadline):
            answer = await self.receive()
        self._read += 1
        # The answers the child wrote meanwhile go to their requests now, in this turn:
        # one answer per turn of a busy event loop left the child waiting to send them.
        for later in self._whole_frames():
            self._ahead[self._read] = later
            self._read += 1
        self._wake()
        return answer

    def _wake(self) -> None:
        turn, self._turn = self._turn, asyncio.Event()
        turn.set()

    async def receive(self) -> tuple[Any, ...]:
        """The next frame from the child, as a 3-tuple.

        Raises:
            _BrokenChildError: end-of-file, a frame too large, not a pickle or not a 3-tuple.
        """
        loop = asyncio.get_running_loop()
        while (message := self._frame()) is None:
            if self._eof:
                raise _BrokenChildError("its socket closed")
            try:
                self._take_in(await loop.sock_recv(self.sock, _READ_BYTES))
            except OSError as exc:
                raise _BrokenChildError("its socket failed") from exc
        return message

    def _take_in(self, got: bytes) -> None:
        """Add what a read gave to the inbox (nothing: the child closed its end)."""
        self._inbox += got
        self._eof = not got

    def _whole_frames(self) -> list[tuple[Any, ...]]:
        """The whole frames the socket holds now, without waiting; a broken one is left for
        the next :meth:`receive` to report."""
        frames: list[tuple[Any, ...]] = []
        try:
            while not self._eof:
                self._take_in(self.sock.recv(_READ_BYTES))
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return frames  # the next receive meets the same failure
        try:
            while (message := self._frame()) is not None:
                frames.append(message)
        except _BrokenChildError:
            pass  # kept in the inbox: the next receive raises it
        return frames

    def _frame(self) -> tuple[Any, ...] | None:
        """The first whole frame in the inbox, taken out of it; None if there is none yet.

        Raises:
            _BrokenChildError: a frame too large, not a pickle or not a 3-tuple (left in the
                inbox, so that asking again raises again).
        """
        inbox = self._inbox
        if len(inbox) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(inbox)
        if size > MAX_FRAME_BYTES:
            raise _BrokenChildError(f"a frame of {size} bytes")
        end = _HEADER.size + size
        if len(inbox) < end:
            return None
        try:
            with memoryview(inbox) as view:  # released before the inbox shrinks below
                message = pickle.loads(view[_HEADER.size : end])  # noqa: S301 (our child's)
        except Exception as exc:
            raise _BrokenChildError("a frame that does not unpickle") from exc
        if not isinstance(message, tuple) or len(message) != 3:
            raise _BrokenChildError("a frame that is not an answer")
        del inbox[:end]
        return message

    async def send(self, frame: bytes) -> None:
        """Send one frame (header included)."""
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_sendall(self.sock, frame)
        except OSError as exc:
            raise _BrokenChildError("its socket closed") from exc

    def kill(self) -> None:
        """SIGKILL the child and close the socket (reaping is separate); never while a
        request reads or writes the socket."""
        self.kill_process()
        self.sock.close()

    def retire(self) -> None:
        """SIGKILL the child; its socket closes when no request uses it any more (a request
        reading it meanwhile sees end-of-file). Requests waiting for their turn give up."""
        self.retired = True
        if self.users:
            self.kill_process()
            self._wake()
        else:
            self.kill()

    def kill_process(self) -> None:
        """SIGKILL the child (reaping is separate)."""
        with contextlib.suppress(OSError, ValueError):
            self.process.kill()


def _kill_all(children: dict[int, _Child]) -> None:
    """Kill every child left (the pool was dropped, or the interpreter exits)."""
    for child in list(children.values()):
        child.kill()
    children.clear()


class RenderPool:
    """Renders session reports and exit surveys in up to ``processes`` child processes.

    Args:
        specs: each integration's renderer settings, by integration name.
        renderers: the engine's own renderers (same settings): the fallback when children
            break.
        processes: how many children at most (>= 1).
        deadline: how long a child may take to answer one request before it is killed.

    Use it from one event loop; :meth:`aclose` when done (children start again on the
    next request).
    """

    def __init__(
        self,
        specs: Mapping[str, RendererSpec],
        renderers: Mapping[str, Renderer],
        processes: int,
        *,
        deadline: float = DEADLINE_SECONDS,
    ) -> None:
        if processes < 1:
            raise ValueError("a render pool needs at least one process")
        self.processes = processes
        self.deadline = deadline
        self._specs = dict(specs)
        self._renderers = renderers
        self._context = multiprocessing.get_context("spawn")
        self._children: dict[int, _Child] = {}
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._closing = False
        self._slots: asyncio.Semaphore | None = None
        self._reapers: set[asyncio.Task[None]] = set()
        self._next_id = 0
        self._target: Callable[[socket.socket, Mapping[str, RendererSpec]], None] = _child_main
        """What a child runs (tests put a misbehaving one here)."""
        self._broken_in_a_row = 0
        self._warned = False
        self.in_process = 0
        """Requests rendered in-process because children broke (for tests and logs)."""
        self.broken = 0
        """Children found broken so far."""
        # Children left when the interpreter exits (or this pool is dropped) are killed;
        # before multiprocessing's own exit handler, which would wait for them.
        multiprocessing.util.Finalize(self, _kill_all, args=(self._children,), exitpriority=10)

    @property
    def disabled(self) -> bool:
        """Whether children broke too often and the pool renders in-process for good."""
        return self._broken_in_a_row >= MAX_BROKEN_IN_A_ROW

    def pids(self) -> list[int]:
        """Process ids of the running children."""
        return sorted(self._children)

    def start(self) -> None:
        """Start the children now rather than with the first requests."""
        while not self.disabled and len(self._children) < self.processes:
            try:
                self._idle.append(self._spawn())
            except Exception as exc:  # out of processes or descriptors: requests try again
                log.warning("a render process failed to start (%s)", type(exc).__name__)
                return

    async def render(
        self,
        integration: str,
        session: SupportSession,
        templates: Collection[str] | None,
        *,
        session_json: bool = False,
    ) -> RenderedReport:
        """:meth:`Renderer.render <rsbridge.engine.render.Renderer.render>` of
        ``integration``'s renderer, in a child process.

        Raises:
            TemplateError: as the renderer raises it.
            ValueError: as the renderer raises it.
        """
        wanted = None if templates is None else frozenset(templates)
        return await self._run(
            integration,
            "report",
            session,
            (wanted, session_json),
            lambda: self._renderers[integration].render(
                session, templates, session_json=session_json
            ),
        )

    async def render_survey(
        self,
        integration: str,
        session: SupportSession,
        kind: Literal["customer", "rep"],
        survey: ExitSurvey,
    ) -> RenderedPart:
        """:meth:`Renderer.render_survey <rsbridge.engine.render.Renderer.render_survey>`
        of ``integration``'s renderer, in a child process.

        Raises:
            TemplateError: as the renderer raises it.
            ValueError: as the renderer raises it.
        """
        return await self._run(
            integration,
            "survey",
            session,
            (kind, survey),
            lambda: self._renderers[integration].render_survey(session, kind, survey),
        )

    async def aclose(self) -> None:
        """End the children and reap them: idle ones get end-of-file and exit by
        themselves; requests in flight get :data:`CLOSE_GRACE_SECONDS` to be answered,
        then their children are killed and the requests rendered in-process. Requests
        made meanwhile are rendered in-process; later ones start new children."""
        self._closing = True
        try:
            children = list(self._children.values())
            idle, self._idle = self._idle, []
            for child in idle:
                child.sock.close()  # end-of-file: the child's loop ends
            loop = asyncio.get_running_loop()
            end = loop.time() + CLOSE_GRACE_SECONDS
            await _wait_until(lambda: not self._busy and _exited(children), end)
            late = [c for c in children if _exitcode(c.process) is None]
            if late:
                log.warning("%d render process(es) still busy at close; killed", len(late))
                for child in late:
                    # Not its socket, which a request may be reading: that request sees
                    # end-of-file and is rendered here.
                    child.kill_process()
            await _wait_until(lambda: not self._busy, loop.time() + _REAP_SECONDS)
            await _wait_until(lambda: _exited(children), loop.time() + _REAP_SECONDS)
            for child in children:
                child.sock.close()
                self._children.pop(child.pid, None)
                _close_process(child.process)
            if self._reapers:
                await asyncio.gather(*self._reapers, return_exceptions=True)
        finally:
            self._closing = False

    # --- internals ----------------------------------------------------------------------

    def _spawn(self) -> _Child:
        ours, theirs = socket.socketpair()
        try:
            process = self._context.Process(
                target=self._target, args=(theirs, self._specs), name="rsbridge-render", daemon=True
            )
            process.start()
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # the child has its own copy; end-of-file needs ours gone
        ours.setblocking(False)
        child = _Child(process, ours)
        self._children[child.pid] = child
        return child

    async def _run(
        self,
        integration: str,
        operation: Operation,
        session: SupportSession,
        argument: object,
        in_process: Callable[[], _T],
    ) -> _T:
        """Send the request to a child, once more to another if one breaks, else render it
        ``in_process()``."""
        if integration not in self._renderers:
            return in_process()  # raises as the renderer lookup would
        for _attempt in range(2):
            if self.disabled:
                break
            self._next_id += 1
            request = (self._next_id, integration, operation, session, argument)
            try:
                body = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # then no child can have it
                break
            if len(body) > MAX_FRAME_BYTES:
                break
            frame = _HEADER.pack(len(body)) + body
            answered, value = await self._ask(self._next_id, frame)
            if answered:
                return cast(_T, value)
            if isinstance(value, BaseException):
                raise value  # the renderer's own error, from the child
        self.in_process += 1
        return in_process()

    async def _ask(self, request_id: int, frame: bytes) -> tuple[bool, object]:
        """(True, result), (False, the renderer's error) or (False, None): broken, or the
        pool is closing or disabled."""
        if self._slots is None:
            # One for the pool's life: at most PIPELINE_DEPTH requests per child at once.
            self._slots = asyncio.Semaphore(self.processes * PIPELINE_DEPTH)
        async with self._slots:
            if self.disabled or self._closing:
                return False, None
            child = self._pick()
            if child is None:
                try:
                    child = self._spawn()
                except Exception as exc:  # out of processes or descriptors: as if broken
                    self.broken += 1
                    self._broken_in_a_row += 1
                    log.warning("a render process failed to start (%s)", type(exc).__name__)
                    self._warn_disabled()
                    return False, None
            self._enter(child)
            try:
                if not child.ready:
                    async with asyncio.timeout(START_SECONDS):
                        await child.ensure_ready()
                if child.retired:
                    return False, None  # it broke on another request's watch
                answer = await child.request(frame, self.deadline)
                if answer[0] != request_id or not isinstance(answer[1], bool):
                    raise _BrokenChildError("an answer to another request")
            except (_BrokenChildError, TimeoutError) as exc:
                if self._closing:
                    self._retire(child)  # killed by aclose: not the child's fault
                elif not child.retired:
                    self._broken(child, str(exc) or "no answer in time")
                return False, None
            except BaseException:
                # Cancelled mid-request: its answer would come to the next request.
                self._retire(child)
                raise
            finally:
                self._leave(child)
            self._broken_in_a_row = 0
            ok, value = answer[1], answer[2]
            return (True, value) if ok else (False, _error(value))

    def _pick(self) -> _Child | None:
        """The child for the next request: an idle one, else None while there is room for
        another child (spawned by the caller), else the least busy one with room."""
        if self._idle:
            return self._idle.pop()
        if len(self._children) < self.processes:
            return None
        open_ = [c for c in self._busy if not c.retired and c.users < PIPELINE_DEPTH]
        return min(open_, key=lambda c: c.users) if open_ else None

    def _enter(self, child: _Child) -> None:
        child.users += 1
        self._busy.add(child)

    def _leave(self, child: _Child) -> None:
        child.users -= 1
        if child.users:
            return
        self._busy.discard(child)
        if child.retired or self._closing:
            child.sock.close()  # closing: it exits by itself, and aclose reaps it
        else:
            self._idle.append(child)

    def _broken(self, child: _Child, why: str) -> None:
        self.broken += 1
        self._broken_in_a_row += 1
        log.warning("render process %d is broken (%s); killed", child.pid, why)
        self._retire(child)
        self._warn_disabled()

    def _warn_disabled(self) -> None:
        if self.disabled and not self._warned:
            self._warned = True
            log.warning(
                "%d render processes broke in a row; rendering in-process from now on",
                self._broken_in_a_row,
            )

    def _retire(self, child: _Child) -> None:
        """Kill ``child`` now and reap it in the background (a new one takes its place on
        the next request)."""
        if self._children.get(child.pid) is child:
            del self._children[child.pid]
        if child in self._idle:
            self._idle.remove(child)
        child.retire()
        task = asyncio.get_running_loop().create_task(_reap(child.process))
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)


def _error(value: object) -> BaseException:
    if isinstance(value, Exception):
        return value
    return RuntimeError("a render process failed")


def _exitcode(process: BaseProcess) -> int | None:
    """``process.exitcode`` (reaping it if it exited); a closed one exited."""
    try:
        return process.exitcode
    except ValueError:  # closed already, after it was reaped
        return 0


def _exited(children: Collection[_Child]) -> bool:
    """Whether every one of ``children`` exited (reaping those that did)."""
    return all(_exitcode(c.process) is not None for c in children)


async def _wait_until(done: Callable[[], bool], end: float) -> None:
    """Poll ``done`` (without blocking the loop) until it holds or the loop's clock
    reaches ``end``."""
    loop = asyncio.get_running_loop()
    delay = 0.005
    while not done() and loop.time() < end:
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


async def _reap(process: BaseProcess) -> None:
    loop = asyncio.get_running_loop()
    await _wait_until(lambda: _exitcode(process) is not None, loop.time() + _REAP_SECONDS)
    _close_process(process)


def _close_process(process: BaseProcess) -> None:
    """Release ``process``'s resources once it exited (it is reaped by then)."""
    if _exitcode(process) is None:
        log.warning("render process %d did not exit after SIGKILL", process.pid or 0)
        return
    with contextlib.suppress(ValueError):
        process.close()
