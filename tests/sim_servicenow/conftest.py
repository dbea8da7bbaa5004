"""One loopback server for the whole package; each test plugs in a fresh seeded state."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from rsbridge.sim.serve import SwappableApp, serve_in_thread
from rsbridge.sim.servicenow import DemoSeed, SimServiceNowState, create_app, seed_demo
from tests.conftest import FakeClock

NOW = 1_736_935_200.0  # 2025-01-15 10:00:00 UTC
NOW_TEXT = "2025-01-15 10:00:00"


@pytest.fixture(scope="session")
def server() -> Iterator[tuple[SwappableApp, str]]:
    swappable = SwappableApp()
    with serve_in_thread(swappable) as url:
        yield swappable, url


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    # One client for the run: building one per test costs milliseconds (TLS context).
    with httpx.Client(timeout=10) as client:
        yield client


@dataclass
class Instance:
    """A running simulated instance with the demo data, and request helpers."""

    state: SimServiceNowState
    demo: DemoSeed
    url: str
    http: httpx.Client
    clock: FakeClock

    @property
    def ids(self) -> dict[str, str]:
        return self.demo.ids

    def request(self, method: str, path: str, *, auth: Any = None, **kwargs: Any) -> httpx.Response:
        """``path`` on the instance, as the integration user unless ``auth`` says otherwise."""
        if auth is None:
            auth = self.demo.integration
        elif auth is False:
            auth = None
        return self.http.request(method, f"{self.url}{path}", auth=auth, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def result(self, path: str, **kwargs: Any) -> Any:
        """The ``result`` of a successful GET."""
        response = self.get(path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()["result"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def sn(server: tuple[SwappableApp, str], http: httpx.Client, clock: FakeClock) -> Instance:
    state = SimServiceNowState(seed=3, clock=clock)
    demo = seed_demo(state)
    server[0].app = create_app(state)
    return Instance(state, demo, server[1], http, clock)
