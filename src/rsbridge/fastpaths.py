"""One process-wide switch for the pipeline's fast paths.

Each fast path gives the same results as the code it stands in for (tests compare the
two), so nothing but a benchmark has a reason to turn them off: ``benchmarks/pipeline.py``
measures its "before" row inside :func:`turned_off`, in the same run as the fast one.
Read at construction time (a :class:`~rsbridge.engine.render.Renderer`: its sandbox and
filters; a peer's HTTP client from :func:`rsbridge.peer_http.http_client`: its transport) or
per call (:func:`~rsbridge.appliance.report_model.to_jsonable`, the webhook
connector's session report body).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

_enabled = True


def enabled() -> bool:
    """Whether the fast paths are on (the default)."""
    return _enabled


@contextlib.contextmanager
def turned_off() -> Iterator[None]:
    """Run the old paths inside the ``with`` block (not thread-safe: for benchmarks)."""
    global _enabled  # the switch is process-wide by design
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before
