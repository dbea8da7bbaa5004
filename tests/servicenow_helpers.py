"""A simulated ServiceNow instance with the demo data and rsbridge's tables, for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsbridge.connectors.servicenow.connector import ServiceNowConnector
from rsbridge.connectors.servicenow.schema import Schema, unload_xml
from rsbridge.sim.serve import serve_in_thread
from rsbridge.sim.servicenow import DemoSeed, SimServiceNowState, create_app, seed_demo


@dataclass
class Snow:
    """A running simulated instance: its state, seeded accounts and ids, and URL."""

    state: SimServiceNowState
    demo: DemoSeed
    url: str


def seeded_state(seed: int, url: str | None = None) -> tuple[SimServiceNowState, DemoSeed]:
    """The demo data plus rsbridge's tables, imported from the XML the CLI prints."""
    state = SimServiceNowState(seed=seed, instance_url=url)
    demo = seed_demo(state)
    state.import_unload_xml(unload_xml(Schema.build()))
    return state, demo


@contextmanager
def running_instance(seed: int, *, tls: tuple[Path, Path] | None = None) -> Iterator[Snow]:
    """A seeded instance served on a loopback port (HTTPS with ``tls``) for the block."""
    state, demo = seeded_state(seed)
    with serve_in_thread(create_app(state), tls=tls) as url:
        yield Snow(state, demo, url)


@asynccontextmanager
async def connector_factory(
    url: str, user: str, password: str
) -> AsyncIterator[Callable[..., ServiceNowConnector]]:
    """Makes connectors to the instance at ``url`` (settings as keyword arguments) and
    closes every one it made when the block ends."""
    made: list[ServiceNowConnector] = []

    def factory(**settings: Any) -> ServiceNowConnector:
        raw = {"instance_url": url, "username": user, "password": password, **settings}
        connector = ServiceNowConnector(ServiceNowConnector.validate_settings(raw))
        made.append(connector)
        return connector

    try:
        yield factory
    finally:
        for connector in made:
            await connector.aclose()
