"""A simulated instance set up by nothing but rsbridge's update set, in front of a
running rsbridge (engine and actions API on loopback) with the simulated appliance."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsbridge.config import parse_config
from rsbridge.connectors.servicenow.schema import Schema
from rsbridge.connectors.servicenow.update_set import TOKEN_PROPERTY, update_set_xml
from rsbridge.engine.runtime import Engine
from rsbridge.sim.servicenow.seed import INTEGRATION_USER
from rsbridge.web.serve import serving
from tests.actions.conftest import TOKEN, Mailbox, Sim, config_data
from tests.servicenow_helpers import Snow


@dataclass
class Bridge:
    """rsbridge's URL, the instance and the appliance behind it."""

    url: str
    snow: Snow
    sim: Sim


@asynccontextmanager
async def bridge_for(
    tmp_path: Path, sim: Sim, mailbox: Mailbox, snow: Snow, **actions: Any
) -> AsyncIterator[Bridge]:
    """rsbridge serving the integration ``servicenow`` of ``snow`` (its ``actions``
    settings: technician assignment, plus ``actions``), and ``snow`` set up by importing
    the update set: the integration user given ``rsbridge_admin`` and the actions token
    typed into its password2 property, as an administrator does."""
    user, password = snow.demo.integration
    integrations: list[dict[str, Any]] = [
        {
            "name": "servicenow",
            "connector": "servicenow",
            "association": {"on_unmatched": "skip"},
            "settings": {"instance_url": snow.url, "username": user, "password": password},
            "actions": {"assignment": "technician", **actions},
        }
    ]
    config = parse_config(config_data(tmp_path, sim, mailbox, integrations=integrations))
    async with Engine(config) as engine, serving(engine.asgi_app()) as url:
        state = snow.state
        state.import_unload_xml(update_set_xml(Schema.build(), url=url, integration="servicenow"))
        user_record = state.users[INTEGRATION_USER]
        user_record.roles = user_record.roles | {"rsbridge_admin"}
        (prop,) = [p for p in state.records("sys_properties") if p["name"] == TOKEN_PROPERTY]
        state.update("sys_properties", prop["sys_id"], {"value": TOKEN})
        yield Bridge(url, snow, sim)
