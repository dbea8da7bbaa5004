"""The logging of ``rsbridge serve``: human or JSON lines, with the context they belong to.

* :func:`log_context` binds fields (``integration``, ``appliance``, ``lsid``, ``job``) to
  the running task: every record logged inside it, by rsbridge or a library it calls,
  carries them. The worker binds a job's fields around its processing, the intake the
  appliance of a delivery, a poller its integration. Values are data (an lsid as the
  appliance sent it): the JSON format escapes them, the human one shows them with ``%r``.
* :func:`configure` installs one handler on the root logger, in the ``human`` format
  (``time LEVEL logger: message [fields]``) or ``json`` (one object a line: ``time``,
  ``level``, ``logger``, ``message``, the bound fields, ``exception`` when there is one).
  uvicorn's loggers go through it too (serve passes ``log_config=None``).
* httpx logs every request at INFO; :class:`HttpxRequestsAtDebug` moves those lines to
  DEBUG, so they show with ``--log-level debug`` only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, Final, Literal

__all__ = [
    "CONTEXT_FIELDS",
    "HttpxRequestsAtDebug",
    "JsonFormatter",
    "LogFormat",
    "bind_log_fields",
    "configure",
    "log_context",
]

LogFormat = Literal["human", "json"]
LOG_FORMATS: Final = ("human", "json")

CONTEXT_FIELDS: Final = ("integration", "appliance", "lsid", "job")
"""The fields :func:`log_context` may bind, in the order they are shown."""

_context: ContextVar[dict[str, str | int]] = ContextVar("rsbridge_log_context", default={})  # noqa: B039 (never mutated: replaced)


def _merged(fields: dict[str, str | int | None]) -> dict[str, str | int]:
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown log fields: {', '.join(sorted(unknown))}")
    return {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}


@contextlib.contextmanager
def log_context(**fields: str | int | None) -> Iterator[None]:
    """Bind ``fields`` (names from :data:`CONTEXT_FIELDS`; ``None`` ones are left out) to
    every record logged inside, in this task and the tasks it starts."""
    token = _context.set(_merged(fields))
    try:
        yield
    finally:
        _context.reset(token)


def bind_log_fields(**fields: str | int | None) -> None:
    """Bind ``fields`` for the rest of the current asyncio task (and the tasks it starts).

    For code that runs as a task of its own (a job, a request, a poller): the binding
    ends with the task, as each task runs in a copy of its creator's context.
    """
    _context.set(_merged(fields))


class _ContextFilter(logging.Filter):
    """Puts the bound fields on each record (as ``record.rsbridge_context``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "rsbridge_context"):
            record.rsbridge_context = dict(_context.get())
        return True


def _fields(record: logging.LogRecord) -> dict[str, str | int]:
    found = getattr(record, "rsbridge_context", None)
    return found if isinstance(found, dict) else {}


class HumanFormatter(logging.Formatter):
    """``2026-12-02 09:30:00,123 INFO name: message [integration='audit' job=12]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The line, with the bound fields after the message."""
        line = super().format(record)
        fields = _fields(record)
        if not fields:
            return line
        shown = " ".join(f"{k}={fields[k]!r}" for k in CONTEXT_FIELDS if k in fields)
        head, sep, rest = line.partition("\n")  # a traceback stays below the first line
        return f"{head} [{shown}]{sep}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a traceback is in ``exception``)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON."""
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class HttpxRequestsAtDebug(logging.Filter):
    """httpx's per-request INFO lines, moved to DEBUG (dropped unless DEBUG is on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Demote INFO to DEBUG; keep it only when the root logger shows DEBUG."""
        if record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def configure(level: str, fmt: LogFormat = "human") -> None:
    """Log at ``level`` (``debug``, ``info``...) to stderr in the format ``fmt``.

    Replaces the root logger's handlers, so a second call changes the format rather
    than doubling every line.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, HttpxRequestsAtDebug) for f in httpx_logger.filters):
        httpx_logger.addFilter(HttpxRequestsAtDebug())
