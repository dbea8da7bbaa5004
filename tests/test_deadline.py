"""The overall call deadline, against real peers on loopback that answer too slowly."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from rsbridge.connectors.base import CheckResult
from rsbridge.deadline import CallDeadlineExceeded, DeadlineClient

from .conftest import Trickle, trickling_server
from .stub_connectors import CheckOnlyConnector

BODY = b'{"result": "' + b"x" * 2000 + b'"}'
# One byte every 50 ms: a per-read timeout of 5 s never fires, the whole body takes 100 s.
TRICKLE = Trickle(BODY, pause=0.05)
# Generous bound that proves "did not wait for the peer" (the peer would take 100 s).
BOUND = 20.0


async def test_a_trickled_body_ends_at_the_deadline() -> None:
    async with (
        trickling_server({"/": TRICKLE}) as url,
        DeadlineClient(deadline=0.5, timeout=5.0) as http,
    ):
        began = time.monotonic()
        async with asyncio.timeout(BOUND):
            with pytest.raises(CallDeadlineExceeded) as caught:
                await http.get(f"{url}/slow")
        assert time.monotonic() - began >= 0.5
    err = caught.value
    assert isinstance(err, httpx.TimeoutException)  # handled wherever timeouts are
    assert err.seconds == 0.5 and "call deadline of 0.5 s" in str(err)


async def _read_into(response: httpx.Response, got: bytearray) -> None:
    async for chunk in response.aiter_bytes():
        got += chunk


async def test_a_streamed_body_is_bounded_too() -> None:
    got = bytearray()
    async with (
        trickling_server({"/": TRICKLE}) as url,
        DeadlineClient(deadline=0.5, timeout=5.0) as http,
        asyncio.timeout(BOUND),
        http.stream("GET", f"{url}/slow") as response,
    ):
        assert response.status_code == 200  # the headers came in time
        with pytest.raises(CallDeadlineExceeded):
            await _read_into(response, got)
    assert 0 < len(got) < len(BODY)  # part of it arrived, then the deadline struck


async def test_headers_that_never_come_end_at_the_deadline() -> None:
    async with (
        trickling_server({"/": Trickle(BODY, head_delay=60)}) as url,
        DeadlineClient(deadline=0.3, timeout=30.0) as http,
    ):
        async with asyncio.timeout(BOUND):
            with pytest.raises(CallDeadlineExceeded):
                await http.post(f"{url}/x", content=b"{}")


async def test_an_answer_within_the_deadline_is_untouched() -> None:
    async with trickling_server({"/": Trickle(BODY)}) as url, DeadlineClient(deadline=5.0) as http:
        response = await http.get(f"{url}/fast")
        async with http.stream("GET", f"{url}/fast") as streamed:
            body = await streamed.aread()
    assert response.content == BODY == body


def test_a_deadline_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        DeadlineClient(deadline=0)


class _Fetching(CheckOnlyConnector):
    """A third-party-style connector that calls its peer through the default client."""

    name = "fetching"
    title = "Fetching"
    call_deadline_seconds = 0.5
    url = ""

    async def check(self) -> CheckResult:
        response = await self.http.get(self.url)
        return CheckResult(response.text[:20])


async def test_a_connectors_default_client_ends_every_call_within_its_deadline() -> None:
    connector = _Fetching(_Fetching.validate_settings({}))
    try:
        async with trickling_server({"/": TRICKLE}) as url:
            connector.url = f"{url}/slow"
            async with asyncio.timeout(BOUND):
                with pytest.raises(httpx.TimeoutException):
                    await connector.check()
    finally:
        await connector.aclose()
