"""A simulated ServiceNow instance with the demo data and rsbridge's tables, for tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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
