"""One loopback server for the package; each test plugs in a fresh seeded knowledge base."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from rsbridge.sim.agiloft import DemoSeed, SimAgiloftState, create_app, parse_lines, seed_demo
from rsbridge.sim.serve import SwappableApp, serve_in_thread
from tests.conftest import FakeClock

NOW = 1_736_935_200.0  # 2025-01-15 10:00:00 UTC


@pytest.fixture(scope="session")
def server() -> Iterator[tuple[SwappableApp, str]]:
    swappable = SwappableApp()
    with serve_in_thread(swappable) as url:
        yield swappable, url


@dataclass
class KB:
    """A running simulated KB with the demo data and an httpx client."""

    state: SimAgiloftState
    demo: DemoSeed
    url: str
    http: httpx.Client
    clock: FakeClock

    def system(self, table: str | None = "case") -> dict[str, str]:
        """``$KB``, ``$lang`` and (unless ``None``) ``$table``."""
        params = {"$KB": self.demo.kb, "$lang": "en"}
        if table is not None:
            params["$table"] = table
        return params

    def creds(self, login: tuple[str, str] | None = None) -> dict[str, str]:
        """``$login``/``$password`` (the integration user by default)."""
        user, password = login or self.demo.integration
        return {"$login": user, "$password": password}

    def call(
        self,
        operation: str,
        params: dict[str, Any] | list[tuple[str, str]] | None = None,
        *,
        method: str = "POST",
        json: bool = False,
        token: str | None = None,
        table: str | None = "case",
        login: tuple[str, str] | None = None,
        body: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """``/ewws/<operation>[/.json]``: the system parameters, then credentials (or
        ``Authorization: Bearer <token>``), then ``params``; in the form body for POST
        unless ``body`` is false (then all in the query string)."""
        pairs: list[tuple[str, str]] = list(self.system(table).items())
        headers = dict(kwargs.pop("headers", {}))
        if token is None:
            pairs += list(self.creds(login).items())
        else:
            headers["Authorization"] = f"Bearer {token}"
        if isinstance(params, dict):
            for key, value in params.items():
                values = value if isinstance(value, list) else [value]
                pairs += [(key, str(v)) for v in values]
        elif params:
            pairs += params
        path = f"{self.url}/ewws/{operation}{'/.json' if json else ''}"
        if method in ("POST", "PUT") and body and "files" not in kwargs:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return self.http.request(
                method, path, content=urlencode(pairs), headers=headers, **kwargs
            )
        return self.http.request(method, path, params=urlencode(pairs), headers=headers, **kwargs)

    def lines(self, operation: str, params: Any = None, **kwargs: Any) -> dict[str, str | None]:
        """A call in the ``EWREST_`` style, read back; fails on an error page."""
        answer = self.call(operation, params, **kwargs)
        assert answer.status_code in (200, 201), answer.text
        assert "Exception has occurred" not in answer.text, answer.text
        return parse_lines(answer.text)

    def ok(self, operation: str, params: Any = None, **kwargs: Any) -> Any:
        """A ``/.json`` call's ``result``; fails unless ``success``."""
        answer = self.call(operation, params, json=True, **kwargs)
        body = answer.json()
        assert body["success"] is True, body
        assert body["message"] == ""
        return body["result"]

    def error(self, operation: str, params: Any = None, **kwargs: Any) -> tuple[int, str]:
        """A ``/.json`` call with ``err_code_resp=1`` that fails: (status, message)."""
        params = dict(params or {})
        params["err_code_resp"] = "1"
        answer = self.call(operation, params, json=True, **kwargs)
        body = answer.json()
        assert body["success"] is False, body
        assert body["result"] is None
        return answer.status_code, str(body["message"])

    def login(self, login: tuple[str, str] | None = None) -> dict[str, Any]:
        """EWLogin with credentials: the answer object."""
        answer = self.call("EWLogin", table=None, login=login)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result


@pytest.fixture
def kb(server: tuple[SwappableApp, str]) -> Iterator[KB]:
    swappable, url = server
    clock = FakeClock(NOW)
    state = SimAgiloftState(clock=clock)
    demo = seed_demo(state)
    swappable.app = create_app(state)
    with httpx.Client(timeout=10) as http:
        yield KB(state, demo, url, http, clock)
