"""One loopback server for the package; each test plugs in a fresh seeded AR server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from rsbridge.sim.remedy import DemoSeed, SimRemedyState, create_app, seed_demo
from rsbridge.sim.serve import SwappableApp, serve_in_thread
from tests.conftest import FakeClock

NOW = 1_736_935_200.0  # 2025-01-15 10:00:00 UTC
ENTRY = "/api/arsys/v1/entry"


@pytest.fixture(scope="session")
def server() -> Iterator[tuple[SwappableApp, str]]:
    swappable = SwappableApp()
    with serve_in_thread(swappable) as url:
        yield swappable, url


@dataclass
class AR:
    """A running simulated AR server with the demo data, logged in as the integration user."""

    state: SimRemedyState
    demo: DemoSeed
    url: str
    http: httpx.Client
    clock: FakeClock
    token: str = ""

    def login(self, username: str | None = None, password: str | None = None) -> httpx.Response:
        """``POST /api/jwt/login`` with a form body."""
        return self.http.post(
            f"{self.url}/api/jwt/login",
            data={
                "username": username or self.demo.integration[0],
                "password": password if password is not None else self.demo.integration[1],
            },
        )

    def request(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """``ENTRY + path`` with ``Authorization: AR-JWT <token>``."""
        headers = {"Authorization": f"AR-JWT {token if token is not None else self.token}"}
        return self.http.request(method, f"{self.url}{ENTRY}{path}", headers=headers, **kwargs)


@pytest.fixture
def ar(server: tuple[SwappableApp, str]) -> Iterator[AR]:
    swappable, url = server
    clock = FakeClock(NOW)
    state = SimRemedyState(clock=clock)
    demo = seed_demo(state)
    swappable.app = create_app(state)
    with httpx.Client(timeout=10) as http:
        sim = AR(state, demo, url, http, clock)
        answer = sim.login()
        assert answer.status_code == 200, answer.text
        sim.token = answer.text
        yield sim
