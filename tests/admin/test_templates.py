"""``/admin/templates``: a report part previewed with an integration's templates, text and
HTML side by side, a broken template shown with its file and line."""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path

from markupsafe import escape

from rsbridge.appliance.report_model import EventType, SupportSession
from tests.admin.conftest import serving_console
from tests.admin.operate_helpers import ended, fixing_config, jsonl_integration
from tests.engine.conftest import SimAppliance

MARKUP = '<script>alert("x")</script> & <b>bold</b>'


def chatty(session: SupportSession) -> SupportSession:
    """``session`` whose first chat message is markup, as a customer could type it."""
    events = list(session.events)
    first = next(i for i, e in enumerate(events) if e.event_type == EventType.CHAT_MESSAGE)
    events[first] = dataclasses.replace(events[first], body=MARKUP)
    return dataclasses.replace(session, events=events)


def srcdoc(page: str) -> str:
    found = re.search(
        r'<iframe class="preview" title="HTML preview" sandbox srcdoc="([^"]*)">', page
    )
    assert found, page
    return html.unescape(found.group(1))


def pre(page: str) -> str:
    found = re.search(r"<pre>(.*?)</pre>", page, re.S)
    assert found, page
    return html.unescape(found.group(1))


async def test_a_part_is_previewed_as_text_and_sandboxed_html(
    tmp_path: Path, sim: SimAppliance
) -> None:
    own = tmp_path / "own"
    own.mkdir()
    config = fixing_config(
        tmp_path,
        sim,
        [
            jsonl_integration("plain", tmp_path / "a.jsonl"),
            jsonl_integration("own", tmp_path / "b.jsonl", templates=str(own)),
        ],
    )
    [session] = ended(61, 1, 120, "plain")
    session = chatty(session)
    sim.state.add_report(session)
    async with serving_console(config) as console, console.signed_in("vic") as vic:
        page = await vic.get("/admin/templates")
        assert page.status_code == 200 and "<h1>Templates</h1>" in page.text
        assert '<button type="submit">Preview</button>' in page.text

        before = sim.state.calls["SupportSession"]
        query = {"integration": "plain", "lsid": session.lsid, "part": "chat"}
        shown = await vic.get("/admin/templates", params=query)
        assert shown.status_code == 200
        assert sim.state.calls["SupportSession"] == before + 1  # fetched once
        assert "<script" not in shown.text  # the customer's markup is data
        assert MARKUP in pre(shown.text)
        document = srcdoc(shown.text)
        assert str(escape(MARKUP)) in document  # escaped by chat.html
        assert "<script" not in document
        assert "allow-scripts" not in shown.text

        whole = await vic.get("/admin/templates", params={**query, "part": "all"})
        assert MARKUP in pre(whole.text) and session.lsid in pre(whole.text)

        # The integration's own directory overrides a default, read afresh each time.
        (own / "notes.txt").write_text("Notes of {{ session.lsid }}, as we like them\n")
        mine = await vic.get(
            "/admin/templates", params={"integration": "own", "lsid": session.lsid, "part": "notes"}
        )
        assert pre(mine.text) == f"Notes of {session.lsid}, as we like them"
        (own / "notes.txt").write_text("Edited: {{ session.lsid }}\n")
        edited = await vic.get(
            "/admin/templates", params={"integration": "own", "lsid": session.lsid, "part": "notes"}
        )
        assert pre(edited.text) == f"Edited: {session.lsid}"

        missing = await vic.get("/admin/templates", params={**query, "lsid": "no-such-session"})
        assert missing.status_code == 400
        assert "The appliance has no report for that session (yet)." in missing.text
        wrong = await vic.get("/admin/templates", params={**query, "part": "../report"})
        assert wrong.status_code == 400


async def test_a_broken_template_shows_its_file_and_line(tmp_path: Path, sim: SimAppliance) -> None:
    syntax, runtime = tmp_path / "syntax", tmp_path / "runtime"
    syntax.mkdir()
    runtime.mkdir()
    (syntax / "chat.txt").write_text("Chat\n{% for e in events %}\n{{ e.body }\n{% endfor %}\n")
    (runtime / "chat.html").write_text("<p>Chat</p>\n<p>{{ session.no_such_field }}</p>\n")
    config = fixing_config(
        tmp_path,
        sim,
        [
            jsonl_integration("syntax", tmp_path / "a.jsonl", templates=str(syntax)),
            jsonl_integration("runtime", tmp_path / "b.jsonl", templates=str(runtime)),
        ],
    )
    [session] = ended(62, 1, 120, "syntax")
    sim.state.add_report(session)
    async with serving_console(config) as console, console.signed_in("olga") as olga:
        broken = await olga.get(
            "/admin/templates",
            params={"integration": "syntax", "lsid": session.lsid, "part": "chat"},
        )
        assert broken.status_code == 200
        text = broken.text
        assert (
            f"The template failed: <strong>{syntax / 'chat.txt'}</strong>, line <strong>3</strong>"
            in text
        )
        assert "chat.txt line 3" in text
        srcdoc(text)  # the HTML side renders with the default chat.html

        failing = await olga.get(
            "/admin/templates",
            params={"integration": "runtime", "lsid": session.lsid, "part": "chat"},
        )
        page = failing.text
        where = f"<strong>{runtime / 'chat.html'}</strong>, line <strong>2</strong>"
        assert f"The template failed: {where}" in page
        assert "no_such_field" in page
        assert "Chat transcript" in pre(page)  # the text side is the default's

        # The whole report uses the broken part too: the error names the part's file.
        whole = await olga.get(
            "/admin/templates",
            params={"integration": "runtime", "lsid": session.lsid, "part": "all"},
        )
        assert f"<strong>{runtime / 'chat.html'}</strong>, line <strong>2</strong>" in whole.text
        assert "Chat transcript" in pre(whole.text)  # the text report is whole
