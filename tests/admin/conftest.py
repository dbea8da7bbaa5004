"""The console under test: a real engine (SQLite file, simulated appliance) served on
loopback with ``[admin]`` enabled, and browsers-by-httpx that sign in to it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from rsbridge.config import Config
from rsbridge.engine.runtime import Engine
from rsbridge.web.admin.auth import hash_password
from rsbridge.web.serve import serving
from tests.engine.conftest import SimAppliance, engine_config, serve_sim

PASSWORDS = {"olga": "operator-password-1", "vic": "viewer-password-1"}
HASHES = {name: hash_password(password) for name, password in PASSWORDS.items()}
ROLES = {"olga": "operator", "vic": "viewer"}


@pytest.fixture
def sim() -> Iterator[SimAppliance]:
    """A simulated appliance on loopback."""
    with serve_sim() as running:
        yield running


def admin_section(**overrides: Any) -> dict[str, Any]:
    """``[admin]`` with an operator (olga) and a viewer (vic)."""
    return {
        "enabled": True,
        "users": [
            {"name": name, "password_hash": HASHES[name], "role": ROLES[name]} for name in PASSWORDS
        ],
        **overrides,
    }


def console_config(tmp_path: Path, sim: SimAppliance | None, **admin: Any) -> Config:
    """The engine's test configuration with the console enabled."""
    base = engine_config(tmp_path, sim)
    data = base.model_dump(mode="python")
    data["admin"] = admin_section(**admin)
    # model_dump masks nothing a test needs: secrets come back as SecretStr objects.
    return Config.model_validate(unmasked(data))


def unmasked(value: Any) -> Any:
    """``Config.model_dump()`` output with every secret as its text, so that a test can
    change a section and validate the mapping again."""
    from pydantic import SecretStr

    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: unmasked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unmasked(v) for v in value]
    return value


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: str) -> str:
    """The CSRF token of the first form in ``page``."""
    found = _CSRF.search(page)
    assert found, "no CSRF field in the page"
    return found.group(1)


@dataclass
class Console:
    """The served console: its URL and the engine behind it."""

    url: str
    engine: Engine

    def browser(self) -> httpx.AsyncClient:
        """A fresh cookie jar, as a new browser."""
        return httpx.AsyncClient(base_url=self.url, follow_redirects=False, timeout=30)

    @asynccontextmanager
    async def signed_in(self, name: str) -> AsyncIterator[httpx.AsyncClient]:
        """A browser in which ``name`` signed in with the right password."""
        async with self.browser() as client:
            answer = await sign_in(client, name, PASSWORDS[name])
            assert answer.status_code == 303, answer.text
            yield client


async def sign_in(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    """Fill in and send the sign-in form, as a browser does."""
    page = await client.get("/admin/sign-in")
    return await client.post(
        "/admin/sign-in",
        data={"csrf_token": csrf_of(page.text), "username": name, "password": password},
    )


@asynccontextmanager
async def serving_console(config: Config) -> AsyncIterator[Console]:
    """``config``'s engine with its workers, served on loopback."""
    async with Engine(config) as engine, serving(engine.asgi_app()) as url:
        yield Console(url, engine)
