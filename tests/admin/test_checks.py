"""``/admin/checks``: ``check`` for one integration, each verdict shown as ok/warn/fail."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.admin.conftest import csrf_of, serving_console
from tests.admin.operate_helpers import (
    audited,
    fixing_config,
    jsonl_integration,
    watch_audit,
)
from tests.engine.conftest import SimAppliance


def verdicts(page: str) -> dict[str, tuple[str, str]]:
    """Target: (level, text) of each verdict row in ``page``."""
    rows = re.findall(
        r'<th scope="row">([^<]+)</th>\s*<td class="verdict-(\w+)">\w+</td>\s*<td>(.*?)</td>',
        page,
        re.S,
    )
    return {target: (level, text) for target, level, text in rows}


async def test_run_check_shows_each_verdict(
    tmp_path: Path, sim: SimAppliance, caplog: pytest.LogCaptureFixture
) -> None:
    watch_audit(caplog)
    broken = tmp_path / "broken-templates"
    broken.mkdir()
    (broken / "chat.txt").write_text("{% for line in events %}\n{{ line\n{% endfor %}\n")
    config = fixing_config(
        tmp_path,
        sim,
        [
            jsonl_integration("audit", tmp_path / "out.jsonl"),
            jsonl_integration("pretty", tmp_path / "p.jsonl", templates=str(broken)),
        ],
    )
    async with serving_console(config) as console, console.signed_in("olga") as olga:
        page = await olga.get("/admin/checks")
        assert "<h1>Checks</h1>" in page.text
        assert page.text.count('<button type="submit">Run check</button>') == 2
        assert "Not checked since the engine started." in page.text
        token = csrf_of(page.text)

        answer = await olga.post(
            "/admin/checks", data={"csrf_token": token, "integration": "audit"}
        )
        assert answer.status_code == 303
        assert (
            answer.headers["location"] == "/admin/checks?integration=audit&notice=checked&count=0"
        )
        shown = await olga.get(answer.headers["location"])
        assert "Check finished: nothing failed." in shown.text
        found = verdicts(shown.text)
        # The appliance takes events from anyone (no token): it works, with a warning.
        assert found["appliance default"][0] == "warn"
        assert "API" in found["appliance default"][1]
        assert "no outbound_event_token" in found["appliance default"][1]
        assert found["integration audit"][1].startswith(
            f"JSON Lines file: {tmp_path / 'out.jsonl'} (will be created), directory writable"
        )

        failing = await olga.post(
            "/admin/checks", data={"csrf_token": token, "integration": "pretty"}
        )
        assert "notice=check-failed&count=1" in failing.headers["location"]
        shown = await olga.get(failing.headers["location"])
        assert "Check finished: 1 verdict(s) failed." in shown.text
        level, text = verdicts(shown.text)["integration pretty"]
        assert level == "fail"
        assert "chat.txt line 3" in text
        # The earlier run of "audit" is still shown.
        assert "integration audit" in verdicts(shown.text)

        lines = await audited(console)
        assert any("olga run check audit appliance default: warn" in a for a in lines)
        assert any("olga run check pretty" in a and "integration pretty: fail" in a for a in lines)

        unknown = await olga.post("/admin/checks", data={"csrf_token": token, "integration": "x"})
        assert unknown.status_code == 400


async def test_a_viewer_sees_checks_but_cannot_run_them(tmp_path: Path, sim: SimAppliance) -> None:
    config = fixing_config(tmp_path, sim, [jsonl_integration("audit", tmp_path / "o.jsonl")])
    async with serving_console(config) as console, console.signed_in("vic") as vic:
        page = await vic.get("/admin/checks")
        assert page.status_code == 200
        assert "Run check</button>" not in page.text
        answer = await vic.post(
            "/admin/checks", data={"csrf_token": csrf_of(page.text), "integration": "audit"}
        )
        assert answer.status_code == 403
