"""``rsbridge check`` for ServiceNow: each finding through real HTTP against the simulated
instance, the probe rows it leaves (none), its call count, and how the findings print."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rsbridge.cli import app
from rsbridge.config import load_config, parse_config
from rsbridge.connectors.servicenow import ServiceNowConnector
from rsbridge.connectors.servicenow.checks import PROBE_MARK
from rsbridge.connectors.servicenow.schema import DEFAULT_TABLES
from rsbridge.engine import check as check_module
from rsbridge.engine.check import run_checks
from rsbridge.errors import CheckFailedError, ConfigurationError, ConnectorPermanentError
from rsbridge.sim.serve import serve_in_thread
from rsbridge.sim.servicenow import DemoSeed, SimServiceNowState, create_app
from tests.conftest import SIGNING_SECRET, free_port
from tests.servicenow_helpers import connector_factory, seeded_state

SESSION_TABLES = [t.name for t in DEFAULT_TABLES]

Factory = Callable[..., ServiceNowConnector]


class Instance:
    def __init__(self, state: SimServiceNowState, demo: DemoSeed, url: str) -> None:
        self.state, self.demo, self.url = state, demo, url


@pytest.fixture
def sn() -> Iterator[Instance]:
    state, demo = seeded_state(11)
    with serve_in_thread(create_app(state)) as url:
        yield Instance(state, demo, url)


@pytest.fixture
async def make(sn: Instance) -> AsyncIterator[Factory]:
    user, password = sn.demo.integration
    async with connector_factory(sn.url, user, password) as factory:
        yield factory


def row_counts(sn: Instance) -> dict[str, int]:
    return {t: len(sn.state.query(t)) for t in SESSION_TABLES if sn.state.has_table(t)}


async def findings(connector: ServiceNowConnector) -> tuple[str, ...]:
    with pytest.raises(CheckFailedError) as caught:
        await connector.check()
    return caught.value.findings


def one(found: tuple[str, ...], *parts: str) -> str:
    """The one finding that contains every part."""
    matching = [f for f in found if all(p in f for p in parts)]
    assert len(matching) == 1, (parts, found)
    return matching[0]


# --- a healthy instance ----------------------------------------------------------------


async def test_a_healthy_instance_passes_in_few_calls_and_keeps_no_probe_rows(
    sn: Instance, make: Factory
) -> None:
    before = row_counts(sn)
    start = len(sn.state.requests)
    result = await make().check()
    calls = sn.state.requests[start:]
    assert "user rsbridge" in result.summary
    assert len(calls) == 5, [(c.method, c.path) for c in calls]  # docs/servicenow.md says so
    assert [c.path for c in calls].count("/api/now/v1/batch") == 2
    # Each session table got a probe row (written, then deleted).
    inserts = [s for c in calls for s in c.sub_requests if s.method == "POST"]
    deletes = [s for c in calls for s in c.sub_requests if s.method == "DELETE"]
    assert sorted(s.path.rsplit("/", 1)[-1] for s in inserts) == sorted(SESSION_TABLES)
    reads = [s for c in calls for s in c.sub_requests if s.method == "GET"]
    assert all(s.status == 201 for s in inserts) and len(deletes) == len(SESSION_TABLES)
    assert all(s.status == 204 for s in deletes)
    assert len(reads) == len(SESSION_TABLES) and all(s.status == 200 for s in reads)
    assert row_counts(sn) == before
    assert any("probe rows written and deleted in 8 of 8" in d for d in result.details)
    assert any("journal field task.work_notes present; not written" in d for d in result.details)


async def test_oauth_costs_one_call_more(sn: Instance, make: Factory) -> None:
    client_id, client_secret = sn.demo.oauth_client
    connector = make(auth="oauth_password", client_id=client_id, client_secret=client_secret)
    start = len(sn.state.requests)
    await connector.check()
    calls = [r.path for r in sn.state.requests[start:]]
    assert len(calls) == 6 and calls[0] == "/oauth_token.do", calls


async def test_write_session_records_off_skips_the_session_tables(
    sn: Instance, make: Factory
) -> None:
    start = len(sn.state.requests)
    result = await make(write_session_records=False, tables=["survey=u_absent"]).check()
    assert not any(c.path == "/api/now/v1/batch" for c in sn.state.requests[start:])
    assert any("no session tables checked" in d for d in result.details)


# --- tables and columns ----------------------------------------------------------------


async def test_a_missing_table_is_named_with_its_fix(sn: Instance, make: Factory) -> None:
    found = await findings(make(tables=["survey=u_not_imported"]))
    text = one(found, "table u_not_imported is missing")
    assert "rsbridge's survey table" in text
    assert "Import the table definition" in text and '"survey=<name>"' in text
    assert len(found) == 1, found  # its columns are not listed one by one
    # The old, one-line form still reads as before (other callers see the message).
    with pytest.raises(ConnectorPermanentError, match="Import the table definition"):
        await make(tables=["survey=u_not_imported"]).check()


async def test_a_missing_column_renamed_by_settings_is_named(sn: Instance, make: Factory) -> None:
    found = await findings(make(fields=["rep.hostname=u_host_name"]))
    text = one(found, "u_rs_session_rep has no column u_host_name")
    assert "did you mean u_hostname" in text
    assert '"rep.hostname=<name>"' in text
    assert row_counts(sn) == dict.fromkeys(SESSION_TABLES, 0)


async def test_a_rename_to_an_existing_column_passes(sn: Instance, make: Factory) -> None:
    sn.state.define_table("u_rs_session_rep", [{"name": "u_host_name"}])
    await make(fields=["rep.hostname=u_host_name"]).check()


async def test_an_unreadable_dictionary_is_a_finding(sn: Instance, make: Factory) -> None:
    sn.state.set_table_acl("sys_dictionary", ["admin"], ["admin"])
    found = await findings(make())
    text = one(found, "cannot read sys_db_object / sys_dictionary")
    assert "Insufficient rights" in text
    assert len(found) == 1  # the probe still ran and passed
    assert row_counts(sn) == dict.fromkeys(SESSION_TABLES, 0)


async def test_a_journal_field_that_is_not_one_is_a_finding(sn: Instance, make: Factory) -> None:
    sn.state.define_table("task", [{"name": "comments", "internal_type": "string"}])
    found = await findings(make(journal_field="comments"))
    one(found, "task.comments is not a journal field")


# --- rights: probe rows ----------------------------------------------------------------


async def test_no_create_right_on_a_table_is_named(sn: Instance, make: Factory) -> None:
    sn.state.set_table_acl("u_rs_session_event", ["itil"], ["itil"], create_roles=["admin"])
    found = await findings(make())
    text = one(found, "no create right on u_rs_session_event")
    assert "ACL Exception Insert Failed" in text and "grant the integration user create" in text
    assert len(found) == 1
    assert row_counts(sn) == dict.fromkeys(SESSION_TABLES, 0)  # the other probes were removed


async def test_no_delete_right_names_the_probe_row_left(sn: Instance, make: Factory) -> None:
    sn.state.set_table_acl("u_rs_session_team", ["itil"], ["itil"], delete_roles=["admin"])
    found = await findings(make())
    text = one(found, "no delete right on u_rs_session_team")
    left = sn.state.query("u_rs_session_team")
    assert len(left) == 1
    assert left[0]["sys_id"] in text and PROBE_MARK in text
    assert left[0]["u_name"].startswith(PROBE_MARK)  # clearly rsbridge's probe
    counts = row_counts(sn)
    assert counts.pop("u_rs_session_team") == 1 and set(counts.values()) == {0}


async def test_no_read_right_on_a_table_is_named(sn: Instance, make: Factory) -> None:
    sn.state.set_table_acl("u_rs_session_customer", ["admin"], ["itil"])
    found = await findings(make())
    text = one(found, "no read right on u_rs_session_customer")
    assert "Insufficient rights to query records" in text
    assert len(found) == 1
    assert row_counts(sn) == dict.fromkeys(SESSION_TABLES, 0)


async def test_a_read_only_user_gets_one_finding_per_table(sn: Instance, make: Factory) -> None:
    sn.state.define_table("u_rs_session", read_roles=["itil"], write_roles=["admin"])
    found = await findings(make())
    one(found, "no create right on u_rs_session ")
    assert len(found) == 1


# --- auto-create ----------------------------------------------------------------------


async def test_a_misspelt_create_field_is_an_error(sn: Instance, make: Factory) -> None:
    found = await findings(make(create_dynamic_fields=["short_desc=issue"]))
    text = one(found, "incident has no column short_desc")
    assert "did you mean short_description" in text and "create_dynamic_fields" in text


async def test_the_associations_create_fields_are_checked(sn: Instance, make: Factory) -> None:
    connector = make()
    connector.check_create_fields = {"urgency": "2", "impakt": "2"}
    found = await findings(connector)
    text = one(found, "incident has no column impakt")
    assert "the association's create_fields" in text and "did you mean impact" in text
    assert len(found) == 1  # urgency exists


async def test_inherited_fields_count(sn: Instance, make: Factory) -> None:
    # short_description and work_notes are task's columns, seen from incident.
    await make(create_table="incident", create_dynamic_fields=["work_notes=issue"]).check()


async def test_bad_lookups_are_named(sn: Instance, make: Factory) -> None:
    connector = make(
        create_lookup_fields=[
            "assignment_group=sys_user_group.name=No Such Group",
            "company=core_compny.name=Acme",
        ],
        create_dynamic_lookup_fields=["caller_id=sys_user.user_nam=customer_username"],
    )
    found = await findings(connector)
    one(found, "table core_compny is missing", "create_lookup_fields (company)")
    one(found, "sys_user has no column user_nam", "did you mean user_name")
    one(found, "no sys_user_group record has name = 'No Such Group'")


async def test_good_lookups_pass(sn: Instance, make: Factory) -> None:
    await make(
        create_lookup_fields=["assignment_group=sys_user_group.name=Service Desk"],
        create_dynamic_lookup_fields=["caller_id=sys_user.user_name=customer_username|admin"],
    ).check()


# --- the instance URL -----------------------------------------------------------------


@pytest.mark.parametrize("url", ["dev1234.service-now.com", "dev1234.service-now.com/", "ftp://x"])
def test_an_instance_url_without_scheme_is_a_configuration_error(url: str) -> None:
    raw = {"instance_url": url, "username": "u", "password": "p"}
    with pytest.raises(ConfigurationError, match="instance_url") as caught:
        ServiceNowConnector.validate_settings(raw)
    if "://" not in url:
        assert "https://dev1234.service-now.com" in caught.value.message


def test_the_url_form_is_checked_when_the_configuration_loads() -> None:
    with pytest.raises(ConfigurationError, match=r"integration snow: settings.*instance_url"):
        parse_config(
            {
                "appliances": [{"host": "rs.example.com", "client_id": "c", "client_secret": "s"}],
                "integrations": [
                    {
                        "name": "snow",
                        "connector": "servicenow",
                        "settings": {
                            "instance_url": "dev1234.service-now.com",
                            "username": "u",
                            "password": "p",
                        },
                    }
                ],
            }
        )


# --- how findings reach rsbridge check --------------------------------------------------


async def test_attempt_keeps_one_line_errors_and_splits_findings() -> None:
    async def joined() -> str:
        raise ConnectorPermanentError("Remedy: form A missing; field B missing")

    async def structured() -> str:
        raise CheckFailedError("instance x: 2 problems found", ["a. Fix: b", "c. Fix: d"])

    assert await check_module._attempt(joined) == (
        False,
        "Remedy: form A missing; field B missing",
        (),
    )
    assert await check_module._attempt(structured) == (
        False,
        "instance x: 2 problems found",
        ("a. Fix: b", "c. Fix: d"),
    )
    assert str(CheckFailedError("h", ["a", "b"])) == "h: a; b"


def snow_config(tmp_path: Path, sn: Instance, settings: str, association: str = "") -> Path:
    user, password = sn.demo.integration
    path = tmp_path / "rsbridge.toml"
    path.write_text(
        f"""
[engine]
store = "engine.db"

[[appliances]]
id = "default"
host = "127.0.0.1:{free_port()}"
client_id = "c"
client_secret = "s"
use_plain_http = true

[signing]
secret = "{SIGNING_SECRET}"

[[integrations]]
name = "snow"
connector = "servicenow"
{association}
[integrations.settings]
instance_url = "{sn.url}"
username = "{user}"
password = "{password}"
{settings}
""",
        encoding="utf-8",
    )
    return path


async def test_run_checks_passes_create_fields_and_lists_findings(
    tmp_path: Path, sn: Instance
) -> None:
    path = snow_config(
        tmp_path,
        sn,
        'tables = ["survey=u_nope"]',
        'association = { on_unmatched = "create", create_fields = { short_desc = "x" } }',
    )
    verdicts = await run_checks(load_config(path), only="snow")
    verdict = next(v for v in verdicts if v.target == "integration snow")
    assert not verdict.ok
    assert verdict.summary.startswith("instance 127.0.0.1, user rsbridge: 2 problems found")
    assert len(verdict.details) == 2
    one(verdict.details, "table u_nope is missing")
    one(verdict.details, "incident has no column short_desc", "create_fields")


def test_rsbridge_check_prints_one_finding_per_line(tmp_path: Path, sn: Instance) -> None:
    path = snow_config(tmp_path, sn, 'create_dynamic_fields = ["short_desc=issue"]')
    result = CliRunner().invoke(
        app, ["check", "--config", str(path), "--integration", "snow"], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("FAIL integration snow:"))
    assert "1 problem found" in lines[head]
    assert lines[head + 1].startswith("       - incident has no column short_desc")
    assert "Fix: correct create_dynamic_fields" in lines[head + 1]
    assert sn.demo.integration[1] not in result.output
    # On a narrow terminal a finding wraps under its own text, never at column 0.
    narrow = CliRunner().invoke(
        app, ["check", "--config", str(path), "--integration", "snow"], env={"COLUMNS": "60"}
    )
    lines = narrow.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("       - "))
    body = lines[start:]
    assert body[0].startswith("       - incident has no column")
    assert len(body) > 2 and all(line.startswith(" " * 9) for line in body[1:])
    assert " ".join(line.strip() for line in body).startswith(
        "- incident has no column short_desc (did you mean short_description?)"
    )
