"""The connection test: run_checks against the simulated appliance and test connectors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from rsbridge.appliance.client import ApplianceClient
from rsbridge.config import ApplianceConfig, Config, parse_config
from rsbridge.connectors import registry
from rsbridge.connectors.base import (
    CheckResult,
    Setting,
)
from rsbridge.engine import check as check_module
from rsbridge.engine.appliances import make_appliance_client
from rsbridge.engine.check import CheckVerdict, run_checks
from rsbridge.errors import ConfigurationError, ConnectorAuthError
from rsbridge.sim.appliance.server import create_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.serve import serve_in_thread
from tests.conftest import SIGNING_SECRET
from tests.stub_connectors import CheckOnlyConnector

#: Distinctive, so that a leak anywhere is found by a plain substring search.
SECRET = "Zq7-xyzzy-SECRET-value-4711"


class ProbeConnector(CheckOnlyConnector):
    """A connector whose check does what its ``behaviour`` setting says."""

    name = "probe"
    title = "Probe"
    settings: ClassVar[list[Setting]] = [
        Setting("behaviour", choices=("pass", "refuse", "crash", "echo", "hang"), default="pass"),
        Setting("password", secret=True),
    ]
    checks: ClassVar[list[str]] = []
    closed: ClassVar[int] = 0

    async def check(self) -> CheckResult:
        behaviour = self.config.model_dump()["behaviour"]
        type(self).checks.append(behaviour)
        if behaviour == "refuse":
            raise ConnectorAuthError("probe: the system refused user rsbridge")
        if behaviour == "crash":
            raise RuntimeError(f"boom with {SECRET}")
        if behaviour == "echo":
            # A peer quoting the credential back: the message must still not show it.
            raise ConnectorAuthError(f"probe: server said 'bad password {SECRET}'")
        if behaviour == "hang":
            await asyncio.sleep(30)
        return CheckResult("probe system 1.0, user rsbridge")

    async def aclose(self) -> None:
        type(self).closed += 1
        await super().aclose()


@pytest.fixture(autouse=True)
def _probe_connector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTIN, "probe", f"{__name__}:ProbeConnector")
    ProbeConnector.checks = []
    ProbeConnector.closed = 0


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[SimApplianceState, str]]:
    """The simulated appliance on loopback: its state and ``host:port``."""
    state = SimApplianceState.default(seed=7)
    with serve_in_thread(create_app(state, rate_per_second=1000)) as url:
        yield state, url.removeprefix("http://")


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def appliance(host: str, client_id: str, secret: str, **extra: Any) -> dict[str, Any]:
    return {
        "host": host,
        "client_id": client_id,
        "client_secret": secret,
        "use_plain_http": True,
        **extra,
    }


def probe(name: str = "tickets", **extra: Any) -> dict[str, Any]:
    return {"name": name, "connector": "probe", **extra}


def config_for(
    appliances: list[dict[str, Any]],
    integrations: list[dict[str, Any]] | None = None,
    *,
    signing: bool = True,
) -> Config:
    data: dict[str, Any] = {
        "appliances": appliances,
        "integrations": [probe()] if integrations is None else integrations,
    }
    if signing:
        data["signing"] = {"secret": SIGNING_SECRET}
    return parse_config(data)


def good(sim: tuple[SimApplianceState, str], **extra: Any) -> dict[str, Any]:
    state, host = sim
    account = state.accounts[0]
    return appliance(host, account.client_id, account.client_secret, **extra)


def by_target(verdicts: list[CheckVerdict]) -> dict[str, CheckVerdict]:
    return {v.target: v for v in verdicts}


# --- appliances ------------------------------------------------------------------------


async def test_good_credentials(sim: tuple[SimApplianceState, str]) -> None:
    verdicts = await run_checks(config_for([good(sim)]))
    assert [v.target for v in verdicts] == ["appliance default", "integration tickets"]
    verdict = verdicts[0]
    assert verdict.ok and not verdict.skipped
    assert sim[1] in verdict.summary
    assert "API 1.19.0" in verdict.summary and "examplecorp" in verdict.summary


async def test_wrong_secret(sim: tuple[SimApplianceState, str]) -> None:
    state, host = sim
    config = config_for([appliance(host, state.accounts[0].client_id, SECRET)])
    verdict = by_target(await run_checks(config))["appliance default"]
    assert not verdict.ok
    assert "refused OAuth client id" in verdict.summary
    assert state.accounts[0].client_id in verdict.summary  # says which account
    assert SECRET not in verdict.summary
    assert SECRET not in repr(verdict)


async def test_account_without_full_access(sim: tuple[SimApplianceState, str]) -> None:
    state, host = sim
    read_only = state.accounts[1]
    config = config_for([appliance(host, read_only.client_id, read_only.client_secret)])
    verdict = by_target(await run_checks(config))["appliance default"]
    assert not verdict.ok
    assert "perm_command" in verdict.summary
    assert read_only.client_secret not in verdict.summary


async def test_unreachable_port() -> None:
    host = f"127.0.0.1:{free_port()}"
    verdict = by_target(await run_checks(config_for([appliance(host, "abc", SECRET)])))[
        "appliance default"
    ]
    assert not verdict.ok
    # The host as configured, port included: 127.0.0.1 alone names another appliance.
    assert f"could not connect to the appliance '{host}'" in verdict.summary
    assert SECRET not in verdict.summary


async def test_several_appliances_are_checked_independently(
    sim: tuple[SimApplianceState, str],
) -> None:
    config = config_for(
        [good(sim, id="up"), appliance(f"127.0.0.1:{free_port()}", "abc", SECRET, id="down")],
        [probe("a", appliance="up"), probe("b", appliance="down")],
    )
    verdicts = by_target(await run_checks(config))
    assert verdicts["appliance up"].ok
    assert not verdicts["appliance down"].ok
    assert verdicts["integration a"].ok and verdicts["integration b"].ok


async def test_appliance_without_enabled_integration_is_not_tested() -> None:
    config = config_for(
        [appliance(f"127.0.0.1:{free_port()}", "abc", SECRET, outbound_event_token="t0ken")],
        [probe(disabled=True)],
    )
    verdicts = await run_checks(config)
    assert verdicts == [
        CheckVerdict(
            "appliance default", True, "not used by an enabled integration; not tested", True
        ),
        CheckVerdict("integration tickets", True, "disabled; not tested", True),
    ]
    assert ProbeConnector.checks == []


OPEN_INTAKE = "no outbound_event_token and accepted_addresses is ALL"


@pytest.mark.parametrize(
    ("extra", "warned"),
    [
        ({}, True),
        ({"accepted_addresses": "ALL"}, True),
        ({"accepted_addresses": ["0.0.0.0/0"]}, True),
        ({"accepted_addresses": ["192.0.2.10", "::/0"]}, True),
        ({"outbound_event_token": "t0ken-t0ken"}, False),
        ({"accepted_addresses": ["192.0.2.10", "198.51.100.0/28"]}, False),
        ({"outbound_event_token": "t0ken-t0ken", "accepted_addresses": "ALL"}, False),
    ],
)
async def test_an_intake_open_to_anyone_is_warned(
    sim: tuple[SimApplianceState, str], extra: dict[str, Any], warned: bool
) -> None:
    verdict = by_target(await run_checks(config_for([good(sim, **extra)])))["appliance default"]
    assert verdict.ok  # a warning, not a failure
    assert any(OPEN_INTAKE in w for w in verdict.warnings) is warned
    if not warned:
        assert verdict.warnings == ()


async def test_an_open_intake_is_warned_for_an_unused_appliance_too() -> None:
    # Its events are still received and stored (as ignored).
    config = config_for([appliance("127.0.0.1:9", "abc", SECRET)], [probe(disabled=True)])
    verdict = by_target(await run_checks(config))["appliance default"]
    assert verdict.skipped
    assert any(OPEN_INTAKE in w for w in verdict.warnings)


class UrlProbeConnector(CheckOnlyConnector):
    """A connector with a URL setting whose check reaches nothing."""

    name = "urlprobe"
    title = "URL probe"
    settings: ClassVar[list[Setting]] = [Setting("endpoint", "url", required=True)]

    async def check(self) -> CheckResult:
        return CheckResult("fine")


@pytest.mark.parametrize(
    ("settings", "warned"),
    [
        ({"endpoint": "http://tickets.example.com:8080/api", "allow_plain_http": True}, True),
        ({"endpoint": "https://tickets.example.com/api"}, False),
        ({"endpoint": "https://tickets.example.com/api", "allow_plain_http": True}, False),
        ({"endpoint": "http://127.0.0.1:8080/api"}, False),
    ],
)
async def test_an_allowed_plain_http_url_is_warned(
    sim: tuple[SimApplianceState, str],
    monkeypatch: pytest.MonkeyPatch,
    settings: dict[str, Any],
    warned: bool,
) -> None:
    monkeypatch.setitem(registry.BUILTIN, "urlprobe", f"{__name__}:UrlProbeConnector")
    integration = {"name": "tickets", "connector": "urlprobe", "settings": settings}
    verdict = by_target(await run_checks(config_for([good(sim)], [integration])))[
        "integration tickets"
    ]
    assert verdict.ok
    expected = (
        "settings.endpoint is plain http:// to tickets.example.com:8080 (allowed by "
        "allow_plain_http): credentials and session reports cross the network in clear text"
    )
    assert verdict.warnings == ((expected,) if warned else ())


def test_a_plain_http_url_is_refused_without_allow_plain_http(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(registry.BUILTIN, "urlprobe", f"{__name__}:UrlProbeConnector")
    integration = {
        "name": "tickets",
        "connector": "urlprobe",
        "settings": {"endpoint": "http://tickets.example.com/api"},
    }
    with pytest.raises(ConfigurationError) as caught:
        config_for([appliance("127.0.0.1:9", "abc", SECRET)], [integration])
    assert "integration tickets: settings (urlprobe): endpoint: plain http:// to" in str(
        caught.value
    )


# --- connectors ------------------------------------------------------------------------


async def test_connector_check_passes(sim: tuple[SimApplianceState, str]) -> None:
    verdict = by_target(await run_checks(config_for([good(sim)])))["integration tickets"]
    assert verdict == CheckVerdict(
        "integration tickets", True, "Probe: probe system 1.0, user rsbridge"
    )
    assert ProbeConnector.checks == ["pass"]
    assert ProbeConnector.closed == 1


async def test_connector_check_fails(sim: tuple[SimApplianceState, str]) -> None:
    config = config_for([good(sim)], [probe(settings={"behaviour": "refuse"})])
    verdict = by_target(await run_checks(config))["integration tickets"]
    assert not verdict.ok
    assert verdict.summary == "probe: the system refused user rsbridge"
    assert ProbeConnector.closed == 1


async def test_unexpected_connector_error_shows_its_type_only(
    sim: tuple[SimApplianceState, str],
) -> None:
    config = config_for([good(sim)], [probe(settings={"behaviour": "crash"})])
    verdict = by_target(await run_checks(config))["integration tickets"]
    assert not verdict.ok
    assert verdict.summary == "unexpected error: RuntimeError"
    assert ProbeConnector.closed == 1


async def test_a_secret_echoed_by_a_peer_is_scrubbed(sim: tuple[SimApplianceState, str]) -> None:
    config = config_for([good(sim)], [probe(settings={"behaviour": "echo", "password": SECRET})])
    verdict = by_target(await run_checks(config))["integration tickets"]
    assert not verdict.ok
    assert SECRET not in verdict.summary
    assert "bad password ********" in verdict.summary


async def test_a_hanging_check_times_out(
    sim: tuple[SimApplianceState, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(check_module, "CHECK_TIMEOUT_SECONDS", 0.2)
    config = config_for([good(sim)], [probe(settings={"behaviour": "hang"})])
    verdict = by_target(await run_checks(config))["integration tickets"]
    assert not verdict.ok
    assert "no answer within" in verdict.summary
    assert ProbeConnector.closed == 1


async def test_settings_failing_at_check_time(
    sim: tuple[SimApplianceState, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RSB_CHECK_PASSWORD", SECRET)
    config = config_for([good(sim)], [probe(settings={"password": {"env": "RSB_CHECK_PASSWORD"}})])
    monkeypatch.delenv("RSB_CHECK_PASSWORD")
    verdict = by_target(await run_checks(config))["integration tickets"]
    assert not verdict.ok
    assert "RSB_CHECK_PASSWORD" in verdict.summary and "not set" in verdict.summary


async def test_disabled_integration_is_reported_not_tested(
    sim: tuple[SimApplianceState, str],
) -> None:
    config = config_for([good(sim)], [probe("on"), probe("off", disabled=True)])
    verdicts = by_target(await run_checks(config))
    assert verdicts["integration off"] == CheckVerdict(
        "integration off", True, "disabled; not tested", True
    )
    assert verdicts["integration on"].ok
    assert ProbeConnector.checks == ["pass"]


# --- templates -------------------------------------------------------------------------


async def test_templates_directory_compiles(
    sim: tuple[SimApplianceState, str], tmp_path: Path
) -> None:
    (tmp_path / "chat.txt").write_text("{% for e in events %}{{ e.event_type }}\n{% endfor %}")
    config = config_for([good(sim)], [probe(templates=str(tmp_path))])
    verdict = by_target(await run_checks(config))["integration tickets"]
    assert verdict.ok, verdict.summary
    assert verdict.summary.startswith("Probe: probe system 1.0, user rsbridge; ")
    assert f"templates {tmp_path}" in verdict.summary


async def test_missing_templates_directory(
    sim: tuple[SimApplianceState, str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope"
    config = config_for([good(sim)], [probe(templates=str(missing))])
    verdict = by_target(await run_checks(config))["integration tickets"]
    assert not verdict.ok
    assert str(missing) in verdict.summary
    assert verdict.summary.startswith("Probe: probe system 1.0")  # the connector still ran


async def test_broken_template(sim: tuple[SimApplianceState, str], tmp_path: Path) -> None:
    (tmp_path / "chat.txt").write_text("line one\n{% for e in events %}\n")
    config = config_for([good(sim)], [probe(templates=str(tmp_path))])
    verdict = by_target(await run_checks(config))["integration tickets"]
    assert not verdict.ok
    assert "chat.txt" in verdict.summary


# --- only ------------------------------------------------------------------------------


async def test_only_an_integration_checks_it_and_its_appliance(
    sim: tuple[SimApplianceState, str],
) -> None:
    config = config_for(
        [good(sim, id="one"), good(sim, id="two")],
        [probe("a", appliance="one"), probe("b", appliance="two")],
    )
    verdicts = await run_checks(config, only="b")
    assert [v.target for v in verdicts] == ["appliance two", "integration b"]
    assert all(v.ok for v in verdicts)


async def test_only_an_appliance(sim: tuple[SimApplianceState, str]) -> None:
    # Asked for by name, an appliance is tested even when no enabled integration uses it.
    config = config_for([good(sim, id="spare")], [])
    verdicts = await run_checks(config, only="spare")
    assert [v.target for v in verdicts] == ["appliance spare"]
    assert verdicts[0].ok and not verdicts[0].skipped


async def test_only_an_unknown_name(sim: tuple[SimApplianceState, str]) -> None:
    with pytest.raises(ConfigurationError, match=r"nothing to check called 'zzz'.*tickets"):
        await run_checks(config_for([good(sim)]), only="zzz")


async def test_empty_configuration() -> None:
    assert await run_checks(parse_config({})) == []


# --- make_appliance_client ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "scheme", "verify"),
    [
        ({}, "https", True),
        ({"allow_invalid_certificates": True}, "https", False),
        ({"use_plain_http": True, "host": "127.0.0.1:8080"}, "http", True),
        ({"call_deadline_seconds": 12.5}, "https", True),
    ],
)
async def test_make_appliance_client(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], scheme: str, verify: bool
) -> None:
    made: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def record(*args: Any, **kwargs: Any) -> ApplianceClient:
        made.append((args, kwargs))
        return ApplianceClient(*args, **kwargs)

    monkeypatch.setattr("rsbridge.engine.appliances.ApplianceClient", record)
    settings = ApplianceConfig.model_validate(
        {"host": "support.example.com", "client_id": "cid", "client_secret": SECRET, **extra}
    )
    async with make_appliance_client(settings) as client:
        assert client.base_url == f"{scheme}://{settings.host}"
    ((args, kwargs),) = made
    assert args == (settings.host, "cid", SECRET)
    deadline = extra.get("call_deadline_seconds", 300.0)
    assert kwargs == {"scheme": scheme, "verify": verify, "deadline": deadline}


@pytest.mark.parametrize(
    ("association", "signing", "expected"),
    [
        ({}, True, []),
        ({"trust": "signed"}, True, []),
        ({}, False, ["no [signing] secret: custom attributes and the external key count only"]),
        ({"trust": "any"}, True, ['association.trust = "any": a customer can send a session']),
        (
            {"unsigned_grace_until": "2020-01-01T00:00:00Z"},
            True,
            ["association.unsigned_grace_until (2020-01-01T00:00:00+00:00) has passed"],
        ),
        (
            {"unsigned_grace_until": "<soon>"},
            True,
            ["association.unsigned_grace_until: unsigned references of sessions started before"],
        ),
    ],
)
async def test_what_the_trust_policy_lets_a_customer_do_is_warned(
    sim: tuple[SimApplianceState, str],
    association: dict[str, Any],
    signing: bool,
    expected: list[str],
) -> None:
    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    rules = {k: soon if v == "<soon>" else v for k, v in association.items()}
    config = config_for([good(sim)], [{**probe(), "association": rules}], signing=signing)
    verdict = by_target(await run_checks(config))[f"integration {probe()['name']}"]
    assert verdict.ok
    assert len(verdict.warnings) == len(expected)
    for warning, start in zip(verdict.warnings, expected, strict=True):
        assert warning.startswith(start), warning
