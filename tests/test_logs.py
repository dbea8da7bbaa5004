"""URL redaction in the logs of httpx and uvicorn (rsbridge.logs), on real records."""

from __future__ import annotations

import logging

import httpx
import pytest

import rsbridge  # noqa: F401 (importing rsbridge installs the filter)
from rsbridge.logs import REDACTED_LOGGERS, URLRedactingFilter, install, redact_url
from rsbridge.sim.serve import serve_in_thread
from rsbridge.sim.webhook import WebhookReceiverState, create_app


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://rsbridge:pw-9@hooks.example.com:8443/in?key=k-7&x=1",
            "https://hooks.example.com:8443/in?key=***&x=***",
        ),
        (
            "/ERSPost?appliance=default&outbound_event_token=t-1",
            "/ERSPost?appliance=***&outbound_event_token=***",
        ),
        ("https://[::1]:8443/x?s3cret-bare&b=2", "https://[::1]:8443/x?***&b=***"),
        ("http://user@example.com/p", "http://example.com/p"),
        (
            "https://example.com/api/now/table/incident",
            "https://example.com/api/now/table/incident",
        ),
        ("http://example.com:port/p?x=1", "***"),
    ],
)
def test_user_info_and_query_values_are_masked(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_importing_rsbridge_installs_the_filter_once() -> None:
    def installed() -> list[int]:
        return [
            sum(isinstance(f, URLRedactingFilter) for f in logging.getLogger(name).filters)
            for name in REDACTED_LOGGERS
        ]

    assert installed() == [1, 1]
    install()
    assert installed() == [1, 1]


def test_httpx_request_log_shows_no_credentials(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    with serve_in_thread(create_app(WebhookReceiverState())) as base, httpx.Client() as client:
        url = base.replace("http://", "http://bot:pass-8d1@") + "/hook?token=tok-3e5&id=7"
        assert client.post(url, json={}).status_code == 201
    [record] = [r for r in caplog.records if r.name == "httpx"]
    message = record.getMessage()
    assert message.startswith(f"HTTP Request: POST {base}/hook?token=***&id=*** ")
    for secret in ("pass-8d1", "tok-3e5", "bot"):
        assert secret not in message and secret not in repr(record.args)
