"""The ServiceNow connector against the simulated instance, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import pytest

from rsbridge.appliance.report_model import (
    Actor,
    CustomAttribute,
    EventType,
    ExitSurvey,
    PrimaryCustomer,
    SessionEvent,
    SupportSession,
    SurveyAnswer,
)
from rsbridge.connectors.base import (
    Association,
    Connector,
    NoteDelivery,
    RenderedPart,
    SessionDelivery,
    Ticket,
)
from rsbridge.connectors.servicenow import ServiceNowConnector
from rsbridge.connectors.servicenow.records import stable_id
from rsbridge.connectors.servicenow.schema import Schema, unload_xml
from rsbridge.connectors.servicenow.writes import journal_marker
from rsbridge.engine.render import Renderer
from rsbridge.errors import (
    ConfigurationError,
    ConnectorAuthError,
    ConnectorPermanentError,
    ConnectorRetryableError,
    TicketNotFoundError,
)
from rsbridge.sim.serve import SwappableApp, serve_in_thread
from rsbridge.sim.servicenow import DemoSeed, SimServiceNowState, create_app
from rsbridge.sim.servicenow.render import activity_html
from tests.conftest import Trickle, trickling_server
from tests.servicenow_helpers import connector_factory, seeded_state

from .contract import (
    APPLIANCE_ID,
    INTEGRATION,
    ConnectorContract,
    sample_session,
    session_delivery,
    survey_delivery,
)
from .report_reads import reading

TRUSTED = Association("custom:snow_task_id", True)
"""A ticket named by a signed reference."""


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[SwappableApp, str]]:
    swappable = SwappableApp()
    with serve_in_thread(swappable) as url:
        yield swappable, url


@dataclasses.dataclass
class Instance:
    state: SimServiceNowState
    demo: DemoSeed
    url: str


@pytest.fixture
def sn(server: tuple[SwappableApp, str]) -> Instance:
    state, demo = seeded_state(5, server[1])
    server[0].app = create_app(state)
    return Instance(state, demo, server[1])


Factory = Callable[..., ServiceNowConnector]


@pytest.fixture
async def make(sn: Instance) -> AsyncIterator[Factory]:
    user, password = sn.demo.integration
    async with connector_factory(sn.url, user, password) as factory:
        yield factory


def rows(sn: Instance, table: str, query: str = "") -> list[dict[str, str]]:
    return sn.state.query(table, query)


def session_row_id(lsid: str) -> str:
    return stable_id(APPLIANCE_ID, INTEGRATION, lsid, "session")


class TestContract(ConnectorContract):
    connector_class = ServiceNowConnector
    known_ticket_ref = "INC0010001"
    unknown_ticket_ref = "INC0099999"

    @pytest.fixture
    async def connector(self, sn: Instance, make: Factory) -> Connector:
        self.sn = sn
        return make()

    def valid_settings(self) -> dict[str, object]:
        return {"instance_url": "https://acme.example.com", "username": "u", "password": "p"}

    def effects(self, key: str) -> int:
        state = self.sn.state
        if key.startswith("ticket-"):
            return len(state.query("incident", f"sys_id={stable_id(key, 'ticket')}"))
        if "session_report" in key or key == "concurrent":
            lsid = sample_session().lsid
            sessions = state.query("u_rs_session", f"u_lsid={lsid}")
            ends = [
                e
                for e in state.query("sys_journal_field", "element=work_notes")
                if journal_marker(lsid, "end") in e["value"]
            ]
            assert len(ends) == len(sessions), "one session-end note per session row"
            return len(sessions)
        if "survey" in key:
            ids = {stable_id(key, "survey", "0", str(i)) for i in range(2)}
            answers = [r for r in state.query("u_rs_session_survey") if r["sys_id"] in ids]
            return len({r["u_survey"] for r in answers})
        marker = f"rsbridge ref {stable_id(key)[:16]}"
        return sum(marker in e["value"] for e in state.query("sys_journal_field"))


# --- finding tickets ------------------------------------------------------------------


async def test_tickets_are_found_by_sys_id_and_by_number(sn: Instance, make: Factory) -> None:
    connector = make()
    by_number = await connector.find_ticket("inc0010001")
    assert by_number.id == sn.demo.ids["INC0010001"]
    assert by_number.kind == "incident"
    assert by_number.url == f"{sn.url}/nav_to.do?uri=incident.do?sys_id={by_number.id}"
    assert await connector.find_ticket(by_number.id) == by_number
    change = next(n for n in sn.demo.ids if n.startswith("CHG"))
    assert (await connector.find_ticket(change)).kind == "change_request"


async def test_calls_interactions_and_catalog_items_by_default(sn: Instance, make: Factory) -> None:
    connector = make()
    expected = {
        "RITM": "sc_req_item",
        "SCTASK": "sc_task",
        "CALL": "new_call",
        "IMS": "interaction",
    }
    for prefix, table in expected.items():
        number = next(n for n in sn.demo.ids if n.startswith(prefix) and n[len(prefix)].isdigit())
        found = await connector.find_ticket(number.lower())
        assert (found.kind, found.id, found.number) == (table, sn.demo.ids[number], number)
    # RITM is not a REQ: the longer prefix names its own table.
    item = next(n for n in sn.demo.ids if n.startswith("RITM"))
    assert (await connector.find_ticket(item)).kind != "sc_request"


async def test_number_prefixes_replace_the_default(sn: Instance, make: Factory) -> None:
    call = next(n for n in sn.demo.ids if n.startswith("CALL"))
    connector = make(number_prefixes=["INC=incident"])
    with pytest.raises(TicketNotFoundError, match="known prefix"):
        await connector.find_ticket(call)
    assert (await connector.find_ticket("INC0010001")).kind == "incident"


async def test_unknown_references_are_not_found(make: Factory) -> None:
    connector = make()
    for reference in ("0" * 32, "INC0099999", "hello"):
        with pytest.raises(TicketNotFoundError):
            await connector.find_ticket(reference)


# --- session import -----------------------------------------------------------------


async def test_a_session_becomes_records_and_journal_entries(sn: Instance, make: Factory) -> None:
    connector = make()
    ticket = await connector.find_ticket("INC0010001")
    session = sample_session()
    before = len(sn.state.requests)
    result = await connector.write_session_report(ticket, session_delivery("k1"))
    calls = len(sn.state.requests) - before
    session_id = session_row_id(session.lsid)
    assert result.ref == session_id
    (row,) = rows(sn, "u_rs_session")
    assert row["sys_id"] == session_id
    assert row["u_task"] == ticket.id
    assert row["u_lsid"] == session.lsid and row["u_import_state"] == "complete"
    assert len(rows(sn, "u_rs_session_event", f"u_session={session_id}")) == len(session.events)
    assert len(rows(sn, "u_rs_session_rep")) == len(session.representatives)
    assert len(rows(sn, "u_rs_session_customer")) == len(session.customers)
    attrs = rows(sn, "u_rs_session_attribute")
    assert {a["u_code_name"] for a in attrs} == {a.code_name for a in session.custom_attributes}
    notes = sn.state.journal(ticket.id, "work_notes")
    texts = [n["value"] for n in notes]
    assert any(t.startswith("Chat transcript") for t in texts)
    assert any("Remote Support session ended." in t for t in texts)
    # One read round (the session row, the reps' users), one write round, "complete".
    assert calls == 3, [r.path for r in sn.state.requests[before:]]


async def test_a_replay_changes_nothing(sn: Instance, make: Factory) -> None:
    connector = make()
    ticket = await connector.find_ticket("INC0010001")
    await connector.write_session_report(ticket, session_delivery("k1"))
    snapshot = {t: len(rows(sn, t)) for t in ("u_rs_session", "u_rs_session_event")}
    notes = len(sn.state.journal(ticket.id))
    again = await make().write_session_report(ticket, session_delivery("k1"))
    assert again.detail.get("already") == "complete"
    assert {t: len(rows(sn, t)) for t in snapshot} == snapshot
    assert len(sn.state.journal(ticket.id)) == notes


async def test_an_interrupted_import_is_completed_without_doubles(
    sn: Instance, make: Factory
) -> None:
    connector = make(batch_size=10)
    ticket = await connector.find_ticket("INC0010001")
    session = sample_session()
    # The second batch call fails: the first one's rows (and the session row) are in.
    sn.state.fail_next(0)
    original = connector.client.batch
    calls = 0

    async def flaky(requests: Any, *, what: str) -> Any:
        nonlocal calls
        calls += any(r.method != "GET" for r in requests)  # write batches only
        if calls == 2:
            raise ConnectorRetryableError("the instance went away")
        return await original(requests, what=what)

    connector.client.batch = flaky  # type: ignore[method-assign]
    with pytest.raises(ConnectorRetryableError):
        await connector.write_session_report(ticket, session_delivery("k1"))
    (row,) = rows(sn, "u_rs_session")
    assert row["u_import_state"] == "importing"
    connector.client.batch = original  # type: ignore[method-assign]
    await connector.write_session_report(ticket, session_delivery("k1"))
    (row,) = rows(sn, "u_rs_session")
    assert row["u_import_state"] == "complete"
    assert len(rows(sn, "u_rs_session_event")) == len(session.events)
    values = [n["value"] for n in sn.state.journal(ticket.id, "work_notes")]
    assert len(values) == len(set(values)), "no journal entry twice"


def _rendered(key: str, session: SupportSession) -> SessionDelivery:
    """A delivery rendered with the default templates, as the worker makes it."""
    return dataclasses.replace(
        session_delivery(key, session=session), report=Renderer().render(session)
    )


def _footers(sn: Instance, ticket_id: str) -> list[str]:
    """The marker lines of our work notes on a task (the seed's own notes left out)."""
    lines = [n["value"].rsplit("\n", 1)[-1] for n in sn.state.journal(ticket_id, "work_notes")]
    return sorted(f for f in lines if f.startswith(("(RS session ", "(Remote Support session ")))


async def test_journal_entries_end_with_a_short_marker(sn: Instance, make: Factory) -> None:
    connector = make()
    ticket = await connector.find_ticket("INC0010001")
    session = sample_session()
    await connector.write_session_report(ticket, _rendered("k1", session))
    footers = _footers(sn, ticket.id)
    short = session.lsid[:12]
    assert footers == [f"(RS session {short}: {p})" for p in ("chat", "end", "notes")]
    assert all(len(f) <= 40 for f in footers)
    assert journal_marker(session.lsid, "chat") == f"(RS session {short}: chat)"


async def test_no_entry_for_a_part_the_session_does_not_have(sn: Instance, make: Factory) -> None:
    connector = make()
    ticket = await connector.find_ticket("INC0010001")
    quiet = {EventType.CHAT_MESSAGE, EventType.SESSION_NOTE_ADDED}
    session = dataclasses.replace(
        sample_session(), events=[e for e in sample_session().events if e.event_type not in quiet]
    )
    delivery = _rendered("k1", session)
    # The transcript template still lists the session's other events: not a chat.
    assert delivery.report.parts["chat"].text.strip()
    await connector.write_session_report(ticket, delivery)
    assert _footers(sn, ticket.id) == [journal_marker(session.lsid, "end")]


async def test_entries_under_the_earlier_long_marker_are_not_written_again(
    sn: Instance, make: Factory
) -> None:
    # Without session rows, the journal alone says what is there (as after an upgrade in
    # the middle of an import): the long marker of earlier versions counts.
    connector = make(write_session_records=False)
    ticket = await connector.find_ticket("INC0010001")
    session = sample_session()
    legacy = f"Chat transcript\n\n(Remote Support session {session.lsid}: chat transcript)"
    await connector.client.update("incident", ticket.id, {"work_notes": legacy})
    await connector.write_session_report(ticket, _rendered("k1", session))
    await connector.write_session_report(ticket, _rendered("k1", session))
    assert _footers(sn, ticket.id) == sorted(
        [
            f"(Remote Support session {session.lsid}: chat transcript)",
            journal_marker(session.lsid, "notes"),
            journal_marker(session.lsid, "end"),
        ]
    )


async def test_related_records_come_from_custom_attributes(sn: Instance, make: Factory) -> None:
    connector = make()
    ci_name = next(n for n in sn.demo.ids if n.startswith(("ws-", "srv-")))
    interaction = next(n for n in sn.demo.ids if n.startswith("IMS"))
    session = dataclasses.replace(
        sample_session(),
        custom_attributes=[
            CustomAttribute("snow_cmdb_ci_id", "CI", ci_name),
            CustomAttribute("snow_interaction_id", "Interaction", sn.demo.ids[interaction]),
        ],
    )
    ticket = await connector.find_ticket("INC0010001")
    accepted = Association(
        "external_key",
        True,
        {
            "custom:snow_cmdb_ci_id": ci_name,
            "custom:snow_interaction_id": sn.demo.ids[interaction],
        },
    )
    delivery = session_delivery("k1", session=session, association=accepted)
    await connector.write_session_report(ticket, delivery)
    (row,) = rows(sn, "u_rs_session")
    assert row["u_configuration_item"] == sn.demo.ids[ci_name]
    assert row["u_interaction"] == sn.demo.ids[interaction]
    assert row["u_task"] == ticket.id


async def test_references_the_engine_did_not_accept_are_not_followed(
    sn: Instance, make: Factory
) -> None:
    # The session carries the values, but the association accepted none of them.
    connector = make()
    ci_name = next(n for n in sn.demo.ids if n.startswith(("ws-", "srv-")))
    call = next(n for n in sn.demo.ids if n.startswith("CALL"))
    session = dataclasses.replace(
        sample_session(),
        custom_attributes=[
            CustomAttribute("snow_cmdb_ci_id", "CI", ci_name),
            CustomAttribute("snow_call_id", "Call", sn.demo.ids[call]),
        ],
    )
    ticket = await connector.find_ticket("INC0010001")
    await connector.write_session_report(ticket, session_delivery("k1", session=session))
    (row,) = rows(sn, "u_rs_session")
    assert not row["u_configuration_item"]
    assert not row["u_call"]


async def test_a_bare_sys_id_of_another_table_is_never_stored(sn: Instance, make: Factory) -> None:
    # snow_call_id = the admin's sys_user id once gave u_call = admin.
    admin = sn.state.query("sys_user", "user_name=admin")[0]["sys_id"]
    accepted = Association("external_key", True, {"custom:snow_call_id": admin})
    connector = make()
    ticket = await connector.find_ticket("INC0010001")
    await connector.write_session_report(ticket, session_delivery("k1", association=accepted))
    (row,) = rows(sn, "u_rs_session")
    assert not row["u_call"]


async def test_a_reference_must_name_a_record_of_its_kind(sn: Instance, make: Factory) -> None:
    connector = make(number_prefixes=["INC=incident", "CALL=new_call", "IMS=interaction"])
    incident = sn.demo.ids["INC0010001"]
    call = next(n for n in sn.demo.ids if n.startswith("CALL"))
    with pytest.raises(TicketNotFoundError, match="no new_call with sys_id"):
        await connector.find_ticket(incident, source="custom:snow_call_id")
    with pytest.raises(TicketNotFoundError, match="must name a new_call, not a incident"):
        await connector.find_ticket("INC0010001", source="custom:snow_call_id")
    with pytest.raises(TicketNotFoundError, match="no interaction"):
        await connector.find_ticket(sn.demo.ids[call], source="custom:snow_interaction_id")
    assert (await connector.find_ticket(call, source="custom:snow_call_id")).kind == "new_call"
    assert (await connector.find_ticket(incident, source="custom:snow_task_id")).id == incident


async def test_the_primary_rep_is_associated_with_their_user(sn: Instance, make: Factory) -> None:
    session = sample_session()
    rep = next(r for r in session.representatives if r.primary)
    assert rep.username is not None
    user = sn.state.query("sys_user", f"user_name={rep.username}")
    if not user:
        sn.state.insert("sys_user", {"user_name": rep.username, "name": "Rep"})
        user = sn.state.query("sys_user", f"user_name={rep.username}")
    ticket = await make().find_ticket("INC0010001")
    await make().write_session_report(ticket, session_delivery("k1"))
    (row,) = rows(sn, "u_rs_session")
    assert row["u_primary_rep_user"] == user[0]["sys_id"]
    (row2,) = rows(sn, "u_rs_session")
    assert row2["sys_id"] == session_row_id(session.lsid)


async def test_unassociated_sessions_are_imported_without_journal(
    sn: Instance, make: Factory
) -> None:
    before = len(sn.state.query("sys_journal_field"))
    await make().write_session_report(None, session_delivery("k1"))
    (row,) = rows(sn, "u_rs_session")
    assert row["u_task"] == ""
    assert len(sn.state.query("sys_journal_field")) == before


async def test_switches_and_renames(sn: Instance, make: Factory) -> None:
    sn.state.import_unload_xml(
        unload_xml(Schema.build(["session=u_acme_session"], ["session.lsid=u_session_id"]))
    )
    connector = make(
        tables=["session=u_acme_session"],
        fields=["session.lsid=u_session_id"],
        log_chat_transcript=False,
        log_session_end=False,
        journal_field="comments",
        attach_report=True,
    )
    ticket = await connector.find_ticket("INC0010001")
    await connector.write_session_report(ticket, session_delivery("k1", association=TRUSTED))
    (row,) = rows(sn, "u_acme_session")
    assert row["u_session_id"] == sample_session().lsid
    assert rows(sn, "u_rs_session") == []
    journal = sn.state.journal(ticket.id)
    assert all(e["element"] == "comments" for e in journal if "Remote Support" in e["value"])
    assert not any("Chat transcript" in e["value"] for e in journal)
    (attachment,) = sn.state.query("sys_attachment", f"table_sys_id={ticket.id}")
    assert attachment["file_name"] == f"remote-support-session-{sample_session().lsid}.html"
    # Attached once only.
    await make(
        tables=["session=u_acme_session"], fields=["session.lsid=u_session_id"], attach_report=True
    ).write_session_report(ticket, session_delivery("k1"))
    assert len(sn.state.query("sys_attachment", f"table_sys_id={ticket.id}")) == 1


def test_an_http_proxy_needs_no_allow_plain_http() -> None:
    # Calls to the instance tunnel through an http:// proxy with TLS (CONNECT).
    base = {"instance_url": "https://x.example.com", "username": "u", "password": "p"}
    config = ServiceNowConnector.validate_settings({**base, "proxy": "http://proxy.corp:3128"})
    assert ServiceNowConnector.plain_http_urls(config) == []
    with pytest.raises(ConfigurationError, match=r"instance_url: plain http:// to x\.example\.com"):
        ServiceNowConnector.validate_settings({**base, "instance_url": "http://x.example.com"})


def test_bad_renames_and_mappings_are_configuration_errors() -> None:
    base = {"instance_url": "https://x.example.com", "username": "u", "password": "p"}
    for extra, needle in (
        ({"tables": ["nosuch=u_x"]}, "tables"),
        ({"fields": ["session.nosuch=u_x"]}, "fields"),
        ({"create_dynamic_fields": ["caller_id=shoe_size"]}, "shoe_size"),
        ({"create_lookup_fields": ["assigned_to=sys_user"]}, "create_lookup_fields"),
        ({"survey_state_rules": ["sometimes"]}, "survey_state_rules"),
        ({"auth": "oauth_password"}, "client_id"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
    ):
        with pytest.raises(ConfigurationError, match=needle):
            ServiceNowConnector(ServiceNowConnector.validate_settings({**base, **extra}))


# --- surveys ---------------------------------------------------------------------------


async def test_surveys_add_answers_and_can_move_the_task(sn: Instance, make: Factory) -> None:
    connector = make(survey_state_rules=["customer:rating=5 -> 6"], log_surveys=True)
    ticket = await connector.find_ticket("INC0010001")
    await connector.write_session_report(ticket, session_delivery("k1", association=TRUSTED))
    await connector.write_survey(
        ticket, survey_delivery("s:survey:customer:0", association=TRUSTED)
    )
    answers = rows(sn, "u_rs_session_survey")
    assert {(a["u_question"], a["u_answer"]) for a in answers} == {
        ("rating", "5"),
        ("comments", "Quick fix"),
    }
    assert all(a["u_session"] == session_row_id(sample_session().lsid) for a in answers)
    assert sn.state.get("incident", ticket.id)["state"] == "6"  # type: ignore[index]
    assert any("customer survey" in e["value"] for e in sn.state.journal(ticket.id))
    await connector.write_survey(ticket, survey_delivery("s:survey:customer:0"))
    assert len(rows(sn, "u_rs_session_survey")) == 2


async def test_an_untrusted_ticket_gets_no_state_change_and_no_comments(
    sn: Instance, make: Factory
) -> None:
    # A ticket named by a reference a customer could have set (trust = "any"): the
    # session lands, but only as work notes, and survey rules never move the ticket.
    connector = make(
        survey_state_rules=["customer:rating=5 -> 6"], log_surveys=True, journal_field="comments"
    )
    ticket = await connector.find_ticket("INC0010001")
    state_before = sn.state.get("incident", ticket.id)["state"]  # type: ignore[index]
    untrusted = Association("custom:snow_task_id", False)
    await connector.write_session_report(ticket, session_delivery("k1", association=untrusted))
    await connector.write_survey(
        ticket, survey_delivery("s:survey:customer:0", association=untrusted)
    )
    assert sn.state.get("incident", ticket.id)["state"] == state_before  # type: ignore[index]
    ours = [e for e in sn.state.journal(ticket.id) if "(RS session " in e["value"]]
    assert ours and {e["element"] for e in ours} == {"work_notes"}
    # Replays find their entries in the work notes: nothing is written twice.
    await connector.write_survey(
        ticket, survey_delivery("s:survey:customer:0", association=untrusted)
    )
    again = [e for e in sn.state.journal(ticket.id) if "(RS session " in e["value"]]
    assert len(again) == len(ours)


async def test_a_survey_without_an_imported_session_gets_a_session_row(
    sn: Instance, make: Factory
) -> None:
    connector = make()
    ticket = await connector.find_ticket("INC0010001")
    await connector.write_survey(ticket, survey_delivery("s:survey:rep:0", "rep"))
    (row,) = rows(sn, "u_rs_session")
    assert row["u_import_state"] == "survey_only"
    assert row["u_task"] == ticket.id


# --- auth and failures ---------------------------------------------------------------


async def test_oauth_password_refreshes_and_logs_in_again(sn: Instance, make: Factory) -> None:
    client_id, client_secret = sn.demo.oauth_client
    connector = make(auth="oauth_password", client_id=client_id, client_secret=client_secret)
    await connector.find_ticket("INC0010001")
    sn.state.expire_tokens()  # the access token dies: a 401, then a refresh
    await connector.find_ticket("INC0010001")
    sn.state.expire_tokens(refresh=True)  # both die: a new password login
    await connector.find_ticket("INC0010001")
    grants = [r for r in sn.state.requests if r.path == "/oauth_token.do"]
    assert len(grants) >= 3


async def test_oauth_client_credentials(sn: Instance, make: Factory) -> None:
    client_id, client_secret = sn.demo.oauth_client
    connector = make(
        auth="oauth_client_credentials",
        client_id=client_id,
        client_secret=client_secret,
        username=None,
        password=None,
    )
    assert (await connector.find_ticket("INC0010001")).number == "INC0010001"


async def test_bad_credentials_are_an_auth_error_without_the_secret(make: Factory) -> None:
    with pytest.raises(ConnectorAuthError) as caught:
        await make(password="Wrong-Secret-123").find_ticket("INC0010001")
    assert "Wrong-Secret-123" not in str(caught.value)
    with pytest.raises(ConnectorAuthError) as caught:
        await make(
            auth="oauth_password", client_id="x", client_secret="Client-Secret-456"
        ).find_ticket("INC0010001")
    assert "Client-Secret-456" not in str(caught.value)


async def test_missing_roles_are_permanent_and_say_so(sn: Instance, make: Factory) -> None:
    user, password = sn.demo.viewer
    connector = make(username=user, password=password)
    ticket = await connector.find_ticket("INC0010001")
    with pytest.raises(ConnectorPermanentError, match="roles"):
        await connector.write_session_report(ticket, session_delivery("k1"))


async def test_429_and_5xx_are_retryable_with_retry_after(sn: Instance, make: Factory) -> None:
    connector = make()
    sn.state.fail_next(1, status=429, retry_after=7)
    with pytest.raises(ConnectorRetryableError) as caught:
        await connector.find_ticket("INC0010001")
    assert caught.value.retry_after == 7
    sn.state.fail_next(1, status=503)
    with pytest.raises(ConnectorRetryableError):
        await connector.find_ticket("INC0010001")
    assert (await connector.find_ticket("INC0010001")).number == "INC0010001"


async def test_down_and_hibernating_instances_are_retryable(sn: Instance, make: Factory) -> None:
    connector = make()
    sn.state.down = True
    with pytest.raises(ConnectorRetryableError):
        await connector.find_ticket("INC0010001")
    sn.state.down = False
    sn.state.hibernating = True
    with pytest.raises(ConnectorRetryableError, match="hibernating"):
        await connector.find_ticket("INC0010001")


async def test_an_unreachable_instance_is_retryable(make: Factory) -> None:
    connector = make(instance_url="http://127.0.0.1:9", timeout_seconds=2.0)
    with pytest.raises(ConnectorRetryableError, match="could not be reached"):
        await connector.find_ticket("INC0010001")


async def test_an_instance_that_trickles_its_answer_fails_retryably_within_the_timeout() -> None:
    # One byte every 50 ms never trips a per-read timeout; the whole answer takes 100 s.
    body = b'{"result": [' + b" " * 2000 + b"]}"
    async with trickling_server({"/": Trickle(body, pause=0.05)}) as url:
        raw = {"instance_url": url, "username": "u", "password": "p", "timeout_seconds": 0.5}
        connector = ServiceNowConnector(ServiceNowConnector.validate_settings(raw))
        try:
            async with asyncio.timeout(20):  # generous: proves it did not wait for the peer
                with pytest.raises(ConnectorRetryableError, match=r"no answer within 0\.5 s"):
                    await connector.find_ticket("INC0010001")
        finally:
            await connector.aclose()


async def test_check_names_missing_tables(sn: Instance, make: Factory) -> None:
    assert "user rsbridge" in (await make().check()).summary
    with pytest.raises(ConnectorPermanentError, match="Import the table definition"):
        await make(tables=["session=u_not_imported"]).check()


# --- auto-create and actions' lookups ---------------------------------------------------


async def test_create_ticket_with_all_four_mappings(sn: Instance, make: Factory) -> None:
    caller = next(n for n in sn.demo.ids if "." in n and n in ("abel.tuter", "beth.anglin"))
    connector = make(
        create_table="incident",
        create_dynamic_fields=["description=customer_details"],
        create_lookup_fields=["assignment_group=sys_user_group.name=Service Desk"],
        create_dynamic_lookup_fields=["caller_id=sys_user.user_name=custom:customer_username"],
    )
    session = dataclasses.replace(
        sample_session(),
        custom_attributes=[CustomAttribute("customer_username", "User", caller)],
    )
    ticket = await connector.create_ticket(session, {"category": "inquiry"}, key="t1")
    record = sn.state.get("incident", ticket.id)
    assert record is not None
    assert ticket.number and ticket.number.startswith("INC")
    assert record["category"] == "inquiry"
    assert record["caller_id"] == sn.demo.ids[caller]
    assert record["assignment_group"] == sn.demo.ids["Service Desk"]
    assert connector.live_session_attributes(ticket) == {"snow_task_id": ticket.id}
    with pytest.raises(ConnectorPermanentError, match="no sys_user_group record"):
        await make(
            create_lookup_fields=["assignment_group=sys_user_group.name=Nobody"]
        ).create_ticket(session, {}, key="t2")


def _with_email(email: str) -> SupportSession:
    return dataclasses.replace(
        sample_session(), custom_attributes=[CustomAttribute("customer_email", "E-mail", email)]
    )


async def test_a_dynamic_lookup_that_finds_nothing_leaves_the_field_empty(
    sn: Instance, make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    # What the customer typed is not a user of the instance: the ticket is still made.
    connector = make(create_dynamic_lookup_fields=["caller_id=sys_user.email=customer_email"])
    session = _with_email("nobody@elsewhere.example")
    with caplog.at_level("INFO", logger="rsbridge.connectors.servicenow"):
        ticket = await connector.create_ticket(session, {}, key="t-miss")
    record = sn.state.get("incident", ticket.id)
    assert record is not None and record["caller_id"] == ""
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "caller_id" in logged and "sys_user.email" in logged and session.lsid in logged
    # A known address still fills it.
    known = await connector.create_ticket(_with_email("abel.tuter@example.com"), {}, key="t-hit")
    assert (sn.state.get("incident", known.id) or {})["caller_id"] == sn.demo.ids["abel.tuter"]


async def test_a_dynamic_lookup_can_fall_back_to_a_static_value(
    sn: Instance, make: Factory
) -> None:
    connector = make(
        create_dynamic_lookup_fields=[
            "caller_id=sys_user.email=customer_email|david.loo@example.com"
        ]
    )
    for key, session in (
        ("t-unknown", _with_email("nobody@elsewhere.example")),
        ("t-empty", dataclasses.replace(sample_session(), custom_attributes=[])),
    ):
        ticket = await connector.create_ticket(session, {}, key=key)
        record = sn.state.get("incident", ticket.id)
        assert record is not None and record["caller_id"] == sn.demo.ids["david.loo"], key
    # A fallback that names nothing is the administrator's mistake: permanent, and named.
    broken = make(
        create_dynamic_lookup_fields=["caller_id=sys_user.email=customer_email|ghost@example.com"]
    )
    with pytest.raises(ConnectorPermanentError, match="fallback"):
        await broken.create_ticket(_with_email("nobody@elsewhere.example"), {}, key="t-ghost")
    with pytest.raises(ConfigurationError, match="create_dynamic_lookup_fields"):
        make(create_dynamic_lookup_fields=["caller_id=sys_user.email=customer_email|"])


async def test_a_lookup_while_the_instance_is_down_stays_retryable(
    sn: Instance, make: Factory
) -> None:
    connector = make(create_dynamic_lookup_fields=["caller_id=sys_user.email=customer_email"])
    await connector.find_ticket("INC0010001")  # logged in
    sn.state.fail_next(5, status=503)
    with pytest.raises(ConnectorRetryableError):
        await connector.create_ticket(_with_email("abel.tuter@example.com"), {}, key="t-down")
    assert sn.state.query("incident", f"sys_id={stable_id('t-down', 'ticket')}") == []


async def test_other_record_types_write_back_their_own_attribute(make: Factory) -> None:
    connector = make(create_table="interaction")
    ticket = await connector.create_ticket(sample_session(), {}, key="t1")
    assert ticket.kind == "interaction"
    assert connector.live_session_attributes(ticket) == {"snow_interaction_id": ticket.id}


async def test_ticket_context_for_actions(sn: Instance, make: Factory) -> None:
    connector = make()
    context = await connector.ticket_context("INC0010001")
    record = sn.state.get("incident", context.ticket.id)
    assert record is not None
    assert context.state == record["state"]
    assert context.closed is False
    if record["assigned_to"]:
        assert (
            context.assigned_rep
            == sn.state.get("sys_user", record["assigned_to"])[  # type: ignore[index]
                "user_name"
            ]
        )
    assert context.session_attributes["snow_task_id"] == context.ticket.id
    assert context.session_attributes["external_key"] == "INC0010001"
    closed = [n for n in sn.demo.ids if n.startswith("INC")]
    states = {n: (sn.state.get("incident", sn.demo.ids[n]) or {}).get("state") for n in closed}
    resolved = next(n for n, s in states.items() if s in ("6", "7"))
    assert (await connector.ticket_context(resolved)).closed is True


async def test_rep_usernames_and_configuration_items(sn: Instance, make: Factory) -> None:
    connector = make()
    assert await connector.rep_username("jsmith") == "jsmith"
    assert await connector.rep_username(sn.demo.ids["jsmith"]) == "jsmith"
    assert await connector.rep_username("nobody.here") is None
    ci_name = next(n for n in sn.demo.ids if n.startswith(("ws-", "srv-")))
    ci = await connector.find_configuration_item(ci_name)
    assert ci.id == sn.demo.ids[ci_name] and ci.name == ci_name
    with pytest.raises(TicketNotFoundError):
        await connector.find_configuration_item("no-such-host")
    links = connector.custom_links(None)
    assert any("%SESSION.CUSTOM.SNOW_TASK_ID%" in link.url for link in links)


async def test_notes_are_written_once(sn: Instance, make: Factory) -> None:
    connector = make()
    ticket = await connector.find_ticket("INC0010001")
    first = await connector.write_note(ticket, NoteDelivery("n1", "Session key 1234567"))
    again = await connector.write_note(ticket, NoteDelivery("n1", "Session key 1234567"))
    assert again.detail.get("already") == "written"
    assert first.ref
    notes = [e for e in sn.state.journal(ticket.id) if "Session key 1234567" in e["value"]]
    assert len(notes) == 1


async def test_concurrent_imports_of_one_session(sn: Instance, make: Factory) -> None:
    connector = make()
    ticket = Ticket(sn.demo.ids["INC0010001"], "INC0010001", kind="incident")
    await asyncio.gather(
        *(connector.write_session_report(ticket, session_delivery("k1")) for _ in range(3))
    )
    assert len(rows(sn, "u_rs_session")) == 1


def test_the_survey_delivery_has_answers() -> None:
    survey = ExitSurvey(1, [SurveyAnswer("q", "a")])
    assert survey.answer("q") == "a"


# --- failures part-way (found in review) ------------------------------------------------


async def test_a_refused_part_is_written_by_the_retry_after_the_fix(
    sn: Instance, make: Factory
) -> None:
    """The Batch API serves every sub-request even after one failed: the session must not
    be marked complete then, so that a retry after the fix writes what was refused."""
    sn.state.set_table_acl("u_rs_session_event", ["itil"], ["admin"])
    connector = make()
    ticket = await connector.find_ticket("INC0010001")
    with pytest.raises(ConnectorPermanentError, match="roles"):
        await connector.write_session_report(ticket, session_delivery("k1"))
    (row,) = rows(sn, "u_rs_session")
    assert row["u_import_state"] == "importing"
    sn.state.set_table_acl("u_rs_session_event", ["itil"], ["itil"])
    await connector.write_session_report(ticket, session_delivery("k1"))
    assert len(rows(sn, "u_rs_session_event")) == len(sample_session().events)
    assert rows(sn, "u_rs_session")[0]["u_import_state"] == "complete"
    values = [e["value"] for e in sn.state.journal(ticket.id, "work_notes")]
    assert len(values) == len(set(values))


async def test_a_failed_attachment_is_attached_by_the_retry(sn: Instance, make: Factory) -> None:
    connector = make(attach_report=True)
    ticket = await connector.find_ticket("INC0010001")
    original = connector.client.attach

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectorRetryableError("no answer")

    connector.client.attach = down  # type: ignore[method-assign]
    with pytest.raises(ConnectorRetryableError):
        await connector.write_session_report(ticket, session_delivery("k1"))
    connector.client.attach = original  # type: ignore[method-assign]
    await connector.write_session_report(ticket, session_delivery("k1"))
    assert len(sn.state.query("sys_attachment", f"table_sys_id={ticket.id}")) == 1


async def test_without_session_records_journal_entries_are_still_once(
    sn: Instance, make: Factory
) -> None:
    sn.state.journal_rows_admin_only = True  # the journal table is hidden, as ACLs often do
    connector = make(write_session_records=False)
    ticket = await connector.find_ticket("INC0010001")
    before = len(sn.state.journal(ticket.id))
    await connector.write_session_report(ticket, session_delivery("k1"))
    written = len(sn.state.journal(ticket.id)) - before
    assert written == 2  # chat transcript, session end
    await connector.write_session_report(ticket, session_delivery("k1"))
    assert len(sn.state.journal(ticket.id)) - before == written
    await connector.write_note(ticket, NoteDelivery("n1", "Key 7654321"))
    await connector.write_note(ticket, NoteDelivery("n1", "Key 7654321"))
    assert sum("Key 7654321" in e["value"] for e in sn.state.journal(ticket.id)) == 1


async def test_survey_effects_are_checked_one_by_one(sn: Instance, make: Factory) -> None:
    ticket = await make().find_ticket("INC0010001")
    await make().write_survey(ticket, survey_delivery("s:survey:customer:0"))
    # The answers are in; the note and the state change were not (say, a cut batch).
    connector = make(log_surveys=True, survey_state_rules=["customer:rating=5 -> 2"])
    await connector.write_survey(ticket, survey_delivery("s:survey:customer:0"))
    assert sn.state.get("incident", ticket.id)["state"] == "2"  # type: ignore[index]
    notes = [e for e in sn.state.journal(ticket.id) if "customer survey 0" in e["value"]]
    assert len(notes) == 1
    again = await connector.write_survey(ticket, survey_delivery("s:survey:customer:0"))
    assert again.detail.get("already") == "complete"
    assert len([e for e in sn.state.journal(ticket.id) if "customer survey 0" in e["value"]]) == 1


async def test_a_token_endpoint_outage_is_retryable(sn: Instance, make: Factory) -> None:
    client_id, client_secret = sn.demo.oauth_client
    connector = make(auth="oauth_password", client_id=client_id, client_secret=client_secret)
    sn.state.fail_next(1, status=503)
    with pytest.raises(ConnectorRetryableError, match="token endpoint"):
        await connector.find_ticket("INC0010001")
    assert (await connector.find_ticket("INC0010001")).number == "INC0010001"


async def test_closed_states_can_name_a_record_type(sn: Instance, make: Factory) -> None:
    change = next(n for n in sn.demo.ids if n.startswith("CHG"))
    connector = make()
    sn.state.update("change_request", sn.demo.ids[change], {"state": "3"})
    assert (await connector.ticket_context(change)).closed is True
    sn.state.update("change_request", sn.demo.ids[change], {"state": "-1"})
    assert (await connector.ticket_context(change)).closed is False


@pytest.mark.parametrize(
    ("table", "closed", "open_state"),
    [
        ("sc_request", ["3", "4", "7"], "2"),
        ("sc_task", ["3", "4", "7"], "1"),
        ("sc_req_item", ["3", "4", "7"], "2"),
        ("new_call", ["3", "4", "7"], "2"),
        ("interaction", ["closed_complete", "closed_abandoned"], "work_in_progress"),
        ("incident", ["6", "7", "8"], "3"),
        ("problem", ["106", "107"], "104"),
    ],
)
async def test_closed_states_of_every_record_type(
    sn: Instance, make: Factory, table: str, closed: list[str], open_state: str
) -> None:
    # The default closed_states know each type's own state values (reference section 1).
    sys_id = sn.state.insert(table, {"short_description": "a task"})["sys_id"]
    connector = make()
    for state in closed:
        sn.state.update(table, sys_id, {"state": state})
        context = await connector.ticket_context(sys_id)
        assert (context.state, context.closed) == (state, True), table
    sn.state.update(table, sys_id, {"state": open_state})
    context = await connector.ticket_context(sys_id)
    assert (context.state, context.closed) == (open_state, False), table


async def test_an_inactive_task_is_closed_whatever_its_state(sn: Instance, make: Factory) -> None:
    # A table whose states closed_states does not list: ServiceNow's own "active" decides.
    sys_id = sn.state.insert("sc_req_item", {"short_description": "x"})["sys_id"]
    sn.state.update("sc_req_item", sys_id, {"state": "2"})
    connector = make(closed_states=["incident=7"])
    assert (await connector.ticket_context(sys_id)).closed is False
    sn.state.update("sc_req_item", sys_id, {"state": "3"})  # the instance sets active=false
    assert (await connector.ticket_context(sys_id)).closed is True


async def test_a_state_that_cannot_be_read_counts_as_closed(sn: Instance, make: Factory) -> None:
    # What a field ACL on "state" or an empty value looks like to the integration user.
    incident = sn.demo.ids["INC0010001"]
    sn.state.update("incident", incident, {"state": ""})
    context = await make().ticket_context("INC0010001")
    assert context.state is None
    assert context.closed is True


PAYLOAD = "[code]<img src=x onerror=alert(1)>[/code]"


def _hostile_session() -> SupportSession:
    """A session whose customer typed HTML in [code] tags into the chat, a note and a name."""
    session = sample_session()
    moment = session.start_time or datetime(2025, 1, 1, tzinfo=UTC)
    who = Actor("customer", f"Eve {PAYLOAD}")
    events = [
        SessionEvent(moment, EventType.CHAT_MESSAGE, performed_by=who, body=f"hi {PAYLOAD}"),
        SessionEvent(moment, EventType.SESSION_NOTE_ADDED, body=PAYLOAD.upper()),
    ]
    return dataclasses.replace(
        session,
        events=[*session.events, *events],
        primary_customer=PrimaryCustomer(f"Eve {PAYLOAD}"),
        custom_attributes=[CustomAttribute("customer_email", "E-mail", PAYLOAD)],
    )


def _no_html(sn: Instance, sys_id: str) -> str:
    shown = activity_html(sn.state, sys_id)
    assert "<img" not in shown.lower(), shown
    return shown


async def test_session_text_cannot_open_a_code_block_in_the_journal(
    sn: Instance, make: Factory
) -> None:
    session = _hostile_session()
    report = Renderer().render(session)
    assert PAYLOAD in report.parts["chat"].text  # the templates keep what the customer typed
    connector = make(log_surveys=True)
    ticket = await connector.find_ticket("INC0010001")
    delivery = dataclasses.replace(session_delivery("k1"), session=session, report=report)
    await connector.write_session_report(ticket, delivery)
    survey = survey_delivery("k1/survey")
    rendered = RenderedPart(f"Comments: {PAYLOAD}", "")
    await connector.write_survey(ticket, dataclasses.replace(survey, rendered=rendered))
    await connector.write_note(ticket, NoteDelivery("n1", f"by {PAYLOAD}"))
    shown = _no_html(sn, ticket.id)
    # The text is still there for the technician to read, as text.
    assert shown.count("onerror=alert(1)") >= 4
    # Replays find what they wrote: nothing twice.
    before = len(sn.state.journal(ticket.id))
    await make().write_note(ticket, NoteDelivery("n1", f"by {PAYLOAD}"))
    await connector.write_session_report(ticket, delivery)
    assert len(sn.state.journal(ticket.id)) == before


async def test_session_values_cannot_open_a_code_block_in_a_created_ticket(
    sn: Instance, make: Factory
) -> None:
    connector = make(create_dynamic_fields=["work_notes=customer_email"])
    ticket = await connector.create_ticket(_hostile_session(), {}, key="t-code")
    assert sn.state.journal(ticket.id)
    _no_html(sn, ticket.id)


class _ForwardProxy(http.server.BaseHTTPRequestHandler):
    """A plain HTTP forward proxy: absolute-form requests relayed, each one recorded."""

    seen: ClassVar[list[str]] = []

    def _relay(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        with httpx.Client() as client:
            answer = client.request(self.command, self.path, headers=headers, content=body)
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in _HOP | {"content-length", "content-encoding"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PATCH = _relay  # noqa: N815 (http.server's handler names)

    def log_message(self, format: str, *args: object) -> None:
        pass


_HOP = {"connection", "proxy-connection", "keep-alive", "transfer-encoding", "proxy-authorization"}


async def test_calls_go_through_the_configured_proxy(sn: Instance, make: Factory) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ForwardProxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        proxy = f"http://127.0.0.1:{server.server_address[1]}"
        connector = make(proxy=proxy)
        ticket = await connector.find_ticket("INC0010001")
        await connector.write_session_report(ticket, session_delivery("k1"))
    finally:
        server.shutdown()
        server.server_close()
    assert any("/api/now/table/incident" in line for line in _ForwardProxy.seen)
    assert any("/api/now/v1/batch" in line for line in _ForwardProxy.seen)
    assert len(rows(sn, "u_rs_session")) == 1


@pytest.mark.parametrize(
    "settings", [{}, {"attach_report": True}, {"attach_report": True, "attachment_format": "txt"}]
)
async def test_a_session_report_reads_only_the_templates_it_declares(
    sn: Instance, make: Factory, settings: dict[str, Any]
) -> None:
    """The engine renders only ``report_templates()``: reading more would get "" ."""
    connector = make(**settings)
    ticket = await connector.find_ticket("INC0010001")
    delivery, reads = reading(session_delivery("k1"))
    await connector.write_session_report(ticket, delivery)
    assert reads == connector.report_templates()
