"""Fixtures for the actions tests: everything through real HTTP and SMTP on loopback.

* the simulated appliance (``rsbridge.sim.appliance``) served by uvicorn in a thread;
* an SMTP server (aiosmtpd's ``Controller``) that keeps what it receives;
* the engine's own ASGI app (intake, health, actions API) served the same way, with an
  integration of the in-memory test connector (:mod:`tests.actions.connector`), which
  is registered under the connector entry-point group for the duration of a test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from rsbridge.config import Config, parse_config
from rsbridge.connectors import registry
from rsbridge.connectors.base import ConfigurationItem, Ticket, TicketContext
from rsbridge.engine.runtime import Engine
from rsbridge.sim.appliance.server import create_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.serve import serve_in_thread
from tests.actions.connector import NAME, TABLES, Table
from tests.conftest import SIGNING_SECRET, free_port

TOKEN = "actions-test-token-3f9a2c41d8e7"
OTHER_TOKEN = "actions-second-token-77b1e0c9a4"
LINK_SECRET = "actions-link-secret-5d2e8f1a9b3c"
SMTP_PASSWORD = "smtp-pass-91c4e7d2"
PUBLIC_URL = "https://rsbridge.example.com"


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test connector, declared as a third-party package would declare it."""
    entry = EntryPoint(NAME, "tests.actions.connector:ActionTestConnector", "rsbridge.connectors")

    def entry_points(*, group: str) -> list[EntryPoint]:
        return [entry] if group == registry.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(registry, "entry_points", entry_points)


@dataclass
class Mailbox:
    """What the SMTP server received."""

    port: int
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[tuple[str, list[str], Message]]:
        with self.lock:
            return list(self.messages)


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        content = envelope.original_content or b""
        with self.box.lock:
            self.box.messages.append(
                (str(envelope.mail_from), list(envelope.rcpt_tos), message_from_bytes(content))
            )
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server(**options: Any) -> Iterator[Mailbox]:
    """An SMTP server on a free loopback port; ``options`` go to aiosmtpd's Controller."""
    box = Mailbox(free_port())
    controller = Controller(_Handler(box), hostname="127.0.0.1", port=box.port, **options)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Sim:
    """A running simulated appliance and the credentials of its full-access account."""

    state: SimApplianceState
    host: str
    client_id: str
    client_secret: str


@contextmanager
def sim_server(state: SimApplianceState | None = None) -> Iterator[Sim]:
    state = state or SimApplianceState.default(seed=11)
    account = state.accounts[0]
    app = create_app(state, rate_per_second=1000, rate_per_hour=10**6)
    with serve_in_thread(app) as url:
        yield Sim(state, url.removeprefix("http://"), account.client_id, account.client_secret)


ABEL = TicketContext(
    Ticket("sys-inc1", "INC0010001", "https://itsm.example.com/INC0010001"),
    state="In Progress",
    assigned_rep="jsmith",
    assigned_team="Network",
    caller_name="Abel Tuter",
    caller_email="abel.tuter@example.com",
    configuration_item=ConfigurationItem("ci-1", "WKS-ABEL", "wks-abel.corp.example.com"),
    session_attributes={"external_key": "INC0010001", "snow_task_id": "sys-inc1"},
)
CLOSED = TicketContext(
    Ticket("sys-inc2", "INC0010002"),
    state="Closed",
    closed=True,
    assigned_rep="jsmith",
    caller_email="closed@example.com",
    configuration_item=ConfigurationItem("ci-1", "WKS-ABEL"),
    session_attributes={"external_key": "INC0010002"},
)
BARE = TicketContext(
    Ticket("sys-inc3", "INC0010003"),
    state="New",
    session_attributes={"external_key": "INC0010003"},
)
BAD_FIELD = TicketContext(
    Ticket("sys-inc4", "INC0010004"),
    state="New",
    assigned_rep="jsmith",
    session_attributes={"external_key": "INC0010004", "no_such_field": "x"},
)
DB_SERVER = ConfigurationItem("ci-2", "SRV-DB01", "10.0.0.5")


def new_table() -> Table:
    """The tickets, users and configuration items every test starts with."""
    table = Table()
    for context in (ABEL, CLOSED, BARE, BAD_FIELD):
        table.add(context)
    table.users.update(
        {"abel.admin": "jsmith", "mary": "mjones", "bob": "bwilson", "ghost": "nobody"}
    )
    table.cis.update({"ci-2": DB_SERVER, "SRV-DB01": DB_SERVER})
    TABLES["desk"] = table
    return table


def integration(name: str, **actions: Any) -> dict[str, Any]:
    """An integration of the test connector on the desk table."""
    return {"name": name, "connector": NAME, "settings": {"table": "desk"}, "actions": actions}


DEFAULT_INTEGRATIONS = [
    integration("desk", queue="rep:jsmith"),
    integration("mail", email_key=True, log_session_key=False),
    integration("console", session_key_source="rep_console"),
    integration("web", session_key_source="web_console", jump_console="web"),
    integration(
        "portal",
        self_service_enabled=True,
        self_service_issues=["vpn", "printing", "no_such_issue"],
        public_portal_hostname="partners.example.com",
    ),
    integration("everything", self_service_enabled=True, session_start_type="full"),
]


def config_data(
    tmp_path: Path,
    sim: Sim | None,
    mailbox: Mailbox | None,
    *,
    integrations: list[dict[str, Any]] | None = None,
    appliance: dict[str, Any] | None = None,
    actions: dict[str, Any] | None = None,
    smtp: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "engine": {"store": str(tmp_path / "engine.db")},
        "appliances": [
            {
                "id": "default",
                "host": sim.host if sim else "127.0.0.1:9",
                "client_id": sim.client_id if sim else "id",
                "client_secret": sim.client_secret if sim else "secret",
                "use_plain_http": True,
                **(appliance or {}),
            }
        ],
        "integrations": DEFAULT_INTEGRATIONS if integrations is None else integrations,
        "actions": {
            "enabled": True,
            "tokens": [TOKEN, OTHER_TOKEN],
            "public_url": PUBLIC_URL,
            "link_secret": LINK_SECRET,
            **(actions or {}),
        },
        "signing": {"secret": SIGNING_SECRET},
    }
    if mailbox is not None:
        data["smtp"] = {
            "host": "127.0.0.1",
            "port": mailbox.port,
            "security": "none",
            "from_address": "rsbridge@example.com",
            **(smtp or {}),
        }
    return data


@dataclass
class Server:
    """The engine serving the actions API, and what sits behind it."""

    url: str
    http: httpx.Client
    config: Config
    table: Table
    sim: Sim | None
    mailbox: Mailbox | None
    answers: list[str] = field(default_factory=list)
    """Every answer body, for the no-secret checks."""

    def post(self, path: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.http.post(f"{self.url}{path}", json=body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(f"{self.url}{path}", **kwargs)

    @property
    def state(self) -> SimApplianceState:
        assert self.sim is not None
        return self.sim.state


@contextmanager
def engine_server(
    data: dict[str, Any], sim: Sim | None, mailbox: Mailbox | None
) -> Iterator[Server]:
    """The engine of configuration ``data`` on a loopback port, with an authorised client."""
    table = new_table()
    config = parse_config(data)
    engine = Engine(config)
    answers: list[str] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        answers.append(response.text)

    with (
        serve_in_thread(engine.asgi_app()) as url,
        httpx.Client(
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
            event_hooks={"response": [keep]},
        ) as http,
    ):
        yield Server(url, http, config, table, sim, mailbox, answers)


ServerFactory = Callable[..., Server]


@pytest.fixture
def sim() -> Iterator[Sim]:
    with sim_server() as running:
        yield running


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture
def server(tmp_path: Path, sim: Sim, mailbox: Mailbox) -> Iterator[Server]:
    """The default server: every test integration, the simulator, the SMTP server."""
    with engine_server(config_data(tmp_path, sim, mailbox), sim, mailbox) as running:
        yield running
