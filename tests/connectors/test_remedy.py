"""The Remedy connector against the simulated AR System server, over real HTTP on loopback.

The server gets rsbridge's session forms from the same model the definition file is
written from, so the tests exercise the forms an AR administrator imports.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from rsbridge.appliance.report_model import SessionEvent
from rsbridge.connectors.base import (
    Association,
    Connector,
    NoteDelivery,
    RenderedPart,
    RenderedReport,
)
from rsbridge.connectors.remedy.connector import RemedyConnector
from rsbridge.connectors.remedy.forms import EVENTS_PER_ROW, sim_definitions
from rsbridge.connectors.remedy.imports import DETAIL_CHARS
from rsbridge.connectors.remedy.records import row_key, session_key
from rsbridge.errors import (
    ConfigurationError,
    ConnectorAuthError,
    ConnectorPermanentError,
    ConnectorRetryableError,
    TicketNotFoundError,
)
from rsbridge.sim.remedy import DemoSeed, SimRemedyState, create_app, load_forms, seed_demo
from rsbridge.sim.serve import SwappableApp, serve_in_thread
from tests.conftest import FakeClock

from .contract import (
    APPLIANCE_ID,
    INTEGRATION,
    ConnectorContract,
    sample_session,
    session_delivery,
    survey_delivery,
)

TRUSTED = Association("external_key", True)


@dataclasses.dataclass
class Server:
    state: SimRemedyState
    demo: DemoSeed
    url: str
    clock: FakeClock

    def entries(self, form: str) -> list[dict[str, Any]]:
        """Every entry of ``form`` as values by field name (stored form)."""
        fdef = self.state.forms[form]
        with self.state.lock:
            return [
                {f.name: e.values.get(f.id) for f in fdef.fields}
                for e in self.state.stores[fdef.store].values()
            ]

    def work_logs(self, number: str) -> list[dict[str, Any]]:
        return [w for w in self.entries("HPD:WorkLog") if w["Incident Number"] == number]

    def calls(self) -> int:
        return len(self.state.requests)


@pytest.fixture(scope="module")
def http_server() -> Iterator[tuple[SwappableApp, str]]:
    swappable = SwappableApp()
    with serve_in_thread(swappable) as url:
        yield swappable, url


@pytest.fixture
def ar(http_server: tuple[SwappableApp, str]) -> Server:
    clock = FakeClock(1_767_000_000.0)
    state = SimRemedyState(clock=clock)
    demo = seed_demo(state)
    state.define_forms(load_forms(sim_definitions()))
    http_server[0].app = create_app(state)
    return Server(state, demo, http_server[1], clock)


Factory = Callable[..., RemedyConnector]


@pytest.fixture
async def make(ar: Server) -> Any:
    made: list[Connector] = []

    def factory(**settings: object) -> RemedyConnector:
        user, password = ar.demo.integration
        raw: dict[str, object] = {
            "server_url": ar.url,
            "username": user,
            "password": password,
            **settings,
        }
        connector = RemedyConnector(RemedyConnector.validate_settings(raw))
        made.append(connector)
        return connector

    yield factory
    for connector in made:
        await connector.aclose()


class TestContract(ConnectorContract):
    connector_class = RemedyConnector
    unknown_ticket_ref = "INC000000009999"
    create_fields: ClassVar[dict[str, str]] = {"Urgency": "3-Medium"}

    @pytest.fixture
    async def connector(self, ar: Server, make: Factory) -> Connector:
        self.ar = ar
        type(self).known_ticket_ref = ar.demo.ids["printer"]
        return make()

    def valid_settings(self) -> dict[str, object]:
        return {"server_url": "https://remedy.example.com:8008", "username": "u", "password": "p"}

    def effects(self, key: str) -> int:
        ar = self.ar
        if key.startswith("ticket-"):
            marker = f"rsbridge-ref-{row_key(key, 'incident')[:24]}"
            return sum(
                marker in (i["Detailed Decription"] or "") for i in ar.entries("HPD:Help Desk")
            )
        lsid = sample_session().lsid
        if "session_report" in key or key == "concurrent":
            sessions = [s for s in ar.entries("RSB:Session") if s["Session ID"] == lsid]
            stem = f"rsb-{row_key(key, 'work-info')[:20]}-0"
            logs = [w for w in ar.entries("HPD:WorkLog") if stem in (w["Description"] or "")]
            assert len(logs) == len(sessions), "one work info entry per session entry"
            return len(sessions)
        if "survey" in key:
            return sum(
                s["Row Key"] == row_key(key, "survey") for s in ar.entries("RSB:Session Survey")
            )
        stem = f"rsb-{row_key(key, 'note')[:20]}"
        return sum(stem in (w["Description"] or "") for w in ar.entries("HPD:WorkLog"))


# --- tickets ----------------------------------------------------------------------------


async def test_tickets_are_found_by_number_of_each_kind(ar: Server, make: Factory) -> None:
    connector = make()
    number = ar.demo.ids["printer"]
    ticket = await connector.find_ticket(number)
    assert (ticket.id, ticket.number, ticket.kind) == (number, number, "incident")
    assert ticket.url and "HPD%3AHelp%20Desk" in ticket.url
    short = "INC" + number[3:].lstrip("0")
    assert (await connector.find_ticket(short.lower())).id == number
    assert (await connector.find_ticket(ar.demo.ids["change"])).kind == "change"
    assert (await connector.find_ticket(ar.demo.ids["request"])).kind == "request"
    for junk in ("hello", "INC000000000001\" OR 'Status' != \"x", "PBI000000000001", "INC 1"):
        with pytest.raises(TicketNotFoundError):
            await connector.find_ticket(junk)


async def test_ticket_context_reads_status_assignee_customer_and_ci(
    ar: Server, make: Factory
) -> None:
    number = ar.demo.ids["printer"]
    ar.state.update(
        "HPD:IncidentInterface",
        f"{number}|{number}",
        {"Assignee Login ID": "jsmith", "Internet E-mail": "allen@example.com",
         "HPD_CI": "ws-0042", "Assigned Group": "Service Desk"},
        "Demo",
    )  # fmt: skip
    connector = make()
    context = await connector.ticket_context(number)
    assert context.closed is False and context.state == "Assigned"
    assert context.assigned_rep == "jsmith" and context.assigned_team == "Service Desk"
    assert context.caller_name == "Allen Allbrook" and context.caller_email == "allen@example.com"
    assert context.configuration_item is not None
    assert context.configuration_item.name == "ws-0042"
    assert context.session_attributes == {"external_key": number}
    resolved = await connector.ticket_context(ar.demo.ids["laptop"])
    assert resolved.closed is True and resolved.state == "Resolved"
    ci = await connector.find_configuration_item("srv-mail-01")
    assert ci.id == ar.demo.ids["srv-mail-01"]
    with pytest.raises(TicketNotFoundError):
        await connector.find_configuration_item("no-such-host")


# --- session import ---------------------------------------------------------------------


def _delivery(key: str = "deliver-1", **kwargs: Any) -> Any:
    report = RenderedReport(
        RenderedPart("full report text", "<p>full</p>"),
        {
            "chat": RenderedPart("Customer: the printer jams\nRep: on it", ""),
            "notes": RenderedPart("Replaced the tray.", ""),
        },
    )
    return dataclasses.replace(session_delivery(key, association=TRUSTED), report=report, **kwargs)


async def test_a_session_lands_as_entries_and_one_work_info_in_few_calls(
    ar: Server, make: Factory
) -> None:
    connector = make()
    ticket = await connector.find_ticket(ar.demo.ids["printer"])
    before = ar.calls()
    result = await connector.write_session_report(ticket, _delivery())
    session = sample_session()
    key = session_key(APPLIANCE_ID, INTEGRATION, session.lsid)
    assert result.ref == key
    [header] = ar.entries("RSB:Session")
    assert header["Session Key"] == key and header["Ticket Number"] == ticket.number
    assert header["Import State"] == 1  # Complete
    assert header["Details"] == "full report text"
    participants = ar.entries("RSB:Session Participant")
    assert len(participants) == len(session.representatives) + len(session.customers)
    events = ar.entries("RSB:Session Event")
    assert len(events) == -(-len(session.events) // EVENTS_PER_ROW)
    assert sum(e["Events"].count("\n") + 1 for e in events) == len(session.events)
    [log] = [w for w in ar.work_logs(ticket.id) if "rsb-" in (w["Description"] or "")]
    assert "the printer jams" in log["Detailed Description"]
    assert "Replaced the tray." in log["Detailed Description"]
    assert header["Work Log IDs"] == log["Work Log ID"]
    # search, create, the children, one work info entry, the final update
    rows = len(participants) + len(events)
    assert ar.calls() - before == 1 + 1 + rows + 1 + 1
    again = ar.calls()
    assert (await connector.write_session_report(ticket, _delivery())).detail == {
        "already": "Complete"
    }
    assert ar.calls() - again == 1


async def test_a_half_done_import_is_finished_without_duplicates(ar: Server, make: Factory) -> None:
    connector = make()
    ticket = await connector.find_ticket(ar.demo.ids["printer"])
    session = sample_session()
    # The third create (a child row) fails: the session entry and one child exist.
    ar.state.faults.clear()
    first_calls = ar.calls()
    original = ar.state.create
    count = {"n": 0}

    def flaky(form: str, raw: Any, user: str, files: Any = None) -> str:
        count["n"] += 1
        if count["n"] == 3:
            from rsbridge.sim.remedy.errors import ARError

            raise ARError(500, 8760, "Internal error")
        return original(form, raw, user, files)

    ar.state.create = flaky  # type: ignore[method-assign,assignment]
    with pytest.raises(ConnectorRetryableError):
        await connector.write_session_report(ticket, _delivery())
    ar.state.create = original  # type: ignore[method-assign]
    assert ar.calls() > first_calls
    await connector.write_session_report(ticket, _delivery())
    participants = ar.entries("RSB:Session Participant")
    assert len(participants) == len(session.representatives) + len(session.customers)
    assert len({p["Row Key"] for p in participants}) == len(participants)
    assert len(ar.entries("RSB:Session")) == 1
    assert len([w for w in ar.work_logs(ticket.id) if "rsb-" in (w["Description"] or "")]) == 1


async def test_work_info_lost_record_is_found_by_its_marker(ar: Server, make: Factory) -> None:
    connector = make()
    ticket = await connector.find_ticket(ar.demo.ids["printer"])
    # The final update fails after the work info was written: the replay must find it.
    ar.state.add_filter(
        __import__("rsbridge.sim.remedy", fromlist=["Filter"]).Filter(
            "RSB:Session", lambda values: values.get(536870928) == 1, 8000, "Not now"
        )
    )
    with pytest.raises(ConnectorPermanentError, match="Not now"):
        await connector.write_session_report(ticket, _delivery())
    ar.state.filters.clear()
    await connector.write_session_report(ticket, _delivery())
    [log] = [w for w in ar.work_logs(ticket.id) if "rsb-" in (w["Description"] or "")]
    [header] = ar.entries("RSB:Session")
    assert header["Import State"] == 1
    assert header["Work Log IDs"] == log["Work Log ID"], "the replay records the found entry"


async def test_storage_options_and_work_info_settings(ar: Server, make: Factory) -> None:
    sessions_only = make(storage="sessions")
    ticket = await sessions_only.find_ticket(ar.demo.ids["printer"])
    await sessions_only.write_session_report(ticket, _delivery("a"))
    assert not [w for w in ar.work_logs(ticket.id) if "rsb-" in (w["Description"] or "")]
    work_only = make(
        storage="work_info",
        work_info_type="Customer Communication",
        work_info_source="Phone",
        work_info_public=True,
        work_info_locked=True,
        attach_report=True,
    )
    other = await work_only.find_ticket(ar.demo.ids["vpn"])
    await work_only.write_session_report(other, _delivery("b"))
    await work_only.write_session_report(other, _delivery("b"))  # found by marker: once
    [log] = [w for w in ar.work_logs(other.id) if "rsb-" in (w["Description"] or "")]
    assert log["Work Log Type"] == 3000 and log["Communication Source"] == 4000
    assert log["View Access"] == 1 and log["Secure Work Log"] == 0  # Public, Yes
    assert log["z2AF Work Log01"]["name"].endswith(".html")
    stored = ar.state.stores["HPD:WorkLog"][log["Work Log ID"]].files[1000000351]
    assert stored == b"<p>full</p>" and log["z2AF Work Log01"]["sizeBytes"] == len(stored)
    assert len(ar.entries("RSB:Session")) == 1  # only the sessions-only import's
    # A customer-chosen (untrusted) ticket never gets public work info.
    untrusted = dataclasses.replace(_delivery("c"), association=Association("external_key"))
    third = await work_only.find_ticket(ar.demo.ids["laptop"])
    await work_only.write_session_report(third, untrusted)
    [private] = [w for w in ar.work_logs(third.id) if "rsb-" in (w["Description"] or "")]
    assert private["View Access"] == 0


async def test_long_text_is_split_without_loss(ar: Server, make: Factory) -> None:
    connector = make(storage="work_info", log_session_notes=False, log_session_end=False)
    ticket = await connector.find_ticket(ar.demo.ids["printer"])
    chat = "\n".join(f"line {i:05d} " + "x" * 60 for i in range(1200))
    delivery = dataclasses.replace(
        _delivery("long"),
        report=RenderedReport(RenderedPart("f", "f"), {"chat": RenderedPart(chat, "")}),
    )
    await connector.write_session_report(ticket, delivery)
    logs = sorted(
        (w for w in ar.work_logs(ticket.id) if "rsb-" in (w["Description"] or "")),
        key=lambda w: int(w["Description"].rsplit("-", 1)[1]),  # the part's marker index
    )
    assert len(logs) == -(-len(chat) // (DETAIL_CHARS - 40)) > 1
    parts = [
        re.fullmatch(r"(.*) \(part (\d+) of (\d+)\)", w["Detailed Description"], re.S) for w in logs
    ]
    assert all(p is not None for p in parts)
    assert [int(p[2]) for p in parts if p] == list(range(1, len(logs) + 1))
    assert "".join(p[1] for p in parts if p) == chat
    assert all(len(w["Description"]) <= 100 for w in logs)


async def test_many_events_are_paged(ar: Server, make: Factory) -> None:
    connector = make(storage="sessions")
    ticket = await connector.find_ticket(ar.demo.ids["printer"])
    session = sample_session()
    when = session.start_time or datetime.now(UTC)
    events = [
        SessionEvent(event_type="Chat Message", timestamp=when, body=f"m{i}\nnext")
        for i in range(EVENTS_PER_ROW * 2 + 5)
    ]
    big = dataclasses.replace(session, events=events, lsid="big-session")
    await connector.write_session_report(ticket, dataclasses.replace(_delivery(), session=big))
    rows = sorted(ar.entries("RSB:Session Event"), key=lambda r: r["First Sequence"])
    assert [r["First Sequence"] for r in rows] == [0, EVENTS_PER_ROW, 2 * EVENTS_PER_ROW]
    lines = [line for r in rows for line in r["Events"].split("\n")]
    assert len(lines) == len(events) and lines[0].endswith("m0\\nnext")


# --- surveys and notes ------------------------------------------------------------------


async def test_surveys_write_an_entry_and_work_info_once(ar: Server, make: Factory) -> None:
    connector = make()
    ticket = await connector.find_ticket(ar.demo.ids["printer"])
    delivery = survey_delivery("survey-1", kind="rep")
    await connector.write_survey(ticket, delivery)
    assert (await connector.write_survey(ticket, delivery)).detail == {"already": "Complete"}
    [row] = ar.entries("RSB:Session Survey")
    assert row["Kind"] == 1 and "rating: 5" in row["Answers"]
    logs = [w for w in ar.work_logs(ticket.id) if "survey" in (w["Description"] or "")]
    assert len(logs) == 1 and logs[0]["View Access"] == 0


async def test_notes_are_internal_work_info_once(ar: Server, make: Factory) -> None:
    connector = make()
    ticket = await connector.find_ticket(ar.demo.ids["printer"])
    note = NoteDelivery("note-1", "Session key 1234567 generated")
    first = await connector.write_note(ticket, note)
    second = await connector.write_note(ticket, note)
    assert first.ref == second.ref and second.detail == {"already": "written"}
    logs = [w for w in ar.work_logs(ticket.id) if w["Detailed Description"] == note.text]
    assert len(logs) == 1 and logs[0]["View Access"] == 0


# --- auto-create ------------------------------------------------------------------------


async def test_auto_create_makes_one_incident_per_key(ar: Server, make: Factory) -> None:
    connector = make()
    session = sample_session()
    first, second = await asyncio.gather(
        connector.create_ticket(session, {"Urgency": "2-High"}, key="k1"),
        connector.create_ticket(session, {}, key="k2"),
    )
    again = await connector.create_ticket(session, {}, key="k1")
    assert again == first and first.id != second.id
    assert first.id.startswith("INC") and first.kind == "incident"
    created = [i for i in ar.entries("HPD:Help Desk") if i["Incident Number"] == first.id]
    assert created[0]["Urgency"] == 2000 and created[0]["Status"] == 1  # Assigned


# --- errors -----------------------------------------------------------------------------


async def test_token_expiry_is_answered_by_one_new_login(ar: Server, make: Factory) -> None:
    connector = make()
    await connector.find_ticket(ar.demo.ids["printer"])
    assert connector.client.logins == 1
    ar.clock.now += 3601
    await connector.find_ticket(ar.demo.ids["printer"])
    assert connector.client.logins == 2
    await connector.aclose()
    assert not ar.state.tokens  # logged out


async def test_wrong_password_is_an_auth_error_without_the_secret(
    ar: Server, make: Factory
) -> None:
    connector = make(password="Wr0ng-Secret-Value")
    with pytest.raises(ConnectorAuthError) as caught:
        await connector.find_ticket(ar.demo.ids["printer"])
    assert "Wr0ng-Secret-Value" not in str(caught.value)
    assert "ARERR 623" in str(caught.value)


async def test_outages_and_html_pages_are_retryable_or_named(ar: Server, make: Factory) -> None:
    connector = make()
    number = ar.demo.ids["printer"]
    await connector.find_ticket(number)  # logged in: the faults meet the entry API
    ar.state.down = True
    with pytest.raises(ConnectorRetryableError, match="HTTP 503"):
        await connector.find_ticket(number)
    ar.state.down = False
    ar.state.html_next(1, status=502)
    with pytest.raises(ConnectorRetryableError, match="HTML page"):
        await connector.find_ticket(number)
    ar.state.html_next(1, status=403)
    with pytest.raises(ConnectorPermanentError, match="HTML page") as caught:
        await connector.find_ticket(number)
    assert not isinstance(caught.value, ConnectorRetryableError)
    assert (await connector.find_ticket(number)).id == number


async def test_a_missing_field_is_permanent_and_named(ar: Server, make: Factory) -> None:
    fdef = ar.state.forms["RSB:Session"]
    ar.state.forms["RSB:Session"] = dataclasses.replace(
        fdef, fields=[f for f in fdef.fields if f.name != "Details"]
    )
    connector = make()
    ticket = await connector.find_ticket(ar.demo.ids["printer"])
    with pytest.raises(ConnectorPermanentError, match="ARERR 314") as caught:
        await connector.write_session_report(ticket, _delivery())
    assert "Details" in str(caught.value) and not isinstance(caught.value, ConnectorRetryableError)
    with pytest.raises(ConnectorPermanentError, match=r"RSB:Session : Details is missing"):
        await connector.check()


async def test_check_names_every_missing_form(ar: Server, make: Factory) -> None:
    connector = make()
    assert "AR server" in (await connector.check()).summary
    del ar.state.forms["RSB:Session Survey"]
    with pytest.raises(ConnectorPermanentError, match=r"form RSB:Session Survey is missing"):
        await connector.check()


def test_bad_settings_are_named() -> None:
    base = {"server_url": "https://r.example.com", "username": "u", "password": "p"}
    with pytest.raises(ConfigurationError, match="number_prefixes"):
        RemedyConnector(RemedyConnector.validate_settings({**base, "number_prefixes": ["INC=x"]}))
    with pytest.raises(ConfigurationError, match="assignee_field"):
        RemedyConnector(RemedyConnector.validate_settings({**base, "assignee_field": "a'b"}))
    with pytest.raises(ConfigurationError, match="storage"):
        RemedyConnector.validate_settings({**base, "storage": "elsewhere"})


def test_custom_links_are_the_seeds() -> None:
    connector = RemedyConnector(
        RemedyConnector.validate_settings(
            {"server_url": "https://ar.example.com:8008", "username": "u", "password": "p",
             "midtier_url": "https://mt.example.com", "ar_server": "arprod"}
        )
    )  # fmt: skip
    links = {link.name: link.url for link in connector.custom_links(None)}
    assert links["Create Incident via BMC Smart IT"] == (
        "https://mt.example.com/ux/smart-it/#/create/smart-recorder?"
        "customer=%CUSTOMER.NAME%&desc=%SESSION.DETAILS%"
    )
    assert links["Remedy incident (Smart IT)"] == (
        "https://mt.example.com/ux/smart-it/#/incident/displayid/%SESSION.CUSTOM.EXTERNAL_KEY%"
    )
    incident = links["Remedy incident (Mid-Tier)"]
    assert incident.startswith("https://mt.example.com/arsys/forms/arprod/HPD%3AHelp%20Desk/")
    assert "%SESSION.CUSTOM.EXTERNAL_KEY%" in incident


def test_sessions_shorter_than_a_second_have_a_duration() -> None:
    session = dataclasses.replace(sample_session(), duration=timedelta(seconds=0))
    from rsbridge.connectors.remedy.records import session_row

    row = session_row(
        session, "k", appliance_id="a", integration="i", ticket_number=None,
        ticket_form=None, details="", association="", state="Importing",
    )  # fmt: skip
    assert row.values["Duration"] == 0


# --- review: concurrency, trust, service requests, classification -----------------------


async def test_one_process_imports_a_session_once_even_with_a_slow_server(
    ar: Server, make: Factory
) -> None:
    ar.state.latency = 0.01
    connector = make()
    ticket = await connector.find_ticket(ar.demo.ids["printer"])
    await asyncio.gather(*(connector.write_session_report(ticket, _delivery()) for _ in range(4)))
    assert len(ar.entries("RSB:Session")) == 1
    participants = ar.entries("RSB:Session Participant")
    assert len({p["Row Key"] for p in participants}) == len(participants)
    assert len([w for w in ar.work_logs(ticket.id) if "rsb-" in (w["Description"] or "")]) == 1


async def test_two_processes_racing_leave_one_entry_and_the_loser_retries(
    ar: Server, make: Factory
) -> None:
    # Two connectors stand in for two nodes (a lease that expired under a slow worker).
    ar.state.latency = 0.01
    first, second = make(), make()
    ticket = await first.find_ticket(ar.demo.ids["printer"])
    results = await asyncio.gather(
        first.write_session_report(ticket, _delivery()),
        second.write_session_report(ticket, _delivery()),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, ConnectorRetryableError) and "ARERR 382" in str(e) for e in errors)
    for _ in errors:  # the job's retry
        await second.write_session_report(ticket, _delivery())
    assert len(ar.entries("RSB:Session")) == 1
    participants = ar.entries("RSB:Session Participant")
    session = sample_session()
    assert len(participants) == len(session.representatives) + len(session.customers)
    assert ar.entries("RSB:Session")[0]["Import State"] == 1


async def test_concurrent_creations_with_one_key_make_one_incident(
    ar: Server, make: Factory
) -> None:
    ar.state.latency = 0.01
    connector = make()
    session = sample_session()
    made = await asyncio.gather(
        *(connector.create_ticket(session, {}, key="same") for _ in range(3))
    )
    assert len({t.id for t in made}) == 1
    marker = f"rsbridge-ref-{row_key('same', 'incident')[:24]}"
    assert sum(marker in (i["Detailed Decription"] or "") for i in ar.entries("HPD:Help Desk")) == 1


def test_created_incidents_are_trusted_only_with_a_pinned_customer() -> None:
    base = {"server_url": "https://r.example.com", "username": "u", "password": "p"}
    typed = RemedyConnector(RemedyConnector.validate_settings(base))
    assert typed.created_tickets_trusted() is False
    pinned = RemedyConnector(
        RemedyConnector.validate_settings(
            {**base, "create_fields": ["First_Name=Remote", "Last_Name=Support"]}
        )
    )
    assert pinned.created_tickets_trusted() is True


async def test_rep_surveys_and_notes_stay_internal_with_public_work_info(
    ar: Server, make: Factory
) -> None:
    connector = make(work_info_public=True)
    ticket = await connector.find_ticket(ar.demo.ids["printer"])
    rep = dataclasses.replace(survey_delivery("s-rep", kind="rep"), association=TRUSTED)
    customer = dataclasses.replace(
        survey_delivery("s-customer", kind="customer"), association=TRUSTED
    )
    await connector.write_survey(ticket, rep)
    await connector.write_survey(ticket, customer)
    await connector.write_note(ticket, NoteDelivery("n-1", "a note"))
    access = {
        w["Description"].split(" rsb-")[0]: w["View Access"]
        for w in ar.work_logs(ticket.id)
        if "rsb-" in (w["Description"] or "")
    }
    assert access["BeyondTrust representative survey " + sample_session().lsid] == 0
    assert access["BeyondTrust customer survey " + sample_session().lsid] == 1
    assert access["rsbridge note"] == 0


async def test_service_requests_say_what_was_skipped(ar: Server, make: Factory) -> None:
    connector = make(storage="work_info")
    request = await connector.find_ticket(ar.demo.ids["request"])
    note = await connector.write_note(request, NoteDelivery("n-req", "a note"))
    assert "no work info form" in note.detail["skipped"]
    result = await connector.write_session_report(request, _delivery("req"))
    assert "no work info form" in result.detail["skipped"]


async def test_an_html_login_page_is_named(ar: Server, make: Factory) -> None:
    ar.state.html_next(1, status=403)
    with pytest.raises(ConnectorPermanentError, match="HTML page") as caught:
        await make().find_ticket(ar.demo.ids["printer"])
    assert not isinstance(caught.value, (ConnectorRetryableError, ConnectorAuthError))


async def test_refusals_sent_with_http_500_are_permanent_and_bare_404s_are_not_not_found(
    ar: Server, make: Factory
) -> None:
    connector = make()
    number = ar.demo.ids["printer"]
    await connector.find_ticket(number)
    ar.state.fail_next(1, status=500, number=326, text="Required field cannot be blank.")
    with pytest.raises(ConnectorPermanentError, match="ARERR 326") as refused:
        await connector.find_ticket(number)
    assert not isinstance(refused.value, ConnectorRetryableError)
    ar.state.fail_next(1, status=500, number=8760, text="Internal error")
    with pytest.raises(ConnectorRetryableError):
        await connector.find_ticket(number)
    from rsbridge.connectors.remedy.client import RemedyClient

    client: RemedyClient = connector.client
    with pytest.raises(ConnectorPermanentError) as bare:
        await client.request("GET", "/not/the/api", what="probe")
    assert not isinstance(bare.value, TicketNotFoundError)


async def test_a_session_without_a_ticket_is_imported_into_the_session_forms(
    ar: Server, make: Factory
) -> None:
    connector = make()
    result = await connector.write_session_report(None, _delivery("external"))
    assert result.detail["work_info"] == "0"
    [header] = ar.entries("RSB:Session")
    assert header["Ticket Number"] is None and header["Import State"] == 1
    assert ar.entries("RSB:Session Participant")


async def test_an_incident_is_found_by_its_entry_id_too(ar: Server, make: Factory) -> None:
    # An entry whose Incident Number differs from its entry id, as on a real server.
    entry_id = ar.demo.ids["vpn"]
    with ar.state.lock:
        ar.state.stores["HPD:Help Desk"][entry_id].values[1000000161] = "INC000000009000"
    connector = make()
    ticket = await connector.find_ticket(entry_id)
    assert ticket.id == ticket.number == "INC000000009000"
    assert (await connector.find_ticket("INC000000009000")).id == "INC000000009000"
    with pytest.raises(TicketNotFoundError):
        await connector.find_ticket("INC000000007777")
