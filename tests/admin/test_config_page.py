"""``/admin/config``: the loaded configuration, every secret masked, and what ``check``
says of it without calling any system."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from rsbridge.config import Config, parse_config
from rsbridge.web.admin.config_page import MASK, masked_config
from tests.admin.conftest import HASHES, admin_section, serving_console, unmasked
from tests.admin.operate_helpers import jsonl_integration
from tests.conftest import SIGNING_SECRET
from tests.engine.conftest import SimAppliance, engine_config

SECRETS = {
    "outbound": "appliance-outbound-token-8c1d",
    "bearer": "webhook-bearer-secret-42ab",
    "from_env": "env-hook-secret-777zz",
    "url_password": "urlpass-987xy",
    "query_token": "querytoken-555qq",
    "smtp": "smtp-password-314pp",
    "actions": "actions-token-abcdefghijklmnop",
    "client": "client-token-qrstuvwxyz012345",
    "link": "link-secret-6789abcdefghijkl",
}


def secret_config(tmp_path: Path, sim: SimAppliance) -> Config:
    base = engine_config(
        tmp_path,
        sim,
        appliance={"outbound_event_token": SECRETS["outbound"]},
        integrations=[
            jsonl_integration("audit", tmp_path / "out.jsonl"),
            {
                "name": "hook",
                "connector": "webhook",
                "association": {"on_unmatched": "import"},
                "settings": {
                    "url": f"https://relay:{SECRETS['url_password']}@hooks.example/in"
                    f"?token={SECRETS['query_token']}&mode=full",
                    "timeout": 7.5,
                },
            },
            {
                "name": "hook2",
                "connector": "webhook",
                "association": {"on_unmatched": "import"},
                "settings": {
                    "url": "https://hooks.example/two",
                    "secret": {"env": "RSB_TEST_HOOK_SECRET"},
                },
            },
            {
                "name": "hook3",
                "connector": "webhook",
                "association": {"on_unmatched": "import"},
                "settings": {"url": "https://hooks.example/three", "secret": SECRETS["bearer"]},
            },
        ],
        actions={
            "tokens": [SECRETS["actions"]],
            "clients": [
                {
                    "name": "desk",
                    "token": SECRETS["client"],
                    "integrations": ["audit"],
                    "routes": ["pull"],
                }
            ],
            "link_secret": SECRETS["link"],
        },
    )
    data = unmasked(base.model_dump(mode="python"))
    data["smtp"] = {
        "host": "mail.example",
        "username": "rsbridge",
        "password": SECRETS["smtp"],
        "from_address": "rsbridge@example.com",
    }
    data["admin"] = admin_section()
    return Config.model_validate(data)


def every_secret(config: Config) -> list[str]:
    return [
        *SECRETS.values(),
        SIGNING_SECRET,
        config.appliances[0].client_secret.get_secret_value(),
        *HASHES.values(),
    ]


async def test_no_secret_of_the_configuration_is_on_the_page(
    tmp_path: Path, sim: SimAppliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RSB_TEST_HOOK_SECRET", SECRETS["from_env"])
    config = secret_config(tmp_path, sim)
    async with serving_console(config) as console, console.signed_in("vic") as vic:
        calls = dict(sim.state.calls)
        page = await vic.get("/admin/config")
        assert page.status_code == 200
        assert dict(sim.state.calls) == calls  # no peer was called
        text = page.text
        assert "<h1>Configuration</h1>" in text
        for secret in every_secret(config):
            assert secret not in text, secret
            assert html.escape(secret) not in text, secret
        # What is not secret is shown; secrets show as masked.
        assert f"<td>{sim.host}</td>" in text
        assert "<code>integrations[hook].settings.timeout</code></th><td>7.5</td>" in text
        assert f"<code>integrations[hook3].settings.secret</code></th><td>{MASK}</td>" in text
        assert f"<code>admin.users[olga].password_hash</code></th><td>{MASK}</td>" in text
        assert f"<code>appliances[default].client_secret</code></th><td>{MASK}</td>" in text
        assert f"<code>smtp.password</code></th><td>{MASK}</td>" in text
        assert "https://relay:***@hooks.example/in?token=***&amp;mode=full" in text
        assert "<code>integrations[hook2].settings.secret.env</code></th>" in text
        assert "RSB_TEST_HOOK_SECRET" in text  # the variable's name, not its value

        # The configuration's check: a verdict per appliance and integration, no call.
        rows = dict(re.findall(r'<th scope="row">([^<]+)</th>\s*<td class="verdict-(\w+)">', text))
        assert set(rows) == {
            "appliance default",
            "integration audit",
            "integration hook",
            "integration hook2",
            "integration hook3",
        }
        assert set(rows.values()) <= {"ok", "warn"}


async def test_the_configuration_check_says_what_is_wrong(
    tmp_path: Path, sim: SimAppliance
) -> None:
    broken = tmp_path / "templates"
    broken.mkdir()
    (broken / "notes.html").write_text("{% if %}\n")
    base = engine_config(
        tmp_path,
        sim,
        integrations=[jsonl_integration("audit", tmp_path / "o.jsonl", templates=str(broken))],
    )
    data = unmasked(base.model_dump(mode="python"))
    data["admin"] = admin_section()
    config = Config.model_validate(data)
    async with serving_console(config) as console, console.signed_in("vic") as vic:
        text = (await vic.get("/admin/config")).text
        found = re.search(
            r'<th scope="row">integration audit</th>\s*<td class="verdict-(\w+)">\w+</td>'
            r"\s*<td>(.*?)</td>",
            text,
            re.S,
        )
        assert found is not None
        assert found.group(1) == "fail" and "notes.html line 1" in found.group(2)
        # The appliance takes events from anyone: said as a warning.
        assert re.search(r'appliance default</th>\s*<td class="verdict-warn">', text)


def test_a_store_url_password_is_masked() -> None:
    config = parse_config(
        {
            "engine": {"store": "postgresql://rsb:pg-password-9z@db.example/rsbridge"},
            "appliances": [
                {"id": "default", "host": "a.example", "client_id": "i", "client_secret": "s3cr3t"}
            ],
        }
    )
    rows = dict(row for _, section in masked_config(config) for row in section)
    assert rows["engine.store"] == "postgresql://rsb:***@db.example/rsbridge"
    assert rows["appliances[default].client_secret"] == MASK
    assert all("pg-password-9z" not in v and "s3cr3t" not in v for v in rows.values())
