"""The Salesforce connector against the simulated org, over real HTTP on loopback.

The org gets its objects from the package rsbridge generates (``package_files``), loaded
by the simulator's source-format reader: the tests exercise the same definitions an
administrator deploys.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from rsbridge.appliance.report_model import CustomAttribute, NamedRef, Recording
from rsbridge.connectors.base import (
    Association,
    Connector,
    NoteDelivery,
    RenderedPart,
    RenderedReport,
)
from rsbridge.connectors.salesforce.connector import SalesforceConnector
from rsbridge.connectors.salesforce.imports import COMMENT_BYTES, session_key
from rsbridge.connectors.salesforce.package import package_files, write_package
from rsbridge.connectors.salesforce.records import import_key
from rsbridge.connectors.salesforce.schema import Schema
from rsbridge.connectors.text import split_text
from rsbridge.errors import (
    ConfigurationError,
    ConnectorAuthError,
    ConnectorPermanentError,
    ConnectorRetryableError,
    TicketNotFoundError,
)
from rsbridge.sim.salesforce import DemoSeed, SimSalesforceState, create_app, seed_demo
from rsbridge.sim.salesforce.package import load_package
from rsbridge.sim.serve import SwappableApp, serve_in_thread

from .contract import (
    APPLIANCE_ID,
    INTEGRATION,
    ConnectorContract,
    sample_session,
    session_delivery,
    survey_delivery,
)
from .report_reads import reading

TRUSTED = Association("external_key", True)


@dataclasses.dataclass
class Org:
    state: SimSalesforceState
    demo: DemoSeed
    url: str

    def records(self, name: str) -> list[dict[str, Any]]:
        return self.state.all_records(name)

    def case(self, key: str) -> dict[str, Any]:
        record = self.state.get("Case", self.demo.ids[key])
        assert record is not None
        return record


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sfpkg")
    write_package(out, package_files(Schema.build()))
    return out


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[SwappableApp, str]]:
    swappable = SwappableApp()
    with serve_in_thread(swappable) as url:
        yield swappable, url


@pytest.fixture
def org(server: tuple[SwappableApp, str], package: Path) -> Org:
    state = SimSalesforceState(seed=3)
    demo = seed_demo(state)
    load_package(state, package)
    server[0].app = create_app(state)
    return Org(state, demo, server[1])


Factory = Callable[..., SalesforceConnector]


@pytest.fixture
async def make(org: Org) -> Any:
    made: list[Connector] = []

    def factory(**settings: object) -> SalesforceConnector:
        key, secret = org.demo.app
        raw: dict[str, object] = {
            "login_url": org.url,
            "client_id": key,
            "client_secret": secret,
            **settings,
        }
        connector = SalesforceConnector(SalesforceConnector.validate_settings(raw))
        made.append(connector)
        return connector

    yield factory
    for connector in made:
        await connector.aclose()


def _case_number(org: Org, key: str) -> str:
    return str(org.case(key)["CaseNumber"])


class TestContract(ConnectorContract):
    connector_class = SalesforceConnector
    unknown_ticket_ref = "99999999"
    create_fields: ClassVar[dict[str, str]] = {
        "Subject": "Remote support session",
        "Priority": "Medium",
    }

    @pytest.fixture
    async def connector(self, org: Org, make: Factory) -> Connector:
        self.org = org
        type(self).known_ticket_ref = _case_number(org, "case_printer")
        return make()

    def valid_settings(self) -> dict[str, object]:
        return {
            "login_url": "https://acme.my.salesforce.com",
            "client_id": "k",
            "client_secret": "s",
        }

    def effects(self, key: str) -> int:
        org = self.org
        if key.startswith("ticket-"):
            return len(org.state.find_by("Case", "RS_Import_Key__c", import_key(key, "case")))
        lsid = sample_session().lsid
        if "session_report" in key or key == "concurrent":
            sessions = [r for r in org.records("RS_Session__c") if r["LSID__c"] == lsid]
            ends = [
                c for c in org.records("CaseComment") if f"{lsid}: session end)" in c["CommentBody"]
            ]
            assert len(ends) == len(sessions), "one session-end comment per session record"
            return len(sessions)
        if "survey" in key:
            answers = org.records("RS_Session_Survey__c")
            keys = {import_key(import_key(key), "survey", "0", str(i)) for i in range(2)}
            return len({a["Survey_Number__c"] for a in answers if a["Import_Key__c"] in keys})
        marker = f"rsbridge ref {import_key(key)[:16]}"
        return sum(marker in c["CommentBody"] for c in org.records("CaseComment"))


# --- tickets ----------------------------------------------------------------------------


async def test_cases_are_found_by_id_and_by_number(org: Org, make: Factory) -> None:
    connector = make()
    case_id = org.demo.ids["case_printer"]
    number = _case_number(org, "case_printer")
    by_number = await connector.find_ticket(number)
    assert by_number.id == case_id and by_number.number == number and by_number.kind == "Case"
    assert (await connector.find_ticket(case_id[:15])).id == case_id
    assert (await connector.find_ticket(number.lstrip("0"))).id == case_id
    with pytest.raises(TicketNotFoundError, match="not a Case's"):
        await connector.find_ticket(org.demo.ids["ada"])
    for junk in ("hello", "00001026' OR CaseNumber != '", "500 123"):
        with pytest.raises(TicketNotFoundError):
            await connector.find_ticket(junk)


async def test_ticket_context_reads_status_owner_and_contact(org: Org, make: Factory) -> None:
    connector = make()
    context = await connector.ticket_context(org.demo.ids["case_printer"])
    assert context.closed is False
    assert context.caller_email and "@" in context.caller_email
    assert context.session_attributes == {"external_key": org.demo.ids["case_printer"]}
    closed = await connector.ticket_context(org.demo.ids["case_closed"])
    assert closed.closed is True


# --- session import ---------------------------------------------------------------------


def _delivery(**kwargs: Any) -> Any:
    report = RenderedReport(
        RenderedPart("full", "<p>full</p>"),
        {
            "chat": RenderedPart("Customer: the printer jams\nRep: on it", ""),
            "notes": RenderedPart("Replaced the tray.", ""),
        },
    )
    delivery = session_delivery("end-key", **kwargs)
    return dataclasses.replace(delivery, report=report)


async def test_a_session_lands_in_records_and_private_comments_in_two_calls(
    org: Org, make: Factory
) -> None:
    connector = make()
    ticket = await connector.find_ticket(org.demo.ids["case_printer"])
    before = connector.client.calls
    await connector.write_session_report(ticket, _delivery(association=TRUSTED))
    calls = connector.client.calls - before
    assert calls == 2, "one composite of queries, one all-or-none composite of writes"
    session = sample_session()
    (record,) = org.records("RS_Session__c")
    assert record["LSID__c"] == session.lsid
    assert record["Case__c"] == ticket.id
    assert record["Import_State__c"] == "complete"
    assert record["Import_Key__c"] == session_key(APPLIANCE_ID, INTEGRATION, session.lsid)
    reps = org.records("RS_Session_Rep__c")
    assert len(reps) == len(session.representatives)
    assert {r["Session__c"] for r in reps} == {record["Id"]}
    assert len(org.records("RS_Session_Event__c")) == len(session.events)
    comments = [c for c in org.records("CaseComment") if c["ParentId"] == ticket.id]
    texts = [c["CommentBody"] for c in comments]
    assert any("printer jams" in t and "chat transcript" in t for t in texts)
    assert any("Replaced the tray." in t for t in texts)
    assert all(c["IsPublished"] is False for c in comments)
    # A replay: one query, nothing written.
    before = connector.client.calls
    again = await connector.write_session_report(ticket, _delivery(association=TRUSTED))
    assert again.detail.get("already") == "complete"
    assert connector.client.calls - before == 1
    assert len(org.records("CaseComment")) == len(comments) + _other_comments(org, ticket.id)


def _other_comments(org: Org, case_id: str) -> int:
    return sum(c["ParentId"] != case_id for c in org.records("CaseComment"))


async def test_public_comments_only_on_a_trusted_case(org: Org, make: Factory) -> None:
    connector = make(public_comments=True)
    ticket = await connector.find_ticket(org.demo.ids["case_printer"])
    await connector.write_session_report(ticket, _delivery(association=Association("x", False)))
    ours = [c for c in org.records("CaseComment") if c["ParentId"] == ticket.id]
    assert ours and not any(c["IsPublished"] for c in ours)


async def test_chatter_posts_instead_of_comments(org: Org, make: Factory) -> None:
    connector = make(comments="feed_item")
    ticket = await connector.find_ticket(org.demo.ids["case_vpn"])
    await connector.write_session_report(ticket, _delivery(association=TRUSTED))
    posts = [f for f in org.records("FeedItem") if f["ParentId"] == ticket.id]
    assert posts and all(p["Visibility"] == "InternalUsers" for p in posts)
    assert not [c for c in org.records("CaseComment") if c["ParentId"] == ticket.id]


def test_long_text_is_split_within_the_comment_limit_without_loss() -> None:
    text = "\n".join(f"line {i}: " + "é" * 50 for i in range(400))
    parts = split_text(text, COMMENT_BYTES)
    assert len(parts) > 1
    assert all(len(p.encode()) <= COMMENT_BYTES for p in parts)
    suffix = f" (part {{}} of {len(parts)})"
    joined = "".join(p.removesuffix(suffix.format(i)) for i, p in enumerate(parts, 1))
    assert joined == text


async def test_sessions_of_other_portals_are_not_imported(org: Org, make: Factory) -> None:
    connector = make(supported_portals=["Partners"])
    ticket = await connector.find_ticket(org.demo.ids["case_printer"])
    session = dataclasses.replace(sample_session(), public_site=NamedRef("Default", "1"))
    result = await connector.write_session_report(ticket, _delivery(session=session))
    assert "supported_portals" in result.detail["skipped"]
    assert org.records("RS_Session__c") == []


async def test_recording_links_use_the_external_base_url(org: Org, make: Factory) -> None:
    connector = make(recording_base_url="https://recordings.example.com/view")
    await connector.write_session_report(None, _delivery())
    (record,) = org.records("RS_Session__c")
    assert record["Recording_URL__c"] == (
        f"https://recordings.example.com/view?lsid={sample_session().lsid}"
    )
    assert record["Case__c"] is None


# --- surveys ----------------------------------------------------------------------------


async def test_a_survey_moves_a_trusted_case_once(org: Org, make: Factory) -> None:
    connector = make(survey_state_rules=["customer:rating=5 -> Closed"], log_surveys=True)
    ticket = await connector.find_ticket(org.demo.ids["case_printer"])
    await connector.write_session_report(ticket, _delivery(association=TRUSTED))
    await connector.write_survey(
        ticket, survey_delivery("s:survey:customer:0", association=TRUSTED)
    )
    assert org.case("case_printer")["Status"] == "Closed"
    answers = org.records("RS_Session_Survey__c")
    assert {(a["Question__c"], a["Answer__c"]) for a in answers} == {
        ("rating", "5"),
        ("comments", "Quick fix"),
    }
    # Someone reopens the Case; a replay of the survey does not close it again.
    org.state.update("Case", ticket.id, {"Status": "Working"}, user_id=None)
    again = await connector.write_survey(
        ticket, survey_delivery("s:survey:customer:0", association=TRUSTED)
    )
    assert again.detail.get("already") == "complete"
    assert org.case("case_printer")["Status"] == "Working"


async def test_an_untrusted_case_is_never_moved(org: Org, make: Factory) -> None:
    connector = make(survey_state_rules=["customer:rating=5 -> Closed"])
    ticket = await connector.find_ticket(org.demo.ids["case_printer"])
    status = org.case("case_printer")["Status"]
    untrusted = Association("custom:case", False)
    await connector.write_survey(
        ticket, survey_delivery("s:survey:customer:0", association=untrusted)
    )
    assert org.case("case_printer")["Status"] == status
    assert len(org.records("RS_Session_Survey__c")) == 2
    (session,) = org.records("RS_Session__c")
    assert session["Import_State__c"] == "survey_only"


# --- auth and failures ------------------------------------------------------------------


async def test_password_flow_and_its_blocked_answer(org: Org, make: Factory) -> None:
    user, password, token = org.demo.integration
    connector = make(auth="password", username=user, password=password, security_token=token)
    await connector.find_ticket(org.demo.ids["case_printer"])
    org.state.password_flow_enabled = False
    blocked = make(auth="password", username=user, password=password, security_token=token)
    with pytest.raises(ConnectorAuthError, match="blocked in orgs made since Summer '23"):
        await blocked.find_ticket(org.demo.ids["case_printer"])


async def test_an_expired_session_logs_in_again_once(org: Org, make: Factory) -> None:
    connector = make()
    await connector.find_ticket(org.demo.ids["case_printer"])
    org.state.expire_sessions()
    await connector.find_ticket(org.demo.ids["case_printer"])
    logins = org.state.count_requests("POST", "/services/oauth2/token")
    assert logins == 2


async def test_wrong_credentials_are_an_auth_error_without_the_secret(
    org: Org, make: Factory
) -> None:
    connector = make(client_secret="not-the-secret-0123")
    with pytest.raises(ConnectorAuthError) as caught:
        await connector.find_ticket("00001000")
    assert "not-the-secret-0123" not in str(caught.value)


async def test_the_daily_allowance_spent_is_retried_later(org: Org, make: Factory) -> None:
    connector = make()
    await connector.find_ticket(org.demo.ids["case_printer"])
    org.state.fail_next(1, status=403, error_code="REQUEST_LIMIT_EXCEEDED", message="limit")
    with pytest.raises(ConnectorRetryableError) as caught:
        await connector.find_ticket(org.demo.ids["case_printer"])
    assert caught.value.retry_after is not None and caught.value.retry_after >= 900


async def test_a_validation_rule_is_a_permanent_named_error(org: Org, make: Factory) -> None:
    from rsbridge.sim.salesforce import ValidationRule

    org.state.validation_rules.append(
        ValidationRule("RS_Session__c", "Imports are frozen", lambda record: True)
    )
    connector = make()
    ticket = await connector.find_ticket(org.demo.ids["case_printer"])
    with pytest.raises(ConnectorPermanentError, match="FIELD_CUSTOM_VALIDATION_EXCEPTION"):
        await connector.write_session_report(ticket, _delivery(association=TRUSTED))
    # All or none: no comment was left behind.
    assert not [
        c for c in org.records("CaseComment") if "Remote Support session" in c["CommentBody"]
    ]


async def test_check_names_what_the_org_lacks(
    server: tuple[SwappableApp, str], make: Factory, org: Org
) -> None:
    result = await make().check()
    assert "org 127.0.0.1" in result.summary
    bare = SimSalesforceState(seed=4)
    demo = seed_demo(bare)
    server[0].app = create_app(bare)
    key, secret = demo.app
    connector = make(client_id=key, client_secret=secret)
    with pytest.raises(ConnectorPermanentError, match="object RS_Session__c is missing"):
        await connector.check()


def test_settings_need_what_their_flow_needs() -> None:
    base = {"login_url": "https://acme.my.salesforce.com", "client_id": "k"}
    with pytest.raises(ConfigurationError, match="client_secret"):
        SalesforceConnector(SalesforceConnector.validate_settings(base))
    with pytest.raises(ConfigurationError, match="private_key"):
        SalesforceConnector(
            SalesforceConnector.validate_settings({**base, "auth": "jwt_bearer", "username": "u"})
        )
    with pytest.raises(ConfigurationError, match=r"46\.0 or later"):
        SalesforceConnector(
            SalesforceConnector.validate_settings(
                {**base, "client_secret": "s", "api_version": "45.0"}
            )
        )
    with pytest.raises(ConfigurationError, match="survey_state_rules"):
        SalesforceConnector(
            SalesforceConnector.validate_settings(
                {**base, "client_secret": "s", "survey_state_rules": ["rating=5"]}
            )
        )


# --- the review's cases ---------------------------------------------------------------------


def _rich_session() -> Any:
    """A session whose children span every object: more than 5 groups of records."""
    session = sample_session()
    attributes = [CustomAttribute(f"attr_{i}", f"Attribute {i}", f"value {i}") for i in range(6)]
    teams = [NamedRef(f"Team {i}", str(i)) for i in range(5)]
    recording = Recording("https://support.example.com/view", "https://support.example.com/dl")
    shells = [Recording(f"https://x/{i}", None, i) for i in range(5)]
    return dataclasses.replace(
        session,
        custom_attributes=attributes,
        teams=teams,
        recording=recording,
        command_shell_recordings=shells,
    )


async def test_a_session_with_every_kind_of_child_lands_in_one_write_call(
    org: Org, make: Factory
) -> None:
    # A composite call holds at most 5 sObject Collections (the simulator refuses more,
    # as Salesforce does): small groups go as single subrequests.
    connector = make()
    ticket = await connector.find_ticket(org.demo.ids["case_printer"])
    session = _rich_session()
    before = connector.client.calls
    await connector.write_session_report(ticket, _delivery(session=session, association=TRUSTED))
    assert connector.client.calls - before == 2
    assert len(org.records("RS_Session_Attribute__c")) == 6
    assert len(org.records("RS_Session_Team__c")) == 5
    assert len(org.records("RS_Session_Recording__c")) == 6
    assert len(org.records("RS_Session_Event__c")) == len(session.events)


async def test_without_records_a_replay_adds_no_comment_and_moves_nothing_again(
    org: Org, make: Factory
) -> None:
    connector = make(
        write_session_records=False,
        log_surveys=True,
        survey_state_rules=["customer:rating=5 -> Closed"],
    )
    ticket = await connector.find_ticket(org.demo.ids["case_printer"])

    def ours() -> int:
        return sum(c["ParentId"] == ticket.id for c in org.records("CaseComment"))

    await connector.write_session_report(ticket, _delivery(association=TRUSTED))
    survey = survey_delivery("s:survey:customer:0", association=TRUSTED)
    await connector.write_survey(ticket, survey)
    after_first = ours()
    assert org.case("case_printer")["Status"] == "Closed"
    org.state.update("Case", ticket.id, {"Status": "Working"}, user_id=None)
    await connector.write_session_report(ticket, _delivery(association=TRUSTED))
    await connector.write_survey(ticket, survey)
    assert ours() == after_first
    assert org.case("case_printer")["Status"] == "Working"
    assert org.records("RS_Session__c") == []


async def test_two_processes_importing_one_session_leave_one_set_of_comments(
    org: Org, make: Factory
) -> None:
    # Two connector instances stand for two engine processes (no shared lock): the
    # session record's unique import key lets one of them carry the comments; the other
    # is rolled back whole with a retryable error, and its retry finds the import done.
    first, second = make(), make()
    ticket = await first.find_ticket(org.demo.ids["case_printer"])
    await second.find_ticket(ticket.id)  # both logged in
    org.state.latency = 0.2  # both look before either writes
    results = await asyncio.gather(
        first.write_session_report(ticket, _delivery(association=TRUSTED)),
        second.write_session_report(ticket, _delivery(association=TRUSTED)),
        return_exceptions=True,
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, ConnectorRetryableError) for r in failed), failed
    org.state.latency = 0.0
    retried = await second.write_session_report(ticket, _delivery(association=TRUSTED))
    assert retried.detail.get("already") == "complete"
    lsid = sample_session().lsid
    ends = [c for c in org.records("CaseComment") if f"{lsid}: session end)" in c["CommentBody"]]
    assert len(ends) == 1
    assert len(org.records("RS_Session__c")) == 1


async def test_a_survey_before_its_session_keeps_the_sessions_comments(
    org: Org, make: Factory
) -> None:
    connector = make()
    ticket = await connector.find_ticket(org.demo.ids["case_printer"])
    await connector.write_survey(ticket, survey_delivery("s:survey:rep:0", "rep"))
    await connector.write_session_report(ticket, _delivery(association=TRUSTED))
    (record,) = org.records("RS_Session__c")
    assert record["Import_State__c"] == "complete"
    texts = [c["CommentBody"] for c in org.records("CaseComment") if c["ParentId"] == ticket.id]
    assert any("session end)" in t for t in texts)


async def test_surveys_of_other_portals_are_not_imported(org: Org, make: Factory) -> None:
    connector = make(
        supported_portals=["Partners"], survey_state_rules=["customer:rating=5 -> Closed"]
    )
    ticket = await connector.find_ticket(org.demo.ids["case_printer"])
    session = dataclasses.replace(sample_session(), public_site=NamedRef("Default", "1"))
    survey = dataclasses.replace(
        survey_delivery("s:survey:customer:0", association=TRUSTED), session=session
    )
    result = await connector.write_survey(ticket, survey)
    assert "supported_portals" in result.detail["skipped"]
    assert org.records("RS_Session_Survey__c") == []
    assert org.case("case_printer")["Status"] != "Closed"


async def test_a_repeated_creation_leaves_an_edited_case_alone(org: Org, make: Factory) -> None:
    connector = make()
    created = await connector.create_ticket(sample_session(), {"Priority": "Medium"}, key="k1")
    org.state.update("Case", created.id, {"Priority": "High"}, user_id=None)
    again = await connector.create_ticket(sample_session(), {"Priority": "Medium"}, key="k1")
    assert again.id == created.id
    record = org.state.get("Case", created.id)
    assert record is not None and record["Priority"] == "High"


async def test_notes_are_never_public(org: Org, make: Factory) -> None:
    connector = make(public_comments=True)
    ticket = await connector.find_ticket(org.demo.ids["case_printer"])
    await connector.write_note(ticket, NoteDelivery("n1", "A key was made", None))
    (note,) = [c for c in org.records("CaseComment") if "A key was made" in c["CommentBody"]]
    assert note["IsPublished"] is False


async def test_the_report_is_attached_to_the_case_once(org: Org, make: Factory) -> None:
    connector = make(attach_report=True, attachment_format="txt")
    ticket = await connector.find_ticket(org.demo.ids["case_printer"])
    for _ in range(2):
        await connector.write_session_report(ticket, _delivery(association=TRUSTED))
    name = f"remote-support-session-{sample_session().lsid}.txt"
    (version,) = [v for v in org.records("ContentVersion") if v["Title"] == name]
    assert org.state.blobs[version["Id"]] == b"full"
    links = [
        link for link in org.records("ContentDocumentLink") if link["LinkedEntityId"] == ticket.id
    ]
    assert len(links) == 1


async def test_the_jwt_bearer_flow_signs_in_as_the_integration_user(
    org: Org, make: Factory
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    org.state.apps[org.demo.app[0]].certificate = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    user = org.demo.integration[0]
    connector = make(auth="jwt_bearer", username=user, private_key=pem, client_secret=None)
    ticket = await connector.find_ticket(org.demo.ids["case_printer"])
    assert ticket.kind == "Case"
    forged = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = forged.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    refused = make(auth="jwt_bearer", username=user, private_key=other, client_secret=None)
    with pytest.raises(ConnectorAuthError, match="certificate and pre-authorised user") as caught:
        await refused.find_ticket(org.demo.ids["case_printer"])
    assert "PRIVATE KEY" not in str(caught.value)


@pytest.mark.parametrize(
    "settings", [{}, {"attach_report": True}, {"attach_report": True, "attachment_format": "txt"}]
)
async def test_a_session_report_reads_only_the_templates_it_declares(
    org: Org, make: Factory, settings: dict[str, Any]
) -> None:
    """The engine renders only ``report_templates()``: reading more would get "" ."""
    connector = make(**settings)
    ticket = await connector.find_ticket(org.demo.ids["case_printer"])
    delivery, reads = reading(session_delivery("end-key", association=TRUSTED))
    await connector.write_session_report(ticket, delivery)
    assert reads == connector.report_templates()
