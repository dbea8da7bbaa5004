"""Tests for the Jinja2 report renderer and its default templates."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree
from markupsafe import escape

from rsbridge.appliance.report_model import (
    FILE_EVENT_TYPES,
    EventType,
    ExitSurvey,
    SessionEvent,
    SupportSession,
    SurveyAnswer,
)
from rsbridge.engine.render import (
    PARTS,
    REPORT,
    SAMPLE_KEY_MAIL,
    Renderer,
    filter_datetime,
    filter_duration,
    filter_filesize,
    filter_http_url,
    filter_isotime,
)
from rsbridge.errors import TemplateError
from rsbridge.sim.appliance.scenarios import SessionGenerator


def _complete(session: SupportSession) -> bool:
    types = {e.event_type for e in session.events}
    return bool(
        session.customer_surveys
        and session.rep_surveys
        and session.custom_attributes
        and (session.recording or session.command_shell_recordings)
        and EventType.SYSTEM_INFORMATION_RETRIEVED in types
        and EventType.SESSION_NOTE_ADDED in types
        and types & FILE_EVENT_TYPES
    )


@pytest.fixture(scope="module")
def session() -> SupportSession:
    """A session with something in every part of the report."""
    generator = SessionGenerator(seed=7, system_info_rows=(3, 6), include_unknown_events=True)
    return next(s for s in generator.sessions(500) if _complete(s))


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def _chat_indices(session: SupportSession) -> list[int]:
    return [i for i, e in enumerate(session.events) if e.event_type == EventType.CHAT_MESSAGE]


def _with_bodies(session: SupportSession, bodies: dict[int, str]) -> SupportSession:
    events = [
        dataclasses.replace(e, body=bodies[i]) if i in bodies else e
        for i, e in enumerate(session.events)
    ]
    return dataclasses.replace(session, events=events)


def _well_formed(html: str) -> etree._Element:
    return etree.fromstring(f"<root>{html}</root>".encode())


def _override(tmp_path: Path, name: str, source: str) -> Path:
    (tmp_path / name).write_text(source, encoding="utf-8")
    return tmp_path


# --- every part -------------------------------------------------------------------------


def test_every_part_renders_in_both_formats(renderer: Renderer, session: SupportSession) -> None:
    report = renderer.render(session)
    assert set(report.parts) == set(PARTS)
    for name, part in report.parts.items():
        assert part.text.strip(), name
        assert part.html.strip(), name
        assert "<" not in part.text.split("\n", 1)[0], name  # text is not HTML
        _well_formed(part.html)
        # Each part is in the full report, as rendered on its own.
        assert part.text in report.full.text, name
        assert part.html in report.full.html, name
    root = _well_formed(report.full.html)
    assert root[0].get("class") == "rsbridge-report"
    assert session.lsid in report.full.text
    assert not report.full.text.endswith("\n")


def test_parts_show_their_content(renderer: Renderer, session: SupportSession) -> None:
    parts = renderer.render(session).parts
    note = session.events_of(EventType.SESSION_NOTE_ADDED)[0]
    assert note.body is not None
    assert note.body.split("\n")[0] in parts["notes"].text
    info = session.events_of(EventType.SYSTEM_INFORMATION_RETRIEVED)[0]
    assert info.system_information
    for category in info.system_information:
        assert category.name in parts["system_info"].text
        for label in category.columns.values():
            assert str(escape(label)) in parts["system_info"].html
    for rep in session.representatives:
        assert rep.display_name and rep.display_name in parts["people"].text
    for team in session.teams:
        assert team.name in parts["people"].text
    recordings = [session.recording, *session.command_shell_recordings]
    for recording in recordings:
        if recording is not None and recording.view_url:
            assert recording.view_url in parts["recordings"].text
            assert f'href="{escape(recording.view_url)}"' in parts["recordings"].html
    for attr in session.custom_attributes:
        assert (
            f"{attr.display_name} ({attr.code_name}): {attr.value}"
            in parts["custom_attributes"].text
        )
    transfer = next(e for e in session.events if e.event_type in FILE_EVENT_TYPES and e.filename)
    assert transfer.filename is not None
    assert transfer.filename in parts["chat"].text


def test_empty_parts_render_empty_and_are_left_out(renderer: Renderer) -> None:
    bare = SupportSession(lsid="0" * 32)
    report = renderer.render(bare)
    assert report.parts["chat"].text == report.parts["chat"].html == ""
    assert report.parts["customer_survey"].text == ""
    assert "Chat transcript" not in report.full.text
    assert "0" * 32 in report.full.text
    _well_formed(report.full.html)


# --- chat -------------------------------------------------------------------------------


def test_chat_messages_appear_in_order(renderer: Renderer, session: SupportSession) -> None:
    indices = _chat_indices(session)
    assert len(indices) >= 2
    markers = {i: f"message-{n:03d}" for n, i in enumerate(indices)}
    chat = renderer.render(_with_bodies(session, markers)).parts["chat"]
    for text in (chat.text, chat.html):
        positions = [text.index(markers[i]) for i in indices]
        assert positions == sorted(positions)


def test_chat_shows_real_bodies_and_times(renderer: Renderer, session: SupportSession) -> None:
    chat = renderer.render(session).parts["chat"]
    for i in _chat_indices(session):
        event = session.events[i]
        assert event.body is not None and event.performed_by is not None
        first = event.body.split("\n")[0]
        if "\x1b" not in first and "\x07" not in first:
            line = f"[{event.timestamp:%H:%M:%S}] {event.performed_by.name}"
            assert f"{line}: {first}" in chat.text or f"{line} (to " in chat.text


def test_html_escapes_chat_bodies(renderer: Renderer, session: SupportSession) -> None:
    first = _chat_indices(session)[0]
    attack = "<script>alert(1)</script> & <b onmouseover='x'>"
    chat = renderer.render(_with_bodies(session, {first: attack})).parts["chat"]
    assert "<script>" not in chat.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b onmouseover=&#39;x&#39;&gt;" in (
        chat.html
    )
    assert attack in chat.text  # plain text is not escaped
    _well_formed(chat.html)


def test_control_characters_are_shown_not_sent(renderer: Renderer, session: SupportSession) -> None:
    first = _chat_indices(session)[0]
    chat = renderer.render(_with_bodies(session, {first: "red \x1b[31mX\x07"})).parts["chat"]
    for text in (chat.text, chat.html):
        assert "\x1b" not in text and "\x07" not in text
        assert "red \u241b[31mX\u2407" in text
    _well_formed(chat.html)


def test_multiline_bodies(renderer: Renderer, session: SupportSession) -> None:
    first = _chat_indices(session)[0]
    chat = renderer.render(_with_bodies(session, {first: "line one\nline two"})).parts["chat"]
    assert "line one\n           line two" in chat.text
    assert "line one<br />\nline two" in chat.html


# --- import_events ----------------------------------------------------------------------


def test_import_events_filters_event_types(session: SupportSession) -> None:
    kept = {EventType.CHAT_MESSAGE, EventType.SESSION_START, EventType.SESSION_END}
    renderer = Renderer(import_events=kept)
    markers = {i: f"message-{n:03d}" for n, i in enumerate(_chat_indices(session))}
    report = renderer.render(_with_bodies(session, markers))
    chat = report.parts["chat"].text
    assert all(m in chat for m in markers.values())
    assert "Session started" in chat and "Session ended" in chat
    assert "joined the session" not in chat
    for e in session.events:
        if e.event_type in FILE_EVENT_TYPES and e.filename:
            assert e.filename not in chat
    # Notes and system information are events too: not imported, not shown.
    assert report.parts["notes"].text == ""
    assert report.parts["system_info"].html == ""
    # Surveys and people do not come from events.
    assert report.parts["rep_survey"].text


def test_import_events_names_are_forgiving(session: SupportSession) -> None:
    chat = Renderer(import_events=["chat_message", "  session NOTE added "]).render(session)
    assert chat.parts["notes"].text
    assert "Session started" not in chat.parts["chat"].text
    nothing = Renderer(import_events=[]).render(session)
    assert nothing.parts["chat"].text == ""


# --- overrides --------------------------------------------------------------------------


def test_override_replaces_one_template(tmp_path: Path, session: SupportSession) -> None:
    _override(tmp_path, "notes.txt", "NOTES: {{ notes | length }} for {{ session.lsid }}")
    renderer = Renderer(tmp_path)
    default = Renderer().render(session)
    report = renderer.render(session)
    count = len(session.events_of(EventType.SESSION_NOTE_ADDED))
    assert report.parts["notes"].text == f"NOTES: {count} for {session.lsid}"
    assert report.parts["notes"].html == default.parts["notes"].html
    for name in PARTS:
        if name != "notes":
            assert report.parts[name] == default.parts[name]
    assert f"NOTES: {count}" in report.full.text  # the full report uses the override


def test_override_html_autoescapes_and_text_does_not(
    tmp_path: Path, session: SupportSession
) -> None:
    _override(tmp_path, "rep_survey.html", "<p>{{ survey.answers[0].value }}</p>")
    _override(tmp_path, "rep_survey.txt", "{{ survey.answers[0].value }}")
    part = Renderer(tmp_path).render_survey(
        session, "rep", ExitSurvey(1, [SurveyAnswer("x", "<i>&")])
    )
    assert part.html == "<p>&lt;i&gt;&amp;</p>"
    assert part.text == "<i>&"


def test_missing_override_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="does not exist"):
        Renderer(tmp_path / "nope")


# --- errors -----------------------------------------------------------------------------


def test_syntax_error_names_file_and_line(tmp_path: Path, session: SupportSession) -> None:
    _override(tmp_path, "chat.html", "<p>\n{{ session.lsid }}\n{% if %}\n</p>\n")
    renderer = Renderer(tmp_path)
    with pytest.raises(TemplateError) as caught:
        renderer.render(session)
    assert caught.value.template == "chat.html"
    assert caught.value.line == 3
    assert caught.value.message.startswith("chat.html line 3: ")


def test_runtime_error_names_file_and_line(tmp_path: Path, session: SupportSession) -> None:
    _override(tmp_path, "chat.html", "<p>{{ session.lsid }}</p>\n<p>{{ foo }}</p>\n")
    with pytest.raises(TemplateError) as caught:
        Renderer(tmp_path).render(session)
    assert str(caught.value) == "chat.html line 2: 'foo' is undefined"
    assert (caught.value.template, caught.value.line) == ("chat.html", 2)


def test_runtime_error_in_a_filter(tmp_path: Path, session: SupportSession) -> None:
    _override(tmp_path, "notes.txt", "ok\nok\n{{ session.start_time | datetime(tz='Mars/Base') }}")
    with pytest.raises(TemplateError) as caught:
        Renderer(tmp_path).render(session)
    assert caught.value.line == 3
    assert caught.value.message.startswith("notes.txt line 3: ZoneInfoNotFoundError")


def test_error_in_an_included_template(tmp_path: Path, session: SupportSession) -> None:
    _override(tmp_path, "report.txt", "top\n{% include 'extra.txt' %}\n")
    _override(tmp_path, "extra.txt", "{{ session.lsid }}\n{{ session.nope }}\n")
    with pytest.raises(TemplateError) as caught:
        Renderer(tmp_path).render(session)
    assert (caught.value.template, caught.value.line) == ("extra.txt", 2)
    assert "via report.txt line 2" in caught.value.message


def test_missing_include_names_the_including_line(tmp_path: Path, session: SupportSession) -> None:
    _override(tmp_path, "report.txt", "top\n\n{% include 'missing.txt' %}\n")
    with pytest.raises(TemplateError) as caught:
        Renderer(tmp_path).render(session)
    assert (caught.value.template, caught.value.line) == ("report.txt", 3)
    assert "'missing.txt' not found" in caught.value.message


@pytest.mark.parametrize(
    "expression",
    [
        "''.__class__.__mro__",
        "session.__class__.__init__.__globals__",
        "session.events.append(1)",
        "session.custom_attributes.clear()",
        "names.update({})",
    ],
)
def test_sandbox_refuses_unsafe_access(
    tmp_path: Path, session: SupportSession, expression: str
) -> None:
    _override(tmp_path, "chat.txt", "{{ " + expression + " }}")
    with pytest.raises(TemplateError) as caught:
        Renderer(tmp_path).render(session)
    assert caught.value.template == "chat.txt" and caught.value.line == 1
    assert "is unsafe" in caught.value.message


# --- surveys ----------------------------------------------------------------------------


def test_render_survey_shows_the_answers(renderer: Renderer, session: SupportSession) -> None:
    survey = ExitSurvey(
        session.representatives[0].gsnumber,
        [
            SurveyAnswer("task_number", "INC0012345"),
            SurveyAnswer("comments", "Fixed <it> & closed"),
        ],
    )
    part = renderer.render_survey(session, "rep", survey)
    assert "Representative exit survey" in part.text
    assert "Task number: INC0012345" in part.text
    assert "Comments: Fixed <it> & closed" in part.text
    assert "Fixed &lt;it&gt; &amp; closed" in part.html
    rep_name = session.representatives[0].display_name
    assert rep_name is not None and rep_name in part.text
    # Only the delivered survey, not the session's own.
    for own in session.rep_surveys:
        for answer in own.answers:
            if answer.name == "task_number":
                assert answer.value not in part.text
    _well_formed(part.html)

    customer = renderer.render_survey(
        session, "customer", ExitSurvey(None, [SurveyAnswer("rating", "4")])
    )
    assert customer.text.startswith("Customer exit survey\n")
    assert "Rating: 4" in customer.text
    with pytest.raises(ValueError, match="survey kind"):
        renderer.render_survey(session, "team", survey)  # type: ignore[arg-type]


# --- check ------------------------------------------------------------------------------


def test_check_compiles_every_template(tmp_path: Path, session: SupportSession) -> None:
    _override(tmp_path, "extra.html", "<b>{{ session.lsid }}</b>")
    _override(tmp_path, "README", "not a template {% if")
    names = Renderer(tmp_path).check(sample=session)
    expected = {f"{p}{suffix}" for p in (*PARTS, REPORT) for suffix in (".txt", ".html")}
    mail = {"session_key_mail.txt", "session_key_mail_subject.txt"}
    assert expected | mail | {"extra.html"} == set(names)


def test_check_renders_the_key_email_templates(tmp_path: Path, session: SupportSession) -> None:
    _override(tmp_path, "session_key_mail.txt", "{{ key_url }}\n{{ ticket.nope }}\n")
    for sample in (session, None):  # no session needed: `rsbridge check` passes none
        with pytest.raises(TemplateError) as caught:
            Renderer(tmp_path).check(sample=sample)
        assert caught.value.template == "session_key_mail.txt" and caught.value.line == 2


def test_the_default_key_email_is_the_appliances(session: SupportSession) -> None:
    values = dict(SAMPLE_KEY_MAIL)
    assert Renderer().render_key_mail(values) == (
        "Remote Support Invitation",
        "Click on the link below and follow the directions.",
    )
    values.update(appliance_subject="", appliance_body="")
    assert Renderer().render_key_mail(values) == (
        "Remote Support Invitation",
        str(values["key_url"]),
    )


def test_check_reports_a_broken_template(tmp_path: Path) -> None:
    _override(tmp_path, "rep_survey.txt", "fine\n{% for a in %}\n")
    with pytest.raises(TemplateError) as caught:
        Renderer(tmp_path).check()
    assert (caught.value.template, caught.value.line) == ("rep_survey.txt", 2)


def test_check_with_a_sample_finds_runtime_errors(tmp_path: Path, session: SupportSession) -> None:
    _override(tmp_path, "recordings.txt", "{{ session.recordings }}")
    renderer = Renderer(tmp_path)
    renderer.check()  # compiles fine
    with pytest.raises(TemplateError, match=r"^recordings.txt line 1: "):
        renderer.check(sample=session)


def test_render_part(renderer: Renderer, session: SupportSession) -> None:
    report = renderer.render(session)
    assert renderer.render_part(session, "chat") == report.parts["chat"].text
    assert renderer.render_part(session, "chat", html=True) == report.parts["chat"].html
    assert renderer.render_part(session, "report", html=True) == report.full.html
    with pytest.raises(TemplateError, match="unknown report part"):
        renderer.render_part(session, "nope")


# --- filters ----------------------------------------------------------------------------


def test_filters() -> None:
    when = datetime(2024, 12, 2, 8, 5, 9, tzinfo=UTC)
    assert filter_isotime(when) == "2024-12-02T08:05:09Z"
    assert filter_isotime(None) == ""
    assert filter_datetime(when) == "2024-12-02 08:05:09 UTC"
    assert filter_datetime(when, "%d/%m %H:%M", tz="Europe/Paris") == "02/12 09:05"
    assert filter_duration(timedelta(hours=1, minutes=2, seconds=5)) == "1h 02m 05s"
    assert filter_duration(125) == "2m 05s"
    assert filter_duration(45.4) == "45s"
    assert filter_duration(None) == ""
    assert filter_filesize(812) == "812 B"
    assert filter_filesize(1234) == "1.2 KB"
    assert filter_filesize(5 * 1024**3) == "5.0 GB"
    assert filter_http_url("https://x.example/a?b=1") == "https://x.example/a?b=1"
    assert filter_http_url("javascript:alert(1)") == ""
    assert filter_http_url(None) == ""


def test_unknown_event_types_show_their_data(renderer: Renderer, session: SupportSession) -> None:
    event = SessionEvent(
        timestamp=datetime(2024, 12, 2, 9, 0, tzinfo=UTC),
        event_type="Brand New Event",
        data={"alpha": "1", "beta": "<2>"},
    )
    odd = dataclasses.replace(session, events=[*session.events, event])
    chat = renderer.render(odd).parts["chat"]
    assert "[09:00:00] Brand New Event: alpha=1; beta=<2>" in chat.text
    assert "Brand New Event: alpha=1; beta=&lt;2&gt;" in chat.html


def test_many_sessions_render_well_formed_html(renderer: Renderer) -> None:
    generator = SessionGenerator(seed=11, include_unknown_events=True, jump_ratio=0.5)
    for s in generator.sessions(60):
        report = renderer.render(s)
        _well_formed(report.full.html)
        for part in (report.full, *report.parts.values()):
            assert not any(ch in part.text + part.html for ch in "\x1b\x07\x00")
