"""No configured secret in any log record, at any level, of a whole run.

One run of ``Engine.asgi_app`` (what ``rsbridge serve`` runs) over real HTTP: outbound
events with their token into the intake, workers fetching reports from the simulated
appliance (OAuth client secret) and delivering them to the simulated ServiceNow (OAuth
password grant: password and client secret) and to two webhook receivers (one URL with
user info and a secret in its query string, one with a bearer secret and a retried
failure), refused and malformed events, actions calls and ``/status`` with bearer tokens.
Every logger is made to emit every level, and every record that reaches the handlers is
searched: message, arguments and exception text.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from rsbridge.appliance.events import FORM_CONTENT_TYPE
from rsbridge.config import parse_config
from rsbridge.engine.runtime import Engine
from rsbridge.engine.store.base import JobFilter, JobStatus
from rsbridge.sim.appliance.emitter import OutboundEventEmitter, Recipient, events_for_session
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.serve import serve_in_thread
from rsbridge.sim.webhook import WebhookReceiverState
from rsbridge.sim.webhook import create_app as webhook_app
from rsbridge.web.serve import serving
from tests.conftest import SIGNING_SECRET, sign_session
from tests.servicenow_helpers import Snow, running_instance

from .conftest import SimAppliance, drained

EVENT_TOKEN = "evt-Token-4c1d9e7a"
HOOK_PASSWORD = "hook-UserInfo-Pw-8e2f"
HOOK_QUERY_KEY = "hook-Query-Key-5b7c"
HOOK_BEARER = "hook-Bearer-Secret-1a6d"
ACTIONS_TOKEN = "actions-Token-9f3e2b7c"
LINK_SECRET = "link-Secret-6d8a1c4e"


@pytest.fixture
def snow() -> Iterator[Snow]:
    with running_instance(17) as running:
        yield running


@pytest.fixture
def receivers() -> Iterator[tuple[tuple[WebhookReceiverState, str], ...]]:
    plain, bearer = WebhookReceiverState(), WebhookReceiverState(secret=HOOK_BEARER)
    with serve_in_thread(webhook_app(plain)) as one, serve_in_thread(webhook_app(bearer)) as two:
        yield (plain, one), (bearer, two)


class EveryRecord:
    """Every log record that reaches the handlers, from any logger, at any level."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.records: list[logging.LogRecord] = []
        call_handlers = logging.Logger.callHandlers

        def capture(logger: logging.Logger, record: logging.LogRecord) -> None:
            self.records.append(record)  # after the logger's filters, as handlers see it
            call_handlers(logger, record)

        # Every level of every logger (uvicorn's, httpx's and httpcore's included),
        # whatever their configured levels: DEBUG and beyond.
        monkeypatch.setattr(logging.Logger, "isEnabledFor", lambda logger, level: True)
        monkeypatch.setattr(logging.Logger, "callHandlers", capture)

    def texts(self) -> Iterator[tuple[logging.LogRecord, str]]:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        for record in list(self.records):
            # format() adds the exception's text (exc_text) and stack, when there are any.
            yield record, "\n".join([formatter.format(record), str(record.msg), repr(record.args)])


def _config(
    tmp_path: Path,
    sim: SimAppliance,
    snow: Snow,
    receivers: tuple[tuple[WebhookReceiverState, str], ...],
) -> Any:
    (_, plain_url), (_, bearer_url) = receivers
    user, password = snow.demo.integration
    client_id, client_secret = snow.demo.oauth_client
    userinfo_url = plain_url.replace("http://", f"http://rsbridge:{HOOK_PASSWORD}@")
    return parse_config(
        {
            "engine": {
                "store": str(tmp_path / "engine.db"),
                "backoff_base_seconds": 0.05,
                "backoff_max_seconds": 0.2,
            },
            "appliances": [
                {
                    "id": "default",
                    "host": sim.host,
                    "client_id": sim.client_id,
                    "client_secret": sim.client_secret,
                    "use_plain_http": True,
                    "outbound_event_token": EVENT_TOKEN,
                }
            ],
            "integrations": [
                {
                    "name": "snow",
                    "connector": "servicenow",
                    "settings": {
                        "instance_url": snow.url,
                        "auth": "oauth_password",
                        "username": user,
                        "password": password,
                        "client_id": client_id,
                        "client_secret": client_secret,
                    },
                },
                {
                    "name": "hook-userinfo",
                    "connector": "webhook",
                    "settings": {
                        "url": f"{userinfo_url}/hook?key={HOOK_QUERY_KEY}",
                        "backoff_seconds": 0.01,
                    },
                },
                {
                    "name": "hook-bearer",
                    "connector": "webhook",
                    "settings": {
                        "url": f"{bearer_url}/hook",
                        "secret": HOOK_BEARER,
                        "backoff_seconds": 0.01,
                    },
                },
            ],
            "actions": {
                "enabled": True,
                "tokens": [ACTIONS_TOKEN],
                "link_secret": LINK_SECRET,
                "public_url": "https://rsbridge.example.com",
            },
            "signing": {"secret": SIGNING_SECRET},
        }
    )


async def test_no_configured_secret_in_any_log_record_of_a_full_run(
    tmp_path: Path,
    sim: SimAppliance,
    snow: Snow,
    receivers: tuple[tuple[WebhookReceiverState, str], ...],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logs = EveryRecord(monkeypatch)
    incidents = sorted(n for n in snow.demo.ids if n.startswith("INC"))
    generator = SessionGenerator(41)
    sessions = []
    for number in incidents[:2]:
        session = generator.session_from_key(number, {})
        assert session.start_time is not None and session.end_time is not None
        shift = datetime.now(UTC) - timedelta(seconds=60) - session.end_time
        session = dataclasses.replace(
            session, start_time=session.start_time + shift, end_time=session.end_time + shift
        )
        sim.state.add_report(
            sign_session(session, "snow", "hook-userinfo", "hook-bearer")
        )  # keys rsbridge made: signed
        sessions.append(session)
    (plain, _), (bearer, _) = receivers
    bearer.fail_next(503, 1)  # a retried failure on the way
    config = _config(tmp_path, sim, snow, receivers)
    engine = Engine(config)
    actions = {"Authorization": f"Bearer {ACTIONS_TOKEN}"}
    form = {"Content-Type": FORM_CONTENT_TYPE}

    async with serving(engine.asgi_app()) as url, httpx.AsyncClient(base_url=url) as http:
        recipient = Recipient(
            f"{url}/ERSPost?appliance=default&outbound_event_token={EVENT_TOKEN}",
            retry_interval=0.05,
        )
        async with OutboundEventEmitter([recipient]) as emitter:
            for session in sessions:
                for event in events_for_session(session, "default"):
                    emitter.enqueue(event)
            await emitter.run_until_idle()
        assert recipient.dropped == 0
        # Refusals and a parked event that carries the token in its body.
        wrong = urlencode({"event": "support_conference_end", "outbound_event_token": "nope"})
        assert (await http.post("/ERSPost", content=wrong, headers=form)).status_code == 401
        unknown = f"/events/other?outbound_event_token={EVENT_TOKEN}"
        assert (await http.post(unknown, content=wrong, headers=form)).status_code == 401
        parked = f"event=support_conference_end&outbound_event_token={EVENT_TOKEN}"
        answer = await http.post("/ERSPost", content=parked, headers=form)
        assert answer.text.startswith("recorded as malformed")
        # Actions and status, with the right token and with a wrong one.
        key = await http.post(
            "/actions/session-key",
            json={"integration": "snow", "ticket": incidents[0], "assignment": "general"},
            headers=actions,
        )
        assert key.status_code == 200, key.text
        links = await http.get("/actions/links", params={"integration": "snow"}, headers=actions)
        assert links.status_code == 200, links.text
        refused = await http.get(
            "/actions/links",
            params={"integration": "snow"},
            headers={"Authorization": "Bearer not-the-right-token"},
        )
        assert refused.status_code == 401
        await drained(engine)
        status = await http.get("/status", headers=actions)
        assert status.status_code == 200 and status.json()["jobs"]["dead"] == 0
        jobs = await engine.store.list_jobs(JobFilter(limit=100))

    # The run did what it is meant to, through every peer.
    assert jobs and all(j.status is JobStatus.DONE for j in jobs), [j.last_error for j in jobs]
    assert {j.integration for j in jobs} == {"snow", "hook-userinfo", "hook-bearer"}
    assert plain.of_kind("session_report") and bearer.of_kind("session_report")
    assert snow.state.query("u_rs_session")
    # And it logged at every level: httpx's request log, httpcore's trace, uvicorn's access log.
    names = {r.name for r in logs.records}
    assert {"httpx", "httpcore.http11", "uvicorn.access", "rsbridge.engine.intake"} <= names, names
    assert any(r.levelno == logging.DEBUG for r in logs.records)

    secrets = {
        "appliance client_secret": sim.client_secret,
        "outbound_event_token": EVENT_TOKEN,
        "webhook URL password": HOOK_PASSWORD,
        "webhook URL query secret": HOOK_QUERY_KEY,
        "webhook secret": HOOK_BEARER,
        "ServiceNow password": snow.demo.integration[1],
        "ServiceNow client_secret": snow.demo.oauth_client[1],
        "actions token": ACTIONS_TOKEN,
        "actions link_secret": LINK_SECRET,
        "signing secret": SIGNING_SECRET,
    }
    leaks = [
        f"{what} in {record.name} {record.levelname}: {text[:300]!r}"
        for record, text in logs.texts()
        for what, secret in secrets.items()
        if secret in text
    ]
    assert not leaks, "\n".join(leaks)
