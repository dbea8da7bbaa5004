"""A customer never chooses the ticket: signed, representative-set and refused references.

Each attack of the security review is replayed end to end (outbound events into the
intake, reports from the simulated appliance, records in the simulated ServiceNow over
real HTTP) and shown refused; the legitimate paths (a key rsbridge signed, an external
key a representative typed, the rep survey, auto-create) still land.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from rsbridge.appliance.report_model import (
    Actor,
    CustomAttribute,
    EventType,
    ExitSurvey,
    SessionEvent,
    SupportSession,
    SurveyAnswer,
)
from rsbridge.config import AssociationConfig, Config, parse_config
from rsbridge.connectors.registry import connector_class
from rsbridge.connectors.servicenow.writes import journal_marker
from rsbridge.engine.association import judge_session, rep_set_external_key
from rsbridge.engine.runtime import Engine
from rsbridge.engine.signing import Signer
from rsbridge.engine.store.base import JobFilter, JobStatus
from rsbridge.errors import ConfigurationError, TicketNotFoundError
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.web.app import create_app
from rsbridge.web.serve import serving
from tests.conftest import SIGNING_SECRET, sign_session, signed_names
from tests.servicenow_helpers import Snow, running_instance

from .conftest import SimAppliance, drained, emit, engine_config

VICTIM = "INC0010003"


@pytest.fixture
def snow() -> Iterator[Snow]:
    with running_instance(12) as running:
        yield running


def _session(
    seed: int,
    *,
    external_key: str | None = None,
    custom: dict[str, str] | None = None,
    rating: str | None = None,
) -> SupportSession:
    """An ended session started from a URL carrying these values, with no External Key
    event (nobody changed the key in the console) and an optional customer survey."""
    session = SessionGenerator(seed).session_from_key(external_key, custom or {})
    assert session.start_time is not None and session.end_time is not None
    shift = datetime.now(UTC) - timedelta(seconds=60) - session.end_time
    session = dataclasses.replace(
        session, start_time=session.start_time + shift, end_time=session.end_time + shift
    )
    session.events = [e for e in session.events if e.event_type != EventType.EXTERNAL_KEY]
    session.rep_surveys = []
    session.customer_surveys = (
        [ExitSurvey(1, [SurveyAnswer("rating", rating)])] if rating is not None else []
    )
    return session


def _typed_by_rep(session: SupportSession, value: str) -> SupportSession:
    """``session`` whose representative typed ``value`` as its external key in the console."""
    assert session.end_time is not None
    session.external_key = value
    rep = Actor("representative", "Rep", 2)
    event = SessionEvent(
        session.end_time - timedelta(seconds=30),
        EventType.EXTERNAL_KEY,
        performed_by=rep,
        data={"external_key": value},
    )
    session.events = [*session.events, event]
    return session


def _config(
    tmp_path: Path,
    sim: SimAppliance,
    snow: Snow,
    settings: dict[str, Any] | None = None,
    **association: Any,
) -> Config:
    user, password = snow.demo.integration
    return engine_config(
        tmp_path,
        sim,
        integrations=[
            {
                "name": "servicenow",
                "connector": "servicenow",
                "association": association,
                "settings": {
                    "instance_url": snow.url,
                    "username": user,
                    "password": password,
                    "journal_field": "comments",
                    "log_surveys": True,
                    "survey_state_rules": ["customer:rating=5 -> 6"],
                    **(settings or {}),
                },
            }
        ],
    )


async def _run(config: Config, sim: SimAppliance, sessions: list[SupportSession]) -> list[str]:
    """Deliver ``sessions`` through the engine; the jobs' notes."""
    for session in sessions:
        sim.state.add_report(session)
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        await emit(url, sessions)
        await drained(engine)
        jobs = await engine.store.list_jobs(JobFilter(limit=100))
    assert all(j.status is JobStatus.DONE for j in jobs), [j.last_error for j in jobs]
    return [j.last_error or "" for j in jobs]


def _ours(snow: Snow, number: str, lsid: str) -> list[dict[str, Any]]:
    """The journal entries a session left on the record numbered ``number``."""
    return _marked(snow.state.journal(snow.demo.ids[number]), lsid)


def _marked(entries: list[dict[str, Any]], lsid: str) -> list[dict[str, Any]]:
    """The entries whose marker line names session ``lsid`` (its short form)."""
    marker = journal_marker(lsid, "")[:-1]  # "(RS session <12 chars>: "
    return [e for e in entries if marker in e["value"]]


def _state(snow: Snow, number: str) -> str:
    record = snow.state.get("incident", snow.demo.ids[number])
    assert record is not None
    return str(record["state"])


# --- the attacks ------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"custom": {"snow_task_id": VICTIM}},
        {"custom": {"snow_task_id": "<victim sys_id>"}},
        {"external_key": VICTIM},
    ],
    ids=["task-number", "task-sys-id", "external-key"],
)
async def test_a_customer_set_reference_does_not_choose_the_ticket(
    tmp_path: Path, sim: SimAppliance, snow: Snow, values: dict[str, Any]
) -> None:
    # The reproduced attack: a start URL naming someone else's incident, with comments as
    # journal field and a survey rule that would resolve it.
    custom = {
        k: v.replace("<victim sys_id>", snow.demo.ids[VICTIM])
        for k, v in values.get("custom", {}).items()
    }
    session = _session(1, external_key=values.get("external_key"), custom=custom, rating="5")
    state = _state(snow, VICTIM)
    notes = await _run(_config(tmp_path, sim, snow), sim, [session])
    assert _ours(snow, VICTIM, session.lsid) == []
    assert _state(snow, VICTIM) == state
    assert snow.state.query("u_rs_session") == []
    assert any(
        "refused: neither signed by rsbridge nor set by a representative" in n for n in notes
    )


async def test_an_unmatched_attack_gets_a_ticket_of_its_own_when_the_rules_create(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    session = _session(2, custom={"snow_task_id": VICTIM}, rating="5")
    config = _config(tmp_path, sim, snow, on_unmatched="create")
    await _run(config, sim, [session])
    assert _ours(snow, VICTIM, session.lsid) == []
    (row,) = snow.state.query("u_rs_session")
    assert row["u_task"] and row["u_task"] != snow.demo.ids[VICTIM]


async def test_trust_any_lands_but_never_changes_state_nor_comments(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    # The vendor's behaviour, chosen knowingly: the session lands on the named incident,
    # but as work notes only, and the survey rule does not move it.
    session = _session(3, custom={"snow_task_id": VICTIM}, rating="5")
    state = _state(snow, VICTIM)
    await _run(_config(tmp_path, sim, snow, trust="any"), sim, [session])
    entries = _ours(snow, VICTIM, session.lsid)
    assert entries and {e["element"] for e in entries} == {"work_notes"}
    assert _state(snow, VICTIM) == state


async def test_a_caller_the_customer_typed_gets_no_comments_and_no_state_change(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    # Auto-create looks the caller up by the e-mail address the customer typed: the
    # customer chose that person, so the new incident gets work notes only and the
    # customer's survey does not resolve it.
    victim = snow.state.query("sys_user", "user_name=admin")[0]
    session = _session(17, custom={"customer_email": victim["email"]}, rating="5")
    lookup = {"create_dynamic_lookup_fields": ["caller_id=sys_user.email=customer_email"]}
    await _run(_config(tmp_path, sim, snow, lookup, on_unmatched="create"), sim, [session])
    (incident,) = snow.state.query("incident", f"correlation_id=rs-{session.lsid}")
    assert incident["caller_id"] == victim["sys_id"]
    ours = _marked(snow.state.journal(incident["sys_id"]), session.lsid)
    assert ours and {e["element"] for e in ours} == {"work_notes"}
    assert incident["state"] != "6"


async def test_a_call_reference_must_name_a_call(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    # snow_call_id = the admin's sys_user id once gave u_call = admin.
    admin = snow.state.query("sys_user", "user_name=admin")[0]["sys_id"]
    session = _session(4, custom={"snow_call_id": admin})
    notes = await _run(_config(tmp_path, sim, snow, trust="any"), sim, [session])
    assert snow.state.query("u_rs_session") == []
    assert any(f"ServiceNow has no new_call with sys_id {admin}" in n for n in notes)


async def test_a_signature_does_not_cover_a_value_changed_later(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    # A customer copies their own signed start URL and changes the task.
    session = sign_session(_session(5, custom={"snow_task_id": "INC0010001"}))
    session.custom_attributes = [
        CustomAttribute(
            a.code_name, a.display_name, VICTIM if a.code_name == "snow_task_id" else a.value
        )
        for a in session.custom_attributes
    ]
    await _run(_config(tmp_path, sim, snow), sim, [session])
    assert _ours(snow, VICTIM, session.lsid) == []
    assert _ours(snow, "INC0010001", session.lsid) == []


# --- the legitimate paths -----------------------------------------------------------


async def test_signed_rep_typed_and_rep_survey_references_land(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    signed = sign_session(_session(6, custom={"snow_task_id": "INC0010001"}, rating="5"))
    typed = _typed_by_rep(_session(7), "INC0010002")
    surveyed = _session(8)
    surveyed.rep_surveys = [ExitSurvey(2, [SurveyAnswer("task_number", "INC0010004")])]
    state = _state(snow, "INC0010001")
    assert state != "6"
    await _run(_config(tmp_path, sim, snow), sim, [signed, typed, surveyed])
    assert {e["element"] for e in _ours(snow, "INC0010001", signed.lsid)} == {"comments"}
    assert _state(snow, "INC0010001") == "6"  # the survey rule applied: trusted
    assert _ours(snow, "INC0010002", typed.lsid)
    assert _ours(snow, "INC0010004", surveyed.lsid)


async def test_trust_signed_refuses_what_a_representative_typed(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    typed = _typed_by_rep(_session(9), "INC0010002")
    notes = await _run(_config(tmp_path, sim, snow, trust="signed"), sim, [typed])
    assert _ours(snow, "INC0010002", typed.lsid) == []
    assert any("refused: not signed by rsbridge" in n for n in notes)


async def test_the_grace_period_admits_unsigned_keys_of_sessions_started_before_it(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    old = _session(10, custom={"snow_task_id": "INC0010001"}, rating="5")
    new = _session(11, custom={"snow_task_id": "INC0010002"})
    assert old.start_time is not None and new.start_time is not None
    new = dataclasses.replace(new, start_time=datetime.now(UTC) - timedelta(seconds=30))
    cutoff = (old.start_time + timedelta(seconds=1)).isoformat()
    assert new.start_time is not None and new.start_time.isoformat() > cutoff
    state = _state(snow, "INC0010001")
    await _run(_config(tmp_path, sim, snow, unsigned_grace_until=cutoff), sim, [old, new])
    # Admitted, but untrusted: work notes, no state change.
    assert {e["element"] for e in _ours(snow, "INC0010001", old.lsid)} == {"work_notes"}
    assert _state(snow, "INC0010001") == state
    assert _ours(snow, "INC0010002", new.lsid) == []


async def test_auto_create_on_join_writes_back_a_signed_reference(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    # A live session with no ticket: the join creates one and writes it back signed, so
    # that a later association (another integration, a replay) trusts it.
    key = sim.state.generate_session_key(queue_id="general")
    lsid = sim.state.start_session(key.short_key)
    form = {"event": "support_conference_member_added", "version": "1", "lsid": lsid}
    config = _config(tmp_path, sim, snow, create_on_join=True)
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                f"{url}/ERSPost?appliance=default",
                data={**form, "type": "representative", "timestamp": str(int(time.time()))},
            )
            assert answer.status_code == 200
        await drained(engine)
        live = sim.state.active_sessions[lsid]
        task = live.custom["snow_task_id"]
        started = datetime.fromtimestamp(live.start_time, UTC)
        assert signed_names(
            live.custom["rsb_sig"],
            {"snow_task_id": task},
            integration="servicenow",
            started=started,
        ) == {"snow_task_id"}
        # The end lands on the created ticket, trusted (comments, as configured).
        report = sim.state.complete_session(lsid)
        await emit(url, [report])
        await drained(engine)
    (row,) = snow.state.query("u_rs_session")
    assert row["u_task"] == task
    ours = _marked(snow.state.journal(task), lsid)
    assert ours and {e["element"] for e in ours} == {"comments"}


# --- the pieces ----------------------------------------------------------------------


def test_signatures_verify_per_attribute_and_across_a_rotation() -> None:
    old, new = SecretStr("o" * 32), SecretStr("n" * 32)
    values = {"external_key": "INC1", "snow_task_id": "abc"}
    issued = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    start = issued + timedelta(hours=1)
    signed = Signer(old).sign("app1", "snow", values, now=issued)

    def verified(signer: Signer, *, app: str = "app1", integration: str = "snow", **kw: Any) -> Any:
        values_now = kw.pop("values", values)
        return signer.verified(app, integration, kw.pop("sig", signed), values_now, **kw)

    assert verified(Signer(old), started=start) == {"external_key", "snow_task_id"}
    # One value changed: the other still verifies.
    changed = {**values, "snow_task_id": "other"}
    assert verified(Signer(old), values=changed, started=start) == {"external_key"}
    # Another appliance, another integration, another secret: nothing.
    assert verified(Signer(old), app="app2", started=start) == frozenset()
    assert verified(Signer(old), integration="other-snow", started=start) == frozenset()
    assert verified(Signer(new), started=start) == frozenset()
    # After a rotation the previous secret still verifies.
    assert verified(Signer(new, [old]), started=start) == set(values)
    # Only sessions that start within max_age of the signature (and not well before it).
    assert verified(Signer(old), started=issued + timedelta(days=9)) == frozenset()
    assert verified(Signer(old), started=issued - timedelta(hours=1)) == frozenset()
    assert verified(Signer(old), started=None) == frozenset()
    short = Signer(old, max_age=timedelta(minutes=30))
    assert verified(short, started=start) == frozenset()
    for junk in ("", "v1;external_key:" + "A" * 22, "v2;snow/external_key/1:short", "x" * 2000):
        assert verified(Signer(old), sig=junk, started=start) == frozenset()


def test_a_write_back_keeps_the_other_entries_of_a_signature() -> None:
    signer = Signer(SecretStr("k" * 32))
    issued = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    key = signer.sign("app", "snow", {"external_key": "INC1"}, now=issued)
    key = signer.sign("app", "audit", {"external_key": "INC1"}, now=issued, keep=key)
    both = signer.sign("app", "snow", {"snow_task_id": "abc"}, now=issued, keep=key)
    values = {"external_key": "INC1", "snow_task_id": "abc"}
    started = issued + timedelta(minutes=1)
    assert signer.verified("app", "snow", both, values, started=started) == set(values)
    assert signer.verified("app", "audit", both, values, started=started) == {"external_key"}
    # Re-signing an attribute replaces this integration's entry, not another's.
    again = signer.sign("app", "snow", {"external_key": "INC2"}, now=issued, keep=both)
    assert again.count("snow/external_key/") == 1 and "audit/external_key/" in again


def test_only_the_last_external_key_change_by_a_representative_counts() -> None:
    session = _session(12, external_key="INC1")
    assert not rep_set_external_key(session)
    assert rep_set_external_key(_typed_by_rep(_session(13), "INC2"))
    # A representative typed one value, something else is there now.
    changed = _typed_by_rep(_session(14), "INC2")
    changed.external_key = "INC3"
    assert not rep_set_external_key(changed)
    # A customer's (or system's) change after the representative's wins.
    later = _typed_by_rep(_session(15), "INC2")
    assert later.end_time is not None
    later.events.append(
        SessionEvent(
            later.end_time - timedelta(seconds=5),
            EventType.EXTERNAL_KEY,
            performed_by=Actor("customer", "Mallory", 1),
        )
    )
    assert not rep_set_external_key(later)


def test_the_origin_of_each_source() -> None:
    session = sign_session(_session(16, custom={"snow_task_id": "INC1", "ticket_id": "X"}))
    session.custom_attributes.append(CustomAttribute("late", "Late", "added by a customer"))
    signer = Signer(SecretStr(SIGNING_SECRET))
    trust = judge_session(session, AssociationConfig(), "default", "servicenow", signer)
    assert trust.origin("custom:snow_task_id") == "signed"
    assert trust.origin("custom:late") == "customer"
    assert trust.origin("rep_survey:task_number") == "representative"
    for appliance, integration in (("other", "servicenow"), ("default", "audit")):
        other = judge_session(session, AssociationConfig(), appliance, integration, signer)
        assert other.origin("custom:snow_task_id") == "customer"


def test_grace_is_time_bounded_and_actions_need_a_secret() -> None:
    with pytest.raises(ValueError, match="at most 31 days ahead"):
        AssociationConfig(unsigned_grace_until=datetime.now(UTC) + timedelta(days=60))
    with pytest.raises(ValueError, match="time zone"):
        AssociationConfig(unsigned_grace_until=datetime(2026, 1, 1))
    data: dict[str, Any] = {
        "appliances": [{"host": "127.0.0.1:9", "client_id": "i", "client_secret": "s"}],
        "actions": {"enabled": True, "tokens": ["t" * 20]},
        "integrations": [{"name": "audit", "connector": "jsonl", "settings": {"path": "x"}}],
    }
    with pytest.raises(ConfigurationError, match=r"needs a \[signing\] secret"):
        parse_config(data)
    parse_config({**data, "signing": {"secret": "s" * 32}})
    trusting = [{**data["integrations"][0], "association": {"trust": "any"}}]
    parse_config({**data, "integrations": trusting})
    with pytest.raises(ConfigurationError, match="at least 32 characters"):
        parse_config({**data, "signing": {"secret": "short"}})


@pytest.mark.parametrize("connector", ["jsonl", "webhook"])
async def test_virtual_tickets_are_plain_ids(tmp_path: Path, connector: str) -> None:
    cls = connector_class(connector)
    settings = (
        {"path": str(tmp_path / "x.jsonl")}
        if connector == "jsonl"
        else {"url": "http://127.0.0.1:9/"}
    )
    instance = cls(cls.validate_settings(settings))
    try:
        assert (await instance.find_ticket(" CASE-1026 ")).id == "CASE-1026"
        for bad in ("a\r\nX-Injected: 1", "<script>alert(1)</script>", "x" * 200, "a b"):
            with pytest.raises(TicketNotFoundError, match="not a ticket id"):
                await instance.find_ticket(bad)
    finally:
        await instance.aclose()
