"""Keep credentials carried in URLs out of the logs of the libraries rsbridge runs on.

Two loggers outside rsbridge print URLs as they are: httpx logs every request at INFO
(``HTTP Request: POST <url> "HTTP/1.1 200 OK"``), with the user info and query string
of the URL (a webhook URL's password or key, the appliance's ``outbound_event_token``),
and uvicorn's access log prints request targets with their query string (the outbound
event token, the auto-create link token). :func:`install` puts a filter on both
loggers that rewrites those arguments before any handler sees them: the user info goes,
every query value becomes ``***`` (the names stay, to tell requests apart).

Importing :mod:`rsbridge` installs it, so every entry point (the CLI, the engine, a
program using the clients) is covered; installing again changes nothing.
"""

from __future__ import annotations

import logging
from urllib.parse import SplitResult, urlsplit, urlunsplit

__all__ = ["MASK", "URLRedactingFilter", "install", "redact_url"]

MASK = "***"
"""What every query value and the user info are replaced with."""

REDACTED_LOGGERS = ("httpx", "uvicorn.access")
"""The loggers :func:`install` filters."""


def _redact_query(query: str) -> str:
    # A part without "=" may be a bare secret (``?s3cret``): masked whole.
    parts = []
    for part in query.split("&"):
        name, sep, _value = part.partition("=")
        parts.append(f"{name}={MASK}" if sep else MASK)
    return "&".join(parts)


def redact_url(text: str) -> str:
    """``text`` (an absolute URL or a request target ``/path?query``) without secrets.

    The user info is dropped and every query value (and every part without a value)
    replaced with :data:`MASK`; scheme, host, port, path and the query's names are kept.
    Text that cannot be split as a URL is masked as a whole.
    """
    try:
        parts = urlsplit(text)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = (f"[{host}]" if host and ":" in host else host or "") + (
            f":{port}" if port is not None else ""
        )
    query = _redact_query(parts.query) if parts.query else ""
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, ""))


def _needs_redaction(text: str) -> bool:
    return "?" in text or ("://" in text and "@" in text)


class URLRedactingFilter(logging.Filter):
    """Rewrites URL-like arguments of a record (see :func:`redact_url`); drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record.args`` in place; always keep the record."""
        if isinstance(record.args, tuple):
            record.args = tuple(self._redact(arg) for arg in record.args)
        return True

    @staticmethod
    def _redact(arg: object) -> object:
        # str, or a URL object (httpx.URL) that str() turns into the full URL.
        if not (isinstance(arg, str) or type(arg).__name__ == "URL"):
            return arg
        text = str(arg)
        return redact_url(text) if _needs_redaction(text) else arg


def install() -> None:
    """Put a :class:`URLRedactingFilter` on the httpx and uvicorn access loggers (once)."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, URLRedactingFilter) for f in logger.filters):
            logger.addFilter(URLRedactingFilter())
