"""The configuration file: parsing, defaults, secrets, validation and error messages."""

from __future__ import annotations

import ipaddress
import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr, ValidationError

from rsbridge.appliance.events import CUSTOMER_SURVEY, END, IMPORTABLE_EVENTS, REP_SURVEY
from rsbridge.config import (
    ApplianceConfig,
    AssociationConfig,
    Config,
    EngineConfig,
    IntegrationConfig,
    load_config,
    parse_config,
    resolve_secret,
)
from rsbridge.connectors import registry
from rsbridge.connectors.base import (
    CheckResult,
    Setting,
)
from rsbridge.errors import ConfigurationError
from tests.stub_connectors import CheckOnlyConnector

ROOT = Path(__file__).resolve().parents[1]

#: Distinctive, so that a leak anywhere is found by a plain substring search.
SECRET = "Zq7-xyzzy-SECRET-value-4711"


class DummyConnector(CheckOnlyConnector):
    """A connector with one setting of each kind, registered for these tests only."""

    name = "dummy"
    title = "Dummy"
    settings: ClassVar[list[Setting]] = [
        Setting("url", "url", required=True, help="where"),
        Setting("token", secret=True, help="API token"),
        Setting("retries", "int", default=3),
        Setting("mode", choices=("fast", "slow"), default="fast"),
    ]

    async def check(self) -> CheckResult:
        return CheckResult("dummy reached")


@pytest.fixture(autouse=True)
def _dummy_connector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTIN, "dummy", f"{__name__}:DummyConnector")


APPLIANCE = """
[[appliances]]
host = "support.example.com"
client_id = "0123456789abcdef"
client_secret = "plain-secret"
"""

INTEGRATION = """
[[integrations]]
name = "tickets"
connector = "dummy"

[integrations.settings]
url = "https://tickets.example.com/api"
"""


def write(tmp_path: Path, text: str, name: str = "rsbridge.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Config:
    return load_config(write(tmp_path, text))


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigurationError) as info:
        load(tmp_path, text)
    return info.value.message


def appliance(**overrides: Any) -> dict[str, Any]:
    return {
        "host": "support.example.com",
        "client_id": "0123456789abcdef",
        "client_secret": "plain-secret",
        **overrides,
    }


def integration(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "tickets",
        "connector": "dummy",
        "settings": {"url": "https://tickets.example.com/api"},
        **overrides,
    }


def parse_error(data: Mapping[str, Any]) -> str:
    with pytest.raises(ConfigurationError) as info:
        parse_config(data)
    return info.value.message


# --- a minimal file and the defaults ---------------------------------------------------


def test_minimal_file(tmp_path: Path) -> None:
    config = load(tmp_path, APPLIANCE)
    (only,) = config.appliances
    assert only.id == "default"
    assert only.host == "support.example.com"
    assert only.client_id == "0123456789abcdef"
    assert only.client_secret.get_secret_value() == "plain-secret"
    assert config.integrations == []
    assert config.appliance("default") is only
    assert config.appliance("other") is None


def test_an_empty_file_is_a_valid_configuration(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config.appliances == [] and config.integrations == []


def test_engine_defaults(tmp_path: Path) -> None:
    engine = load(tmp_path, APPLIANCE).engine
    assert engine.store == tmp_path / "rsbridge.db"
    assert (engine.listen_host, engine.listen_port) == ("127.0.0.1", 8180)
    assert engine.trusted_proxies == []
    assert engine.max_event_bytes == 64 * 1024
    assert engine.workers == 8
    assert engine.lease_seconds == 120.0
    assert engine.shutdown_grace_seconds == 20.0
    assert engine.report_batch_size == 100
    assert engine.report_wait_seconds == 900.0
    assert (engine.backoff_base_seconds, engine.backoff_max_seconds) == (5.0, 900.0)
    assert engine.poll_lookback_hours == 24.0


def test_appliance_defaults() -> None:
    config = ApplianceConfig.model_validate(appliance())
    assert config.id == "default"
    assert config.locale == "en-us"
    assert config.allow_invalid_certificates is False
    assert config.use_plain_http is False
    assert config.outbound_event_token is None
    assert config.accepted_addresses == [
        ipaddress.ip_network("0.0.0.0/0"),
        ipaddress.ip_network("::/0"),
    ]


def test_integration_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, APPLIANCE + INTEGRATION)
    (item,) = config.integrations
    assert item.appliance == "default"
    assert item.disabled is False
    assert item.outbound_events == list(IMPORTABLE_EVENTS)
    assert item.polling_events == []
    assert item.polling is False
    assert item.polling_interval_seconds == 300.0
    assert item.survey_lookback_hours == 24.0
    assert item.retry_limit == 5
    assert item.retry_outbound_events == list(IMPORTABLE_EVENTS)
    assert item.retry_polling_events == [END, CUSTOMER_SURVEY]
    assert item.import_events is None
    assert item.templates is None
    assert item.association == AssociationConfig()
    assert item.association.ticket_from is None  # the connector's default applies
    assert item.association.on_unmatched == "skip"
    assert item.association.create_fields == {}
    settings = item.connector_settings()
    assert settings.model_dump() == {
        "url": "https://tickets.example.com/api",
        "token": None,
        "retries": 3,
        "mode": "fast",
        "allow_plain_http": False,  # every connector with a url setting has it
    }


def test_a_full_file(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [engine]
        store = "/var/lib/rsbridge/state.db"
        listen_host = "0.0.0.0"
        listen_port = 9000
        trusted_proxies = ["10.1.0.0/16"]
        workers = 2

        [[appliances]]
        id = "eu"
        host = "support.example.com:8443"
        client_id = "abc"
        client_secret = "s"
        locale = "de-de"
        outbound_event_token = "t0ken"
        accepted_addresses = ["192.0.2.10", "198.51.100.0/24"]

        [[integrations]]
        name = "tickets"
        connector = "dummy"
        appliance = "eu"
        outbound_events = ["support_conference_end"]
        polling_events = ["support_conference_end"]
        polling_interval_seconds = 60
        retry_limit = 0
        import_events = ["Chat Message", "Session Note Added"]

        [integrations.association]
        ticket_from = ["custom:ticket_id", "external_key", "rep_survey:Ticket number"]
        on_unmatched = "create"
        create_fields = { short_description = "Remote support {{ session.lsid }}" }

        [integrations.settings]
        url = "https://tickets.example.com"
        retries = 7
        mode = "slow"
        """,
    )
    assert config.engine.store == Path("/var/lib/rsbridge/state.db")
    assert config.engine.trusted_proxies == [ipaddress.ip_network("10.1.0.0/16")]
    item = config.integrations[0]
    assert item.polling is True
    assert item.association.on_unmatched == "create"
    assert (item.association.ticket_from or [])[0] == "custom:ticket_id"
    assert item.import_events == ["Chat Message", "Session Note Added"]
    assert config.active_integrations("eu") == [item]
    assert config.active_integrations("default") == []
    assert config.integration("tickets") is item
    assert config.integration("nope") is None
    token = config.appliances[0].outbound_event_token
    assert token is not None and token.get_secret_value() == "t0ken"


def test_disabled_integrations_are_not_active() -> None:
    config = parse_config(
        {
            "appliances": [appliance()],
            "integrations": [
                integration(name="on", polling_events=[END]),
                integration(name="off", disabled=True, polling_events=[END]),
            ],
        }
    )
    assert [i.name for i in config.active_integrations()] == ["on"]
    assert config.integrations[1].polling is False


# --- secrets -------------------------------------------------------------------------


def test_secret_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RSB_TEST_SECRET", "from-env")
    monkeypatch.setenv("RSB_TEST_TOKEN", "token-env")
    config = load(
        tmp_path,
        """
        [[appliances]]
        host = "support.example.com"
        client_id = "abc"
        client_secret = { env = "RSB_TEST_SECRET" }
        outbound_event_token = { env = "RSB_TEST_TOKEN" }
        """,
    )
    (item,) = config.appliances
    assert item.client_secret.get_secret_value() == "from-env"
    assert item.outbound_event_token is not None
    assert item.outbound_event_token.get_secret_value() == "token-env"


def test_secret_from_file_is_stripped(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("from-file\n", encoding="utf-8")
    config = load(
        tmp_path,
        f"""
        [[appliances]]
        host = "support.example.com"
        client_id = "abc"
        client_secret = {{ file = "{secret_file}" }}
        """,
    )
    assert config.appliances[0].client_secret.get_secret_value() == "from-file"


def test_relative_secret_file_is_read_next_to_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "secret.txt").write_text("beside-config", encoding="utf-8")
    (tmp_path / "conf" / "token.txt").write_text("tkn-file", encoding="utf-8")
    path = write(
        tmp_path / "conf",
        APPLIANCE.replace('"plain-secret"', '{ file = "secret.txt" }')
        + INTEGRATION
        + 'token = { file = "token.txt" }\n',
    )
    monkeypatch.chdir(tmp_path)  # somewhere else: the path must not depend on the cwd
    config = load_config(path)
    assert config.appliances[0].client_secret.get_secret_value() == "beside-config"
    token = config.integrations[0].connector_settings().model_dump()["token"]
    assert isinstance(token, SecretStr) and token.get_secret_value() == "tkn-file"


def test_missing_environment_variable_is_named(tmp_path: Path) -> None:
    os.environ.pop("RSB_TEST_UNSET", None)
    message = error_of(tmp_path, APPLIANCE.replace('"plain-secret"', '{ env = "RSB_TEST_UNSET" }'))
    assert "RSB_TEST_UNSET" in message
    assert "appliances[0].client_secret" in message
    assert "not set" in message


def test_unreadable_secret_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-secret"
    message = error_of(tmp_path, APPLIANCE.replace('"plain-secret"', f'{{ file = "{missing}" }}'))
    assert str(missing) in message
    assert "appliances[0].client_secret" in message


def test_a_secret_of_another_shape_is_refused(tmp_path: Path) -> None:
    message = error_of(
        tmp_path, APPLIANCE.replace('"plain-secret"', '{ env = "A", file = "/etc/b" }')
    )
    assert "env" in message and "file" in message


def test_resolve_secret_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RSB_TEST_DIRECT", SECRET)
    assert resolve_secret({"env": "RSB_TEST_DIRECT"}, where="x") == SECRET
    assert resolve_secret("literal", where="x") == "literal"
    assert resolve_secret(5, where="x") == 5
    monkeypatch.delenv("NOPE_X", raising=False)
    with pytest.raises(ConfigurationError, match=r"^here: environment variable NOPE_X"):
        resolve_secret({"env": "NOPE_X"}, where="here")


def test_connector_secret_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RSB_TEST_CONNECTOR", SECRET)
    config = parse_config(
        {
            "appliances": [appliance()],
            "integrations": [
                integration(
                    settings={"url": "https://x.example", "token": {"env": "RSB_TEST_CONNECTOR"}}
                )
            ],
        }
    )
    token = config.integrations[0].connector_settings().model_dump()["token"]
    assert token.get_secret_value() == SECRET
    monkeypatch.delenv("RSB_TEST_CONNECTOR")
    with pytest.raises(ConfigurationError, match="RSB_TEST_CONNECTOR") as info:
        config.integrations[0].connector_settings()
    assert "integration tickets: settings.token" in info.value.message


def test_empty_client_secret_is_refused() -> None:
    assert "client_secret: must not be empty" in parse_error(
        {"appliances": [appliance(client_secret="")]}
    )
    assert "client_id" in parse_error({"appliances": [appliance(client_id="")]})


def test_outbound_event_token_length() -> None:
    ok = parse_config({"appliances": [appliance(outbound_event_token="x" * 255)]})
    assert ok.appliances[0].outbound_event_token is not None
    assert "1 to 255" in parse_error({"appliances": [appliance(outbound_event_token="x" * 256)]})
    assert "1 to 255" in parse_error({"appliances": [appliance(outbound_event_token="")]})


def test_parsing_leaves_the_callers_data_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RSB_TEST_SECRET", SECRET)
    data = {"appliances": [appliance(client_secret={"env": "RSB_TEST_SECRET"})]}
    parse_config(data)
    assert data["appliances"][0]["client_secret"] == {"env": "RSB_TEST_SECRET"}


# --- secrets never shown ---------------------------------------------------------------


def _secret_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("RSB_TEST_SECRET", SECRET)
    (tmp_path / "token").write_text(SECRET + "-file", encoding="utf-8")
    return load(
        tmp_path,
        f"""
        [[appliances]]
        id = "inline"
        host = "support.example.com"
        client_id = "abc"
        client_secret = "{SECRET}"
        outbound_event_token = "{SECRET}-token"

        [[appliances]]
        id = "indirect"
        host = "support2.example.com"
        client_id = "abc"
        client_secret = {{ env = "RSB_TEST_SECRET" }}
        outbound_event_token = {{ file = "token" }}

        [[integrations]]
        name = "tickets"
        connector = "dummy"
        appliance = "inline"

        [integrations.settings]
        url = "https://tickets.example.com"
        token = "{SECRET}-connector"
        """,
    )


def test_secrets_never_appear_in_reprs_or_dumps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _secret_config(tmp_path, monkeypatch)
    settings = config.integrations[0].connector_settings()
    shown = [
        repr(config),
        str(config),
        config.model_dump_json(),
        str(config.model_dump()),
        repr(config.integrations[0]),
        repr(config.integrations[0].settings),
        repr(settings),
        settings.model_dump_json(),
    ]
    for text in shown:
        assert SECRET not in text
    # ...while the values are there for the code that sends them.
    assert config.appliances[0].client_secret.get_secret_value() == SECRET
    assert settings.model_dump()["token"].get_secret_value() == SECRET + "-connector"


@pytest.mark.parametrize(
    "appliance_lines",
    [
        f'client_secrt = "{SECRET}"',  # a typo: refused as unknown, value not echoed
        f'outbound_event_token = "{SECRET * 20}"',  # too long
        f'client_secret = "{SECRET}"\nlocale = ["{SECRET}"]',
        f'client_secret = "{SECRET}"\nuse_plain_http = "{SECRET}"',
    ],
)
def test_secrets_never_appear_in_errors(tmp_path: Path, appliance_lines: str) -> None:
    message = error_of(
        tmp_path,
        f'[[appliances]]\nhost = "support.example.com"\nclient_id = "abc"\n{appliance_lines}\n',
    )
    assert message
    assert SECRET not in message


@pytest.mark.parametrize(
    "settings",
    [
        {"url": "https://x.example", "token": SECRET, "retries": SECRET},
        {"url": "https://x.example", "token": SECRET, "tokn": SECRET},
        {"url": "https://x.example", "token": [SECRET]},
        {"token": SECRET},
        {"url": "https://x.example", "token": SECRET, "mode": SECRET},
    ],
)
def test_connector_setting_errors_never_show_secrets(settings: dict[str, Any]) -> None:
    message = parse_error(
        {"appliances": [appliance()], "integrations": [integration(settings=settings)]}
    )
    assert "integration tickets: settings (dummy)" in message
    assert SECRET not in message


def test_a_raw_validation_error_does_not_show_the_input() -> None:
    with pytest.raises(ValidationError) as info:
        ApplianceConfig.model_validate(
            appliance(client_secret=SECRET, outbound_event_token=SECRET * 20)
        )
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


# --- appliance validation --------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["support.example.com", "support.example.com:8443", "10.0.0.5", "public.example.com:80"],
)
def test_plain_http_is_refused_for_remote_hosts(host: str) -> None:
    message = parse_error({"appliances": [appliance(host=host, use_plain_http=True)]})
    assert "use_plain_http" in message and "loopback" in message


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.1:8080",
        "127.9.9.9",
        "localhost",
        "localhost:8080",
        "LOCALHOST",
        "[::1]",
        "[::1]:8080",
    ],
)
def test_plain_http_is_allowed_for_loopback(host: str) -> None:
    config = parse_config({"appliances": [appliance(host=host, use_plain_http=True)]})
    assert config.appliances[0].use_plain_http is True


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("https://support.example.com", "scheme"),
        ("support.example.com/login", "not a host name"),
        ("user@support.example.com", "not a host name"),
        ("support.example.com:99999", "port"),
        ("", "not a host name"),
    ],
)
def test_bad_hosts(host: str, expected: str) -> None:
    message = parse_error({"appliances": [appliance(host=host)]})
    assert "appliances.0.host" in message and expected in message


@pytest.mark.parametrize("appliance_id", ["default", "prod_1.eu", "A9"])
def test_appliance_id_charset_accepts(appliance_id: str) -> None:
    assert (
        parse_config({"appliances": [appliance(id=appliance_id)]}).appliances[0].id == appliance_id
    )


@pytest.mark.parametrize("appliance_id", ["prod-eu", "has space", "", "a/b", "ü"])
def test_appliance_id_charset_refuses(appliance_id: str) -> None:
    message = parse_error({"appliances": [appliance(id=appliance_id)]})
    assert "appliances.0.id" in message and "letters, digits" in message


def test_accepted_addresses_all_and_networks() -> None:
    def parsed(value: object) -> list[Any]:
        config = parse_config({"appliances": [appliance(accepted_addresses=value)]})
        return list(config.appliances[0].accepted_addresses)

    everything = [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
    assert parsed("ALL") == everything
    assert parsed(["all"]) == everything
    assert parsed(["192.0.2.10", "198.51.100.0/24", "2001:db8::/32"]) == [
        ipaddress.ip_network("192.0.2.10/32"),
        ipaddress.ip_network("198.51.100.0/24"),
        ipaddress.ip_network("2001:db8::/32"),
    ]
    # The vendor's form: one comma-separated string.
    assert parsed("192.0.2.10, 198.51.100.0/24") == [
        ipaddress.ip_network("192.0.2.10/32"),
        ipaddress.ip_network("198.51.100.0/24"),
    ]
    # Host bits set are accepted as the network they belong to.
    assert parsed(["198.51.100.7/24"]) == [ipaddress.ip_network("198.51.100.0/24")]
    assert parsed([]) == []


@pytest.mark.parametrize("value", [["10.0.0.0/33"], ["not-an-ip"], "10.0.0.1, 300.1.1.1"])
def test_invalid_accepted_address(value: object) -> None:
    message = parse_error({"appliances": [appliance(accepted_addresses=value)]})
    assert "appliances.0.accepted_addresses" in message
    assert "is not an IP address or CIDR network" in message


def test_invalid_trusted_proxy() -> None:
    message = parse_error({"engine": {"trusted_proxies": ["10.0.0.0/40"]}})
    assert "engine.trusted_proxies" in message


# --- references and names --------------------------------------------------------------


def test_duplicate_appliance_ids() -> None:
    message = parse_error({"appliances": [appliance(), appliance(host="b.example.com")]})
    assert "appliance id used more than once: default" in message


def test_duplicate_integration_names() -> None:
    message = parse_error(
        {"appliances": [appliance()], "integrations": [integration(), integration()]}
    )
    assert "integration name used more than once: tickets" in message


def test_integration_pointing_at_an_unknown_appliance() -> None:
    message = parse_error(
        {"appliances": [appliance(id="eu")], "integrations": [integration(appliance="us")]}
    )
    assert "integration tickets" in message
    assert "'us'" in message and "known: eu" in message


def test_integration_without_any_appliance() -> None:
    assert "known: none" in parse_error({"integrations": [integration()]})


@pytest.mark.parametrize("name", ["has space", "", "a/b", "x:y"])
def test_integration_name_charset(name: str) -> None:
    message = parse_error({"appliances": [appliance()], "integrations": [integration(name=name)]})
    assert "integrations.0.name" in message


# --- event types -----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["outbound_events", "retry_outbound_events"])
def test_unknown_outbound_event_types(field: str) -> None:
    message = parse_error(
        {
            "appliances": [appliance()],
            "integrations": [integration(**{field: [END, "support_conference_bogus"]})],
        }
    )
    assert f"integrations.0.{field}" in message
    assert "support_conference_bogus" in message
    assert END in message  # the choices are listed


def test_member_events_are_not_importable() -> None:
    message = parse_error(
        {
            "appliances": [appliance()],
            "integrations": [integration(outbound_events=["support_conference_member_added"])],
        }
    )
    assert "unknown event types" in message


@pytest.mark.parametrize("field", ["polling_events", "retry_polling_events"])
def test_polling_supports_session_end_and_customer_survey(field: str) -> None:
    ok = parse_config(
        {
            "appliances": [appliance()],
            "integrations": [integration(**{field: [END, CUSTOMER_SURVEY]})],
        }
    )
    assert getattr(ok.integrations[0], field) == [END, CUSTOMER_SURVEY]
    message = parse_error(
        {"appliances": [appliance()], "integrations": [integration(**{field: [REP_SURVEY]})]}
    )
    assert f"integrations.0.{field}" in message and "polling supports" in message


def test_import_events_are_report_event_types() -> None:
    ok = parse_config(
        {"appliances": [appliance()], "integrations": [integration(import_events=["Chat Message"])]}
    )
    assert ok.integrations[0].import_events == ["Chat Message"]
    message = parse_error(
        {
            "appliances": [appliance()],
            "integrations": [integration(import_events=["Chat Messages"])],
        }
    )
    assert "unknown report event types" in message and "Chat Messages" in message


# --- association -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "source", ["external_key:x", "custom", "custom:", "rep_survey", "ticket", "survey:Ticket"]
)
def test_association_sources_refused(source: str) -> None:
    message = parse_error(
        {
            "appliances": [appliance()],
            "integrations": [integration(association={"ticket_from": [source]})],
        }
    )
    assert "integrations.0.association.ticket_from" in message
    assert "custom:<code_name>" in message


def test_association_unmatched_choices() -> None:
    message = parse_error(
        {
            "appliances": [appliance()],
            "integrations": [integration(association={"on_unmatched": "ignore"})],
        }
    )
    assert "integrations.0.association.on_unmatched" in message


# --- engine bounds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "field"),
    [
        ({"listen_port": 70000}, "listen_port"),
        ({"workers": 0}, "workers"),
        ({"report_batch_size": 101}, "report_batch_size"),
        ({"max_event_bytes": 10}, "max_event_bytes"),
        ({"lease_seconds": 0}, "lease_seconds"),
        ({"backoff_base_seconds": 60, "backoff_max_seconds": 30}, "backoff_max_seconds"),
    ],
)
def test_engine_bounds(engine: dict[str, Any], field: str) -> None:
    assert field in parse_error({"engine": engine})


def test_integration_bounds() -> None:
    message = parse_error(
        {
            "appliances": [appliance()],
            "integrations": [integration(polling_interval_seconds=1, retry_limit=1000)],
        }
    )
    assert "polling_interval_seconds" in message and "retry_limit" in message


# --- TOML and unknown keys -------------------------------------------------------------


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[[appliances]]\nhost = "a.example.com"\nclient_id abc\n')
    with pytest.raises(ConfigurationError) as info:
        load_config(path)
    assert str(path) in info.value.message
    assert "not valid TOML" in info.value.message
    assert "line 3" in info.value.message


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot read .*nowhere\.toml"):
        load_config(tmp_path / "nowhere.toml")


def test_errors_name_the_file_and_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, '[engine]\nworkers = 0\nlisten_port = "x"\n')
    with pytest.raises(ConfigurationError) as info:
        load_config(path)
    message = info.value.message
    assert message.startswith(f"{path}: invalid configuration")
    assert "engine.workers" in message and "engine.listen_port" in message


@pytest.mark.parametrize(
    ("snippet", "where"),
    [
        ("[engine]\nworkerz = 3\n", "engine.workerz"),
        ("[enigne]\n", "enigne"),
        (APPLIANCE + "hots = 'x'\n", "appliances.0.hots"),
        (
            APPLIANCE
            + INTEGRATION.replace('connector = "dummy"', 'connector = "dummy"\nretries = 3'),
            "integrations.0.retries",
        ),
        (
            APPLIANCE + INTEGRATION + "[integrations.association]\nticket = 'x'\n",
            "integrations.0.association.ticket",
        ),
    ],
)
def test_unknown_keys_are_refused(tmp_path: Path, snippet: str, where: str) -> None:
    message = error_of(tmp_path, snippet)
    assert where in message
    assert "Extra inputs are not permitted" in message


# --- paths -----------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_configuration_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    path = write(
        conf,
        '[engine]\nstore = "data/state.db"\n'
        + APPLIANCE
        + INTEGRATION.replace('connector = "dummy"', 'connector = "dummy"\ntemplates = "tpl"'),
    )
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("etc") / "rsbridge.toml")
    assert config.engine.store == conf / "data" / "state.db"
    assert config.integrations[0].templates == conf / "tpl"
    assert config.engine.store.is_absolute()
    assert path.exists()


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        '[engine]\nstore = "/srv/rsbridge.db"\n'
        + APPLIANCE
        + INTEGRATION.replace('connector = "dummy"', 'connector = "dummy"\ntemplates = "/srv/tpl"'),
    )
    assert config.engine.store == Path("/srv/rsbridge.db")
    assert config.integrations[0].templates == Path("/srv/tpl")


def test_parse_config_without_base_dir_keeps_relative_paths() -> None:
    config = parse_config({"engine": {"store": "state.db"}})
    assert config.engine.store == Path("state.db")


# --- connector settings ----------------------------------------------------------------


def test_unknown_connector_lists_the_available_ones() -> None:
    message = parse_error(
        {"appliances": [appliance()], "integrations": [integration(connector="servicenwo")]}
    )
    assert "integration tickets" in message
    assert "unknown connector 'servicenwo'" in message
    for name in registry.available():
        assert name in message
    assert "dummy" in message


def test_connector_settings_are_validated() -> None:
    def message(settings: dict[str, Any]) -> str:
        return parse_error(
            {"appliances": [appliance()], "integrations": [integration(settings=settings)]}
        )

    assert "url: Field required" in message({})
    assert "urll" in message({"url": "https://x.example", "urll": "y"})
    assert "retries" in message({"url": "https://x.example", "retries": "many"})
    assert "mode" in message({"url": "https://x.example", "mode": "medium"})


def test_disabled_integrations_are_validated_too() -> None:
    message = parse_error(
        {"appliances": [appliance()], "integrations": [integration(disabled=True, settings={})]}
    )
    assert "url: Field required" in message


def test_connector_settings_model() -> None:
    config = parse_config(
        {
            "appliances": [appliance()],
            "integrations": [
                integration(settings={"url": "https://x.example", "token": "t", "retries": 9})
            ],
        }
    )
    settings = config.integrations[0].connector_settings()
    values = settings.model_dump()
    assert values["retries"] == 9
    assert isinstance(values["token"], SecretStr)
    # The raw settings hold the inline secret wrapped, too.
    assert isinstance(config.integrations[0].settings["token"], SecretStr)


# --- models are importable and complete -------------------------------------------------


def test_models_refuse_mutation() -> None:
    config = parse_config({"appliances": [appliance()]})
    with pytest.raises(ValidationError):
        config.appliances[0].host = "other.example.com"  # type: ignore[misc]


def test_public_models() -> None:
    for model in (Config, EngineConfig, ApplianceConfig, IntegrationConfig, AssociationConfig):
        assert model.__doc__
        assert model.model_config.get("extra") == "forbid"


# --- the example file ------------------------------------------------------------------


def test_the_example_configuration_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rsbridge.connectors.jsonl")
    pytest.importorskip("rsbridge.connectors.webhook")
    for name in (
        "RSBRIDGE_CLIENT_SECRET",
        "RSBRIDGE_EVENT_TOKEN",
        "RSBRIDGE_WEBHOOK_SECRET",
        "RSBRIDGE_SIGNING_SECRET",
    ):
        monkeypatch.setenv(name, f"{name.lower()}-value-long-enough-to-sign-with")
    path = ROOT / "examples" / "rsbridge.toml"
    config = load_config(path)
    (only,) = config.appliances
    assert only.host == "support.example.com"
    assert sorted(i.connector for i in config.integrations) == ["jsonl", "webhook"]
    for item in config.integrations:
        item.connector_settings()
    assert isinstance(config.engine.store, Path) and config.engine.store.parent == path.parent


def test_the_clock_margin_defaults_by_store() -> None:
    # Several nodes' clocks stamp the compared times only on a shared store.
    assert parse_config({}).engine.clock_margin() == 0.0
    shared = {"store": "postgresql://rsbridge@db.example/rsbridge"}
    assert parse_config({"engine": shared}).engine.clock_margin() == 1.0
    given = {**shared, "clock_margin_seconds": 3}
    assert parse_config({"engine": given}).engine.clock_margin() == 3
