"""The fixed messages a page shows after a POST (``?notice=<code>&count=N``).

A POST answers with a 303 back to its page; the page reads the code and the count from
the query and shows the message written here for that code. Free text from the query is
never shown: a link someone else made cannot put words in the console's mouth.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request

from rsbridge.web.admin.site import utc_text

MESSAGES: dict[str, tuple[str, str]] = {
    "retried": ("ok", "The dead letter was queued again."),
    "not-dead": ("error", "That job is not a dead letter (any more): nothing was queued."),
    "retried-all": ("ok", "Queued again: {count} dead letter(s) matching the filter."),
    "replayed": ("ok", "Replay queued: {count} job(s)."),
    "nothing-to-replay": (
        "error",
        "Nothing to replay: the store holds no event of that session which the "
        "integration processes.",
    ),
    "pulled": ("ok", "Pull now queued {count} new session(s)."),
    "already-running": (
        "error",
        "A backfill for this integration runs already: here is its progress.",
    ),
    "checked": ("ok", "Check finished: nothing failed."),
    "check-failed": ("error", "Check finished: {count} verdict(s) failed."),
}
"""Notice code: (kind ``ok`` or ``error``, message; ``{count}`` is the query's count)."""


@dataclass(frozen=True, slots=True)
class Notice:
    """A message to show at the top of a page."""

    kind: str
    text: str


def notice_of(request: Request) -> Notice | None:
    """The notice the query names, with its count; None for an unknown code."""
    found = MESSAGES.get(request.query_params.get("notice", ""))
    if found is None:
        return None
    raw = request.query_params.get("count", "0")
    count = int(raw) if re.fullmatch(r"[0-9]{1,9}", raw) else 0
    kind, text = found
    return Notice(kind, text.format(count=count))


def with_notice(
    path: str, code: str, count: int | None = None, query: Mapping[str, str] | None = None
) -> str:
    """``path`` with ``query`` (its non-empty fields), ``notice=code`` and ``count``."""
    if code not in MESSAGES:
        raise ValueError(f"unknown notice {code!r}")
    fields = {k: v for k, v in (query or {}).items() if v}
    fields["notice"] = code
    if count is not None:
        fields["count"] = str(count)
    return f"{path}?{urlencode(fields)}"


def utc(ts: float | None) -> str:
    """A UNIX time as ``YYYY-MM-DD HH:MM:SS UTC`` (``-`` for none), for the pages."""
    if ts is None:
        return "-"
    return f"{utc_text(ts)} UTC"
