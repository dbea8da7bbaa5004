"""The Agiloft connector against the simulated knowledge base, over real HTTP on loopback.

The KB gets the session details table and the case fields from the connector's own table
model (``rsbridge_definitions``, merged as an administrator adds them), so the tests
exercise the fields an administrator creates.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

from rsbridge.connectors.agiloft.client import search_value
from rsbridge.connectors.agiloft.connector import AgiloftConnector
from rsbridge.connectors.agiloft.demo import prepared_kb
from rsbridge.connectors.base import (
    Association,
    Connector,
    NoteDelivery,
    RenderedPart,
    RenderedReport,
)
from rsbridge.connectors.text import digest_key as _key_text
from rsbridge.errors import (
    ConfigurationError,
    ConnectorAuthError,
    ConnectorPermanentError,
    ConnectorRetryableError,
    TicketNotFoundError,
)
from rsbridge.sim.agiloft import DemoSeed, SimAgiloftState, create_app
from rsbridge.sim.serve import SwappableApp, serve_in_thread
from tests.conftest import FakeClock

from .contract import ConnectorContract, sample_session, session_delivery, survey_delivery
from .report_reads import reading

TRUSTED = Association("external_key", True)


@dataclasses.dataclass
class KB:
    state: SimAgiloftState
    demo: DemoSeed
    url: str
    clock: FakeClock

    def rows(self, table: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return [
                {"id": r.id, **{k: r.values.get(k) for k in r.values}, "_files": r.files}
                for r in self.state.records[table].values()
            ]

    def sessions(self) -> list[dict[str, Any]]:
        return self.rows("bomgar_session_details")

    def case(self, key: str) -> dict[str, Any]:
        return self.case_by_id(self.demo.ids[key])

    def case_by_id(self, case_id: int) -> dict[str, Any]:
        return next(r for r in self.rows("case") if r["id"] == case_id)

    def calls(self, operation: str | None = None) -> int:
        return sum(1 for r in self.state.requests if operation in (None, r.operation))


@pytest.fixture(scope="module")
def http_server() -> Iterator[tuple[SwappableApp, str]]:
    swappable = SwappableApp()
    with serve_in_thread(swappable) as url:
        yield swappable, url


@pytest.fixture
def kb(http_server: tuple[SwappableApp, str]) -> KB:
    clock = FakeClock(1_767_000_000.0)
    state, demo = prepared_kb(clock)
    http_server[0].app = create_app(state)
    return KB(state, demo, http_server[1], clock)


Factory = Callable[..., AgiloftConnector]


@pytest.fixture
async def make(kb: KB) -> Any:
    made: list[Connector] = []

    def factory(**settings: object) -> AgiloftConnector:
        login, password = kb.demo.integration
        raw: dict[str, object] = {
            "kb_url": kb.url,
            "kb": kb.demo.kb,
            "login": login,
            "password": password,
            **settings,
        }
        connector = AgiloftConnector(AgiloftConnector.validate_settings(raw))
        made.append(connector)
        return connector

    yield factory
    for connector in made:
        await connector.aclose()


class TestContract(ConnectorContract):
    connector_class = AgiloftConnector
    unknown_ticket_ref = "99999"
    create_fields: ClassVar[dict[str, str]] = {"priority": "High"}

    @pytest.fixture
    async def connector(self, kb: KB, make: Factory) -> Connector:
        self.kb = kb
        type(self).known_ticket_ref = str(kb.demo.ids["printer"])
        return make()

    def valid_settings(self) -> dict[str, object]:
        return {
            "kb_url": "https://example.agiloft.com",
            "kb": "Demo",
            "login": "u",
            "password": "p",
        }

    def effects(self, key: str) -> int:
        kb = self.kb
        if key.startswith("ticket-"):
            return sum(r.get("bomgar_import_key") == _key_text(key) for r in kb.rows("case"))
        lsid = sample_session().lsid
        if "session_report" in key or key == "concurrent":
            return sum(r.get("session_id") == lsid for r in kb.sessions())
        if "survey" in key:
            marker = f"[rsbridge survey {_key_text(key)[:12]}]"
            return sum(
                str(v).count(marker)
                for r in kb.sessions()
                for v in (r.get("customer_survey"), r.get("rep_survey"))
            )
        marker = f"[rsbridge ref {_key_text(key)[:16]}]"
        return sum(str(r.get("additional_notes")).count(marker) for r in kb.rows("case"))


# --- sessions ---------------------------------------------------------------------------


def _delivery(key: str = "d-1", **kwargs: Any) -> Any:
    report = RenderedReport(
        RenderedPart("full", "<h1>Session</h1><p>report</p>"),
        {"chat": RenderedPart("Customer: the printer jams\nRep: on it", "")},
    )
    return dataclasses.replace(session_delivery(key, association=TRUSTED), report=report, **kwargs)


async def test_a_session_is_one_upsert_with_the_report_and_the_technician(
    kb: KB, make: Factory
) -> None:
    connector = make()
    ticket = await connector.find_ticket(str(kb.demo.ids["printer"]))
    session = dataclasses.replace(sample_session())
    rep = session.representatives[0]
    session.representatives[0] = dataclasses.replace(rep, username="alice.smith", primary=True)
    before = kb.calls()
    await connector.write_session_report(ticket, _delivery(session=session))
    # One user lookup (then cached) and one EWUpsert.
    assert kb.calls() - before == 2 and kb.calls("EWUpsert") == 1
    [record] = kb.sessions()
    assert record["session_id"] == session.lsid
    assert record["session_report"] == "<h1>Session</h1><p>report</p>"
    assert record["chat_transcript"] == "Customer: the printer jams\nRep: on it"
    with kb.state.lock:
        stored = kb.state.records["bomgar_session_details"][record["id"]]
        assert stored.links["support_case"] == [kb.demo.ids["printer"]]
        assert stored.links["technician"] == [kb.demo.ids["asmith"]]
    again = kb.calls()
    await connector.write_session_report(ticket, _delivery(session=session))
    assert kb.calls() - again == 1, "the user is cached; the replay is one upsert"
    assert len(kb.sessions()) == 1


async def test_an_unknown_representative_does_not_block_the_import(kb: KB, make: Factory) -> None:
    connector = make()
    ticket = await connector.find_ticket(str(kb.demo.ids["printer"]))
    session = sample_session()
    session.representatives[0] = dataclasses.replace(
        session.representatives[0], username="nobody-here", primary=True
    )
    result = await connector.write_session_report(ticket, _delivery(session=session))
    assert "no single Agiloft user" in result.detail["technician"]
    assert len(kb.sessions()) == 1


async def test_the_report_as_a_file_is_replaced_on_a_replay(kb: KB, make: Factory) -> None:
    connector = make(attach_report=True)
    ticket = await connector.find_ticket(str(kb.demo.ids["printer"]))
    await connector.write_session_report(ticket, _delivery())
    await connector.write_session_report(ticket, _delivery())
    [record] = kb.sessions()
    files = record["_files"]["session_files"]
    assert len(files) == 1 and files[0].data == b"<h1>Session</h1><p>report</p>"


async def test_surveys_are_added_to_the_session_record_once(kb: KB, make: Factory) -> None:
    connector = make()
    ticket = await connector.find_ticket(str(kb.demo.ids["printer"]))
    await connector.write_session_report(ticket, _delivery())
    first = survey_delivery("sv-1", kind="customer")
    second = survey_delivery("sv-2", kind="customer")
    await connector.write_survey(ticket, first)
    await connector.write_survey(ticket, first)
    await connector.write_survey(ticket, second)
    [record] = kb.sessions()
    text = record["customer_survey"]
    assert text.count("[rsbridge survey") == 2
    assert record["session_report"], "the survey did not replace the report"


# --- tickets and actions ----------------------------------------------------------------


async def test_cases_are_found_by_id_only(kb: KB, make: Factory) -> None:
    connector = make()
    ticket = await connector.find_ticket(str(kb.demo.ids["vpn"]))
    assert ticket.id == str(kb.demo.ids["vpn"]) and ticket.kind == "case"
    for junk in ("hello", "1 || id=2", "1' || id!='0", ""):
        with pytest.raises(TicketNotFoundError):
            await connector.find_ticket(junk)


async def test_ticket_context_reads_every_assignment_source(kb: KB, make: Factory) -> None:
    connector = make()
    printer = kb.demo.ids["printer"]
    kb.state.update(
        "case", printer,
        {"bomgar_representative": ["team:Network Team"],
         "bomgar_jump_client_search_criteria": ["WKS-ALLEN"]},
    )  # fmt: skip
    context = await connector.ticket_context(str(printer))
    assert context.closed is False and context.state == "Open"
    assert context.assigned_rep == "jdoe"  # John Doe's BeyondTrust username
    assert context.assigned_team == "Tier 1 Support"
    assert context.queue == "team:Network Team"
    assert context.caller_email == "allen@example.com"
    assert context.configuration_item is not None
    assert context.configuration_item.name == "WKS-ALLEN"
    laptop = await connector.ticket_context(str(kb.demo.ids["laptop"]))
    assert laptop.closed is True and laptop.assigned_rep == "alice.smith"
    assert await connector.rep_username("asmith") == "alice.smith"
    assert await connector.rep_username("nobody") is None


async def test_notes_and_keys_are_written_into_the_case(kb: KB, make: Factory) -> None:
    connector = make()
    ticket = await connector.find_ticket(str(kb.demo.ids["printer"]))
    note = NoteDelivery("n-1", "Session key 1234567 generated")
    await connector.write_note(ticket, note)
    again = await connector.write_note(ticket, note)
    assert again.detail == {"already": "written"}
    notes = kb.case("printer")["additional_notes"]
    assert notes.count("Session key 1234567 generated") == 1
    from datetime import UTC, datetime

    assert await connector.record_session_key(
        ticket, "1234567", "https://support.example.com/?ak=1234567", datetime.now(UTC)
    )
    case = kb.case("printer")
    assert case["bomgar_session_key"] == "1234567"
    assert case["bomgar_session_url"] == "https://support.example.com/?ak=1234567"


async def test_auto_create_is_one_case_per_key(kb: KB, make: Factory) -> None:
    connector = make()
    session = sample_session()
    first, second = await asyncio.gather(
        connector.create_ticket(session, {}, key="k1"),
        connector.create_ticket(session, {}, key="k1"),
    )
    assert first == second
    assert sum(r.get("bomgar_import_key") == _key_text("k1") for r in kb.rows("case")) == 1


# --- errors -----------------------------------------------------------------------------


async def test_token_refresh_and_expiry(kb: KB, make: Factory) -> None:
    connector = make()
    ticket = str(kb.demo.ids["printer"])
    client = connector.client
    client._clock = kb.clock  # the connector's own refresh clock follows the KB's
    await connector.find_ticket(ticket)
    assert client.logins == 1
    kb.clock.now += 14.5 * 60  # within the refresh margin: refreshed before it expires
    await connector.find_ticket(ticket)
    assert client.logins == 2
    assert not any(r.status == 400 for r in kb.state.requests), "no expired token was sent"
    kb.clock.now += 20 * 60  # expired at the KB while the client thinks it is fresh
    client._expires = kb.clock.now + 600
    await connector.find_ticket(ticket)
    assert client.logins >= 3


async def test_documented_errors_are_classified(kb: KB, make: Factory) -> None:
    wrong = make(password="Wr0ng-Secret-Value")
    with pytest.raises(ConnectorAuthError) as caught:
        await wrong.find_ticket("1")
    assert "Wr0ng-Secret-Value" not in str(caught.value)
    guest_login, guest_password = kb.demo.no_rest
    guest = make(login=guest_login, password=guest_password)
    with pytest.raises(ConnectorAuthError, match="Groups allowed for REST"):
        await guest.find_ticket("1")
    other_kb = make(kb="demo")
    with pytest.raises(ConnectorPermanentError, match="case-sensitive"):
        await other_kb.find_ticket("1")
    connector = make()
    await connector.find_ticket(str(kb.demo.ids["printer"]))
    kb.state.down = True
    with pytest.raises(ConnectorRetryableError):
        await connector.find_ticket(str(kb.demo.ids["printer"]))
    kb.state.down = False
    kb.state.html_next(1, status=502)
    with pytest.raises(ConnectorRetryableError, match="HTML page"):
        await connector.find_ticket(str(kb.demo.ids["printer"]))


async def test_a_missing_column_is_permanent_and_check_names_them_all(
    kb: KB, make: Factory
) -> None:
    connector = make()
    assert "KB Demo" in (await connector.check()).summary
    renamed = make(fields=["sessions.chat_transcript=chat_text", "case.session_key=bt_key"])
    with pytest.raises(ConnectorPermanentError) as caught:
        await renamed.check()
    message = str(caught.value)
    assert "bomgar_session_details.chat_text is missing" in message
    assert "case.bt_key is missing" in message
    ticket = await renamed.find_ticket(str(kb.demo.ids["printer"]))
    with pytest.raises(ConnectorPermanentError, match="No column chat_text") as write:
        await renamed.write_session_report(ticket, _delivery())
    assert not isinstance(write.value, ConnectorRetryableError)


def test_bad_settings_are_named() -> None:
    base = {"kb_url": "https://a.example.com", "kb": "Demo", "login": "u", "password": "p"}
    with pytest.raises(ConfigurationError, match="agiloft fields"):
        AgiloftConnector(AgiloftConnector.validate_settings({**base, "fields": ["case.nope=x"]}))
    with pytest.raises(ConfigurationError, match="agiloft tables"):
        AgiloftConnector(AgiloftConnector.validate_settings({**base, "tables": ["case=a b"]}))


def test_search_values_are_quoted() -> None:
    assert search_value("O'Brien") == "'O''Brien'"
    assert search_value("a\nb") == "'ab'"


# --- review: users, lookups, creations, quoting -------------------------------------------


async def test_representatives_are_matched_by_beyondtrust_username_first(
    kb: KB, make: Factory
) -> None:
    people = "contacts.employees"
    kb.state.update(people, kb.demo.ids["jdoe"], {"bomgar_username": ["john.bt"]})
    bob = kb.state.create(
        people, {"_login": ["bob"], "full_name": ["Bob Bee"], "bomgar_username": ["jdoe"]}
    )
    connector = make()
    assert await connector._user_login("jdoe") == "bob", "Bob's BeyondTrust name wins"
    assert await connector._user_login("john.bt") == "jdoe"
    assert await connector._user_login("asmith") is None, "asmith is alice.smith there"
    assert bob


async def test_an_ambiguous_assignee_is_not_guessed(kb: KB, make: Factory) -> None:
    kb.state.create(
        "contacts.employees",
        {"_login": ["jdoe2"], "full_name": ["John Doe"], "bomgar_username": ["john.other"]},
    )
    context = await make().ticket_context(str(kb.demo.ids["printer"]))
    assert context.assigned_rep is None


async def test_a_failed_user_lookup_does_not_stop_the_import(kb: KB, make: Factory) -> None:
    connector = make(fields=["people.username=bt_user"])  # no such column in this KB
    ticket = await connector.find_ticket(str(kb.demo.ids["printer"]))
    result = await connector.write_session_report(ticket, _delivery())
    assert "No column bt_user" in result.detail["technician"]
    assert len(kb.sessions()) == 1


async def test_a_repeated_creation_leaves_the_case_as_technicians_changed_it(
    kb: KB, make: Factory
) -> None:
    connector = make()
    session = sample_session()
    created = await connector.create_ticket(session, {"priority": "High"}, key="k-edit")
    kb.state.update("case", int(created.id), {"summary": ["Edited by a technician"]})
    again = await connector.create_ticket(session, {"priority": "High"}, key="k-edit")
    assert again == created
    assert kb.case_by_id(int(created.id))["summary"] == "Edited by a technician"


async def test_awkward_values_are_looked_up_as_values(kb: KB, make: Factory) -> None:
    connector = make()
    for value in ("evil\\", "O'Brien", "x' || _login!='", "a\\' || id!='0"):
        assert await connector._user_login(value) is None
    assert search_value("evil\\") == "'evil\\\\'"


async def test_sessions_of_one_representative_share_one_user_lookup(kb: KB, make: Factory) -> None:
    kb.state.latency = 0.01
    connector = make()
    ticket = await connector.find_ticket(str(kb.demo.ids["printer"]))
    before = kb.calls("EWSearch")
    await asyncio.gather(*(connector._user_login("alice.smith") for _ in range(5)))
    assert kb.calls("EWSearch") - before == 1
    assert ticket


async def test_oauth_client_credentials(kb: KB, make: Factory) -> None:
    client_id, secret = kb.demo.oauth_client
    connector = make(auth="client_credentials", login=None, password=None,
                     client_id=client_id, client_secret=secret)  # fmt: skip
    ticket = await connector.find_ticket(str(kb.demo.ids["printer"]))
    await connector.write_session_report(ticket, _delivery())
    assert len(kb.sessions()) == 1
    assert any(r.operation == "otoken" and r.status == 200 for r in kb.state.requests)
    assert not any(r.operation == "EWLogin" for r in kb.state.requests)
    wrong = make(auth="client_credentials", client_id=client_id, client_secret="Wr0ng-Secret")
    with pytest.raises(ConnectorAuthError, match="invalid_client") as caught:
        await wrong.find_ticket("1")
    assert "Wr0ng-Secret" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="client_id, client_secret"):
        make(auth="client_credentials", client_id=None, client_secret=None)


@pytest.mark.parametrize("settings", [{}, {"attach_report": True}])
async def test_a_session_report_reads_only_the_templates_it_declares(
    kb: KB, make: Factory, settings: dict[str, Any]
) -> None:
    """The engine renders only ``report_templates()``: reading more would get "" ."""
    connector = make(**settings)
    ticket = await connector.find_ticket(str(kb.demo.ids["printer"]))
    delivery, reads = reading(session_delivery("d-1", association=TRUSTED))
    await connector.write_session_report(ticket, delivery)
    assert reads == connector.report_templates()
