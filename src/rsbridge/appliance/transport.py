"""Turn httpx failures and HTTP statuses into rsbridge's appliance errors."""

from __future__ import annotations

import socket

import httpx

from rsbridge.deadline import CallDeadlineExceeded
from rsbridge.errors import (
    ApplianceConnectionError,
    ApplianceError,
    ApplianceHostError,
    exception_chain,
)
from rsbridge.tls import certificate_problem


def map_transport_error(exc: httpx.HTTPError, url: str) -> ApplianceError:
    """Classify a failed request: unknown host and TLS are permanent, the rest retryable."""
    chain = exception_chain(exc)
    parsed = httpx.URL(url)
    if any(isinstance(c, socket.gaierror) for c in chain) or "Name or service not known" in str(
        exc
    ):
        return ApplianceHostError(
            f"the appliance host {parsed.host!r} does not resolve; check the host name in the "
            "configuration"
        )
    # The rest name host:port as configured: two appliances (or a simulator) may share
    # an address and differ by port only. netloc holds no user info.
    host = parsed.netloc.decode("ascii")
    problem = certificate_problem(exc)
    if problem is not None:
        return ApplianceConnectionError(
            f"the TLS certificate of the appliance {host!r} {problem} "
            "(allow_invalid_certificates is for a test appliance only)",
            retryable=False,
        )
    if isinstance(exc, CallDeadlineExceeded):
        return ApplianceConnectionError(
            f"the appliance {host!r} did not answer in time: its answer was not complete "
            f"within the call deadline of {exc.seconds:g} s ({url})"
        )
    if isinstance(exc, httpx.TimeoutException):
        return ApplianceConnectionError(f"the appliance {host!r} did not answer in time ({url})")
    if isinstance(exc, httpx.ConnectError):
        return ApplianceConnectionError(
            f"could not connect to the appliance {host!r} ({exc or 'connection refused'})"
        )
    return ApplianceConnectionError(f"request to the appliance {host!r} failed: {exc!r}")


def retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds, if present and numeric."""
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None
