"""One loopback server for the package; each test plugs in a fresh seeded org."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import requests

from rsbridge.sim.salesforce import DemoSeed, SimSalesforceState, create_app, seed_demo
from rsbridge.sim.serve import SwappableApp, serve_in_thread
from tests.conftest import FakeClock

NOW = 1_736_935_200.0  # 2025-01-15 10:00:00 UTC
API = "/services/data/v59.0"


@pytest.fixture(scope="session")
def server() -> Iterator[tuple[SwappableApp, str]]:
    swappable = SwappableApp()
    with serve_in_thread(swappable) as url:
        yield swappable, url


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@dataclass
class Org:
    """A running simulated org with the demo data, signed in as the integration user."""

    state: SimSalesforceState
    demo: DemoSeed
    url: str
    http: httpx.Client
    clock: FakeClock
    token: str = ""

    @property
    def ids(self) -> dict[str, str]:
        return self.demo.ids

    def sign_in(self, username: str | None = None, secret: str | None = None) -> httpx.Response:
        """The password flow for the integration user (or ``username``/``secret``)."""
        user, password, security_token = self.demo.integration
        return self.http.post(
            f"{self.url}/services/oauth2/token",
            data={
                "grant_type": "password",
                "client_id": self.demo.app[0],
                "client_secret": self.demo.app[1],
                "username": username or user,
                "password": secret if secret is not None else password + security_token,
            },
        )

    def request(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """``API + path`` with the Bearer token."""
        headers = {"Authorization": f"Bearer {token if token is not None else self.token}"}
        return self.http.request(method, f"{self.url}{API}{path}", headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def query(self, soql: str) -> Any:
        """The answer of a successful query."""
        response = self.get("/query", params={"q": soql})
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def org(server: tuple[SwappableApp, str], http: httpx.Client) -> Org:
    swappable, url = server
    clock = FakeClock(NOW)
    state = SimSalesforceState(clock=clock)
    demo = seed_demo(state)
    swappable.app = create_app(state)
    org = Org(state, demo, url, http, clock)
    answer = org.sign_in()
    assert answer.status_code == 200, answer.text
    org.token = answer.json()["access_token"]
    return org


class LoopbackSession(requests.Session):
    """Sends ``https://*.salesforce.com`` requests to the simulator, keeping the host.

    simple-salesforce builds every URL as ``https://<domain>.salesforce.com`` or from the
    ``instance_url`` host; DNS and TLS for those names cannot be real in a test, so this
    session (simple-salesforce's documented ``session=`` hook) connects to the loopback
    server instead and passes the name in the ``Host`` header, as a resolver would.
    """

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.netloc = urlsplit(base_url).netloc
        self.hosts: list[str] = []

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        text = url.decode() if isinstance(url, bytes) else url
        parts = urlsplit(text)
        if parts.hostname and parts.hostname.endswith(".salesforce.com"):
            headers = dict(kwargs.pop("headers", None) or {})
            headers["Host"] = parts.hostname
            self.hosts.append(parts.hostname)
            kwargs["headers"] = headers
            text = urlunsplit(("http", self.netloc, parts.path, parts.query, parts.fragment))
        return super().request(method, text, *args, **kwargs)


@pytest.fixture
def loopback(org: Org) -> Iterator[LoopbackSession]:
    with LoopbackSession(org.url) as session:
        yield session
