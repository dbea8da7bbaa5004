"""The console answers bad numbers and times in URLs and forms with a page, never a 500,
and does nothing with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsbridge.engine.fixing import parse_since
from tests.admin.conftest import console_config, csrf_of, serving_console
from tests.engine.conftest import SimAppliance

ODD_NUMBERS = ["²", "99999999999999999999", "0", "-1", "1e3", "9" * 5000]


async def test_odd_numbers_in_urls_are_answered_not_crashed_on(
    tmp_path: Path, sim: SimAppliance
) -> None:
    async with (
        serving_console(console_config(tmp_path, sim)) as console,
        console.signed_in("olga") as olga,
    ):
        for odd in ODD_NUMBERS:
            for path in ("/admin/sessions", "/admin/audit", "/admin/dead"):
                answer = await olga.get(path, params={"before": odd})
                assert answer.status_code in (200, 400), (path, odd, answer.status_code)
            shown = await olga.get("/admin/dead", params={"notice": "retried", "count": odd})
            assert shown.status_code == 200
            page = await olga.get("/admin/dead")
            retry = await olga.post(
                "/admin/dead/retry", data={"csrf_token": csrf_of(page.text), "job_id": odd}
            )
            assert retry.status_code == 400, (odd, retry.status_code)


@pytest.mark.parametrize("since", ["1000000d", "0001-01-01T00:00+01:00", "9999-12-31", "²d"])
async def test_times_outside_the_calendar_do_nothing_and_say_so(
    tmp_path: Path, sim: SimAppliance, since: str
) -> None:
    with pytest.raises(ValueError, match=r"use a date|before 1970 or in the future"):
        parse_since(since)
    async with (
        serving_console(console_config(tmp_path, sim)) as console,
        console.signed_in("olga") as olga,
    ):
        page = await olga.get("/admin/dead")
        answer = await olga.post(
            "/admin/dead/retry-all", data={"csrf_token": csrf_of(page.text), "since": since}
        )
        assert answer.status_code in (303, 400), answer.status_code
        listed = await olga.get("/admin/dead", params={"since": since})
        assert listed.status_code in (200, 400)
        pull = await olga.get("/admin/pull")
        backfill = await olga.post(
            "/admin/pull",
            data={
                "csrf_token": csrf_of(pull.text),
                "do": "backfill",
                "integration": "audit",
                "since": since,
            },
        )
        assert backfill.status_code in (303, 400), backfill.status_code
