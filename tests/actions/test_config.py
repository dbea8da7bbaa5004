"""The ``[actions]``, ``[smtp]`` and ``[integrations.actions]`` configuration sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rsbridge.config import Config, load_config, parse_config
from rsbridge.errors import ConfigurationError
from tests.actions.conftest import integration
from tests.conftest import SIGNING_SECRET

TOKEN = "a-bearer-token-0123456789"


def parse(**sections: Any) -> Config:
    data: dict[str, Any] = {
        "appliances": [{"host": "support.example.com", "client_id": "id", "client_secret": "s"}],
        "signing": {"secret": SIGNING_SECRET},
        **sections,
    }
    return parse_config(data)


def test_defaults() -> None:
    config = parse(integrations=[integration("desk")])
    assert not config.actions.enabled and config.actions.tokens == []
    assert config.smtp is None
    actions = config.integrations[0].actions
    assert actions.session_key_source == "command_api"
    assert actions.assignment == "technician"
    assert actions.log_session_key and actions.log_customer_initiated
    assert not actions.email_key and not actions.self_service_enabled
    assert actions.session_start_type == "chat"
    assert (actions.jump_console, actions.jump_output) == ("rep", "url")


@pytest.mark.parametrize(
    ("sections", "needle"),
    [
        ({"actions": {"enabled": True}}, "needs at least one bearer token"),
        ({"actions": {"tokens": ["short"]}}, "token 0 is shorter than 16 characters"),
        ({"actions": {"link_secret": "short"}}, "at least 16 characters"),
        ({"actions": {"public_url": "rsbridge.example.com"}}, "http:// or https:// URL"),
        ({"actions": {"public_url": "https://x.example.com/?a=1"}}, "without query"),
        ({"actions": {"tokenz": []}}, "actions.tokenz"),
        ({"integrations": [integration("d", assignment="queue")]}, 'needs queue = "rep:'),
        ({"integrations": [integration("d", queue="jsmith")]}, "use rep:<appliance username>"),
        ({"integrations": [integration("d", assignment="nobody")]}, "assignment"),
        ({"integrations": [integration("d", company_site_name="a.b")]}, "file extension"),
        ({"integrations": [integration("d", public_portal_hostname="https://x")]}, "portal"),
        ({"integrations": [integration("d", key_ttl_seconds=5)]}, "key_ttl_seconds"),
        ({"integrations": [integration("d", email_key=True)]}, "email_key needs an [smtp]"),
        ({"smtp": {"host": "mail:25", "from_address": "a@example.com"}}, "smtp.host"),
        ({"smtp": {"host": "mail", "from_address": "nobody"}}, "e-mail address"),
        ({"smtp": {"host": "mail", "from_address": "a@b.c", "username": "u"}}, "both"),
        ({"smtp": {"host": "mail", "from_address": "a@b.c", "security": "ssl"}}, "security"),
    ],
)
def test_invalid_settings_are_reported(sections: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse(**sections)
    assert needle in caught.value.message


def test_secrets_from_env_and_files_never_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RSBRIDGE_TEST_ACTIONS_TOKEN", TOKEN)
    (tmp_path / "link").write_text("link-secret-from-a-file\n")
    (tmp_path / "smtp").write_text("smtp-password-from-file\n")
    path = tmp_path / "rsbridge.toml"
    path.write_text(
        """
[actions]
enabled = true
tokens = [{ env = "RSBRIDGE_TEST_ACTIONS_TOKEN" }, "another-token-0123456789"]
link_secret = { file = "link" }
public_url = "https://rsbridge.example.com/"

[smtp]
host = "mail.example.com"
from_address = "rsbridge@example.com"
username = "rsbridge"
password = { file = "smtp" }
ca_file = "ca.pem"
"""
    )
    config = load_config(path)
    assert [t.get_secret_value() for t in config.actions.tokens] == [
        TOKEN,
        "another-token-0123456789",
    ]
    assert config.actions.link_secret is not None
    assert config.actions.link_secret.get_secret_value() == "link-secret-from-a-file"
    assert config.smtp is not None and config.smtp.password is not None
    assert config.smtp.password.get_secret_value() == "smtp-password-from-file"
    assert config.smtp.ca_file == tmp_path / "ca.pem"
    assert config.actions.public_url == "https://rsbridge.example.com"
    shown = repr(config) + config.model_dump_json()
    for secret in (TOKEN, "another-token-0123456789", "link-secret", "smtp-password"):
        assert secret not in shown


def test_a_missing_secret_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RSBRIDGE_NO_SUCH_VARIABLE", raising=False)
    with pytest.raises(ConfigurationError, match=r"actions.tokens\[0\]: environment variable"):
        parse(actions={"tokens": [{"env": "RSBRIDGE_NO_SUCH_VARIABLE"}]})


CLIENT = {
    "name": "snow-ui",
    "token": "a-scoped-token-0123456789",
    "integrations": ["desk"],
    "routes": ["session_key", "jump"],
}


def test_clients_scope_tokens_to_integrations_routes_and_a_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RSBRIDGE_TEST_CLIENT_TOKEN", "client-token-from-env-0123")
    config = parse(
        integrations=[integration("desk"), integration("other")],
        actions={
            "enabled": True,
            "clients": [
                CLIENT,
                {
                    **CLIENT,
                    "name": "abel",
                    "token": {"env": "RSBRIDGE_TEST_CLIENT_TOKEN"},
                    "user": "abel.admin",
                },
            ],
        },
    )
    first, second = config.actions.clients
    assert (first.name, first.integrations, first.routes, first.user) == (
        "snow-ui",
        ["desk"],
        ["session_key", "jump"],
        None,
    )
    assert second.token.get_secret_value() == "client-token-from-env-0123"
    assert second.user == "abel.admin"
    assert "client-token-from-env-0123" not in repr(config)
    assert "a-scoped-token-0123456789" not in repr(config)


@pytest.mark.parametrize(
    ("client", "needle"),
    [
        ({"integrations": ["nope"]}, "no integration named 'nope'"),
        ({"integrations": []}, "integrations"),
        ({"routes": ["delete_everything"]}, "routes"),
        ({"routes": []}, "routes"),
        ({"token": "short"}, "at least 16 characters"),
        ({"name": "a b"}, "name"),
        ({"user": ""}, "user"),
        ({"token": TOKEN}, "clients[0] has the token of another caller"),
    ],
)
def test_invalid_clients_are_reported(client: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse(
            integrations=[integration("desk")],
            actions={"tokens": [TOKEN], "clients": [{**CLIENT, **client}]},
        )
    assert needle in caught.value.message
    assert TOKEN not in caught.value.message


def test_client_names_are_unique() -> None:
    with pytest.raises(ConfigurationError, match="client name used more than once: snow-ui"):
        parse(
            integrations=[integration("desk")],
            actions={"clients": [CLIENT, {**CLIENT, "token": "another-token-0123456789"}]},
        )
