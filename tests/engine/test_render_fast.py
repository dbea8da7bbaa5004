"""The renderer's fast lane (rsbridge.engine.template_sandbox): the same output as the
plain sandbox for the default templates, and the sandbox's protection kept."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import Environment, StrictUndefined, UndefinedError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment
from jinja2.utils import Namespace
from markupsafe import Markup, escape

from rsbridge.appliance.report_model import (
    Actor,
    CustomAttribute,
    EventType,
    ExitSurvey,
    SessionEvent,
    SupportSession,
    SurveyAnswer,
    SystemInfoCategory,
)
from rsbridge.connectors.jsonl import JsonlConnector, read_deliveries
from rsbridge.engine import render as render_module
from rsbridge.engine import template_output
from rsbridge.engine.render import PARTS, REPORT, SAMPLE_KEY_MAIL, Renderer
from rsbridge.engine.runtime import Engine
from rsbridge.engine.template_sandbox import ReportSandbox, TrustedEnvironment
from rsbridge.errors import TemplateError
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.web.app import create_app
from rsbridge.web.serve import serving
from tests import strategies

from .conftest import SimAppliance, drained, emit, engine_config

FAST = Renderer()
OLD = Renderer(fast_paths=False)

HOSTILE = [
    "<script>alert(1)</script>",
    "{{ 7 * 7 }}{% raw %}{% endraw %}",
    "\x00\x1b[31mred\x7f",
    "a & b < c > d \" ' `",
    "line one\r\nline two\n\n  indented",
    "__class__",
    "{0.__class__.__mro__}",
    "javascript:alert(1)",
    "\u202eevil\u200b \U0001f600",
    "",
]


def _same(session: SupportSession, *renderers: tuple[Renderer, Renderer]) -> None:
    for old, fast in renderers or ((OLD, FAST),):
        assert fast.render(session) == old.render(session)
        for kind in ("customer", "rep"):
            surveys = [*getattr(session, f"{kind}_surveys"), ExitSurvey()]
            for survey in surveys:
                assert fast.render_survey(session, kind, survey) == old.render_survey(
                    session, kind, survey
                )
        for part in (REPORT, *PARTS):
            assert fast.render_part(session, part, html=True) == old.render_part(
                session, part, html=True
            )


def _hostile(session: SupportSession, value: str, number: int) -> SupportSession:
    """``session`` with ``value`` in every text an attacker could set."""
    actor = Actor("representative", value, 1)
    events = [
        dataclasses.replace(
            e,
            body=value if e.body is not None or number % 2 else e.body,
            filename=value or None,
            data={value: value, "owner": value, "old_path": value, "instance": "1"},
            performed_by=actor if i % 3 == 0 else e.performed_by,
            destination=actor if i % 3 == 1 else e.destination,
            system_information=[SystemInfoCategory(value, {value: value}, [{value: value}])],
            event_type=[e.event_type, value, EventType.CHAT_MESSAGE][(i + number) % 3],
        )
        for i, e in enumerate(session.events)
    ]
    answers = [SurveyAnswer(value, value), SurveyAnswer("task_number", value)]
    return dataclasses.replace(
        session,
        external_key=value or None,
        chat_view_url=value,
        custom_attributes=[CustomAttribute(value, value, value)],
        events=events,
        customer_surveys=[ExitSurvey(1, answers)],
        rep_surveys=[ExitSurvey(None, answers)],
    )


def _generated(count: int) -> list[SupportSession]:
    plain = SessionGenerator(seed=5).sessions(count)
    rich = SessionGenerator(seed=9, include_unknown_events=True, system_info_rows=(1, 4))
    return [*plain, *rich.sessions(count)]


def test_default_templates_render_the_same_as_the_plain_sandbox() -> None:
    sessions = _generated(15)
    assert any(not e.known for s in sessions for e in s.events)
    for session in sessions:
        _same(session)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_render_the_same(value: str) -> None:
    for number, session in enumerate(_generated(3)):
        _same(_hostile(session, value, number))


def test_imported_events_and_key_mail_render_the_same() -> None:
    events = ["chat message", "SESSION_NOTE_ADDED", "System Information Retrieved"]
    pair = (Renderer(import_events=events, fast_paths=False), Renderer(import_events=events))
    for session in _generated(4):
        _same(session, pair)
    assert FAST.render_key_mail(SAMPLE_KEY_MAIL) == OLD.render_key_mail(SAMPLE_KEY_MAIL)
    assert FAST.check(_generated(1)[0]) == OLD.check(_generated(1)[0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session=strategies.session)
def test_any_session_renders_the_same(session: SupportSession) -> None:
    _same(session)


OVERRIDES = {
    # Methods and properties of the model go through the sandbox's checks, and still work.
    "chat.txt": "{{ session.custom('snow_task_id') }} {{ session.ended }} "
    "{{ session.events_of('Chat Message') | length }} {{ events[0].known }}\n",
    # Namespaces holding data and not data; dict reads; a loop over dict items.
    "notes.txt": "{% set ns = namespace(a=session.lsid, f=session.lsid.upper) %}"
    "{{ ns.a }} {{ ns.f() }} {{ names.get(1, 'none') }}"
    "{% for k, v in names.items() %}{{ k }}={{ v }};{% endfor %}{{ names.keys() | list }}\n",
}


def test_overriding_templates_render_the_same(tmp_path: Path) -> None:
    for name, source in OVERRIDES.items():
        (tmp_path / name).write_text(source, encoding="utf-8")
    pair = (Renderer(tmp_path, fast_paths=False), Renderer(tmp_path))
    for session in _generated(3):
        _same(session, pair)
        assert session.lsid.upper() in pair[1].render_part(session, "notes")


TIMES_TEMPLATE = (
    "{% for t in session.custom_attributes[0].value %}"
    "{{ t | datetime }}|{{ t | datetime('%A %Y-%m-%d %H:%M:%S %Z %z') }}|"
    "{{ t | datetime('%d/%m %H:%M %Z %z', tz='Europe/Paris') }}|"
    "{{ t | datetime('%H:%M %Z', 'America/New_York') }};\n{% endfor %}"
    "{{ session.lsid | nl2br }}"
)


def test_remembered_times_and_line_breaks_render_the_same(tmp_path: Path) -> None:
    """The fast lane's ``datetime`` remembers what it wrote: the same time in other zones
    and formats, the same instant written with another offset, a naive time (read as
    UTC) and a time that is not a model value give what the plain filter gives."""
    (tmp_path / "chat.html").write_text(TIMES_TEMPLATE, encoding="utf-8")
    (tmp_path / "chat.txt").write_text(TIMES_TEMPLATE, encoding="utf-8")
    summer = datetime(2026, 7, 1, 12, 30, 5, tzinfo=UTC)
    times = [
        summer,
        summer.astimezone(ZoneInfo("Asia/Tokyo")),  # equal to ``summer``, other fields
        summer.replace(tzinfo=None),  # naive
        summer.replace(month=12),
        _Stamp(2026, 7, 1, 12, 30, 5, tzinfo=UTC),
        summer,
    ]
    attribute = CustomAttribute("times", "Times", times)  # type: ignore[arg-type]
    pair = (Renderer(tmp_path, fast_paths=False), Renderer(tmp_path))
    for lsid in ("one line <b>", "two\r\nlines & <i>", "cr\ronly", ""):
        session = SupportSession(lsid or "x", custom_attributes=[attribute])
        session.lsid = lsid
        for html in (True, False):
            fast = pair[1].render_part(session, "chat", html=html)
            assert fast == pair[0].render_part(session, "chat", html=html)
    lines = fast.splitlines()
    assert lines[0] == lines[1] == lines[-1]  # equal instants, whatever their offset
    assert "Wednesday 2026-07-01 12:30:05 UTC +0000" in lines[0]
    assert "01/07 14:30 CEST +0200" in lines[0] and "08:30 EDT" in lines[0]
    assert lines[2] == lines[0] and lines[4] == lines[0]
    assert "01/12 13:30 CET +0100" in lines[3]


class _Stamp(datetime):
    """Not the exact type the fast lane remembers."""


_DIRECTIVES = "aAbBcdHIjmMpSUwWxXyYzZGuV%-"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from([f"%{d}" for d in _DIRECTIVES]),
            st.text(alphabet=" :-/()%hTUC", max_size=3),
        ),
        max_size=6,
    ),
    st.lists(
        st.datetimes(
            min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_fast_time_formats_write_what_strftime_writes(
    pieces: list[str], times: list[datetime]
) -> None:
    """A format of the date alone is remembered by date, one of hours, minutes and
    seconds alone is written without strftime: whatever the format (a lone ``%``, an
    unknown directive) and whatever the time (same day, other seconds), each call gives
    what strftime gives."""
    fmt = "".join(pieces)
    fast = render_module._memo_datetime()
    days = [t.replace(hour=(t.hour + 7) % 24, second=59 - t.second) for t in times]
    for value in [*times, *days, *times]:
        assert fast(value, fmt) == value.strftime(fmt), fmt


def test_fast_environments_give_templates_their_globals_as_loaded() -> None:
    """A template of either fast environment sees the environment's globals, its own
    over them, and the values they had when it was loaded."""
    for env in (TrustedEnvironment(), ReportSandbox()):
        env.globals.update(shared="env", mine="env")
        template = env.from_string("{{ shared }} {{ mine }}", globals={"mine": "own"})
        assert template.render() == "env own"


def test_fast_time_formats_cover_the_shipped_templates() -> None:
    """The chat templates' formats (the ones written per event) take the fast ways."""
    assert render_module._time_format("%H:%M:%S").clock is not None
    assert render_module._time_format("%A %Y-%m-%d").by_date
    assert render_module._time_format("%A %Y-%m-%d (UTC)").by_date
    assert render_module._time_format("%Y-%m-%d %H:%M:%S %Z") == render_module._TimeFormat()


# --- the sandbox's protection -----------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "events[0].data.pop('x')",
        "events[0].data.update({})",
        "events[0].data.get.__self__",
        "events[0].timestamp.__class__",
        "events[0].__class__",
        "session.events.append(1)",
        "session.__slots__",
        "session.custom.__globals__",
        "names.setdefault(1, 2)",
        "namespace(x=1).__class__",
        "namespace(x=1)._Namespace__attrs",
    ],
)
@pytest.mark.parametrize("fast", [True, False])
def test_sandbox_refuses_unsafe_access_on_either_path(
    tmp_path: Path, expression: str, fast: bool
) -> None:
    (tmp_path / "chat.txt").write_text("{{ " + expression + " }}", encoding="utf-8")
    session = _generated(1)[0]
    with pytest.raises(TemplateError) as caught:
        Renderer(tmp_path, fast_paths=fast).render(session)
    assert caught.value.template == "chat.txt"
    assert "unsafe" in caught.value.message or "not safely callable" in caught.value.message


@pytest.mark.parametrize("fast", [True, False])
def test_a_format_method_in_a_field_is_still_sandboxed(tmp_path: Path, fast: bool) -> None:
    """A field holding something that is not data (here ``str.format``, which reaches
    attributes by name) is read with the sandbox's checks, not through the fast lane."""
    (tmp_path / "chat.txt").write_text("{{ events[0].body(session) }}", encoding="utf-8")
    session = _generated(1)[0]
    sneaky: Any = "{0.__class__.__init__.__globals__}".format
    session.events[0] = dataclasses.replace(session.events[0], body=sneaky)
    with pytest.raises(TemplateError, match="unsafe"):
        Renderer(tmp_path, fast_paths=fast).render(session)


class _Counting(ReportSandbox):
    checks = 0

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        type(self).checks += 1
        return super().is_safe_attribute(obj, attr, value)


def test_the_fast_lane_skips_the_checks_for_data_only() -> None:
    env = _Counting()
    event = SessionEvent(datetime(2026, 1, 1, tzinfo=UTC), "Chat Message", body="hi")
    session = SupportSession("a" * 32, events=[event])
    ns = Namespace(day="Monday", f=str.upper)
    assert env.getattr(event, "body") == "hi"
    assert env.getattr(session, "events") == [event]
    assert env.getattr(event.data, "get") == event.data.get
    assert env.getattr(ns, "day") == "Monday"
    assert _Counting.checks == 0
    # Methods, properties, values that are not data and other types are checked.
    for obj, name in [(session, "custom"), (event, "known"), (ns, "f"), ("text", "upper")]:
        env.getattr(obj, name)
    assert _Counting.checks == 4
    # A subclass of a model type may add anything: checked too.
    sub = type("Sub", (SessionEvent,), {})(datetime(2026, 1, 1, tzinfo=UTC), "x")
    env.getattr(sub, "body")
    assert _Counting.checks == 5


def test_fast_paths_choose_the_environment() -> None:
    assert type(FAST._env) is ReportSandbox
    assert type(OLD._env) is ImmutableSandboxedEnvironment


# --- only what a connector reads ----------------------------------------------------------


class _Spy(Renderer):
    def __init__(self) -> None:
        super().__init__()
        self.rendered: list[str] = []

    def _render(self, name: str, context: Any) -> str:
        self.rendered.append(name)
        return super()._render(name, context)


def test_render_renders_only_the_templates_asked_for() -> None:
    session = _generated(2)[1]
    whole = FAST.render(session)
    spy = _Spy()
    report = spy.render(session, {"chat.txt", "notes.txt"})
    assert sorted(spy.rendered) == ["chat.txt", "notes.txt"]
    assert set(report.parts) == {"chat", "notes"}
    for name in ("chat", "notes"):
        assert report.parts[name].text == whole.parts[name].text
        assert report.parts[name].html == ""
    assert report.full.text == report.full.html == ""


def test_the_whole_report_renders_every_part_of_its_format() -> None:
    session = _generated(2)[1]
    whole = FAST.render(session)
    spy = _Spy()
    report = spy.render(session, {"chat.txt", "report.html"})
    assert sorted(spy.rendered) == sorted(
        ["chat.txt", "report.html", *(f"{name}.html" for name in PARTS)]
    )
    assert report.full.html == whole.full.html and report.full.text == ""
    assert report.parts["chat"] == whole.parts["chat"]
    assert all(report.parts[name].html == whole.parts[name].html for name in PARTS)
    # Nothing asked for: everything, as before.
    assert Renderer().render(session, None) == whole
    with pytest.raises(ValueError, match=r"not report templates: chat\.md"):
        FAST.render(session, {"chat.md"})


async def test_the_worker_renders_what_the_connector_reads(
    tmp_path: Path, sim: SimAppliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(JsonlConnector, "report_templates", lambda self: frozenset({"chat.txt"}))
    session = next(s for s in SessionGenerator(4).sessions(20) if s.events)
    now = datetime.now(UTC)
    assert session.start_time is not None and session.end_time is not None
    shift = now - session.end_time
    session = dataclasses.replace(
        session, start_time=session.start_time + shift, end_time=session.end_time + shift
    )
    sim.state.add_report(session)
    config = engine_config(tmp_path, sim)
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        await emit(url, [session])
        await drained(engine)
    [record] = [
        d for d in read_deliveries(tmp_path / "deliveries.jsonl") if d["kind"] == "session_report"
    ]
    assert set(record["parts"]) == {"chat"}
    assert record["parts"]["chat"]["text"] and record["parts"]["chat"]["html"] == ""
    assert record["text"] == record["html"] == ""


def test_only_the_shipped_templates_leave_the_sandbox(tmp_path: Path) -> None:
    """The fast path runs a shipped template outside the sandbox only where no override
    replaces it: the override, and a shipped template it includes, stay sandboxed."""
    (tmp_path / "chat.txt").write_text("{% include 'notes.txt' %}", encoding="utf-8")
    fast, old = Renderer(tmp_path), Renderer(tmp_path, fast_paths=False)
    # White-box: which environment compiled each template (the behaviour it stands for,
    # overrides refused unsafe access, is tested above on both paths).
    assert isinstance(fast._template("chat.txt").environment, ReportSandbox)
    assert not isinstance(fast._template("chat.html").environment, SandboxedEnvironment)
    assert isinstance(old._template("chat.html").environment, ImmutableSandboxedEnvironment)
    session = _generated(1)[0]
    assert fast.render(session) == old.render(session)
    # What chat.txt includes was loaded by the sandbox, with the sandbox's checks.
    included = fast._env.get_template("notes.txt")
    assert isinstance(included.environment, ReportSandbox)


def test_no_shipped_template_loads_another() -> None:
    """A shipped template outside the sandbox loads what it includes from the package
    only, where an override of the included template would go unseen: so none includes,
    imports or extends another (the full report receives its parts rendered)."""
    env = Renderer()._trusted
    assert env is not None
    names = env.list_templates()
    assert "chat.html" in names
    for name in names:
        source = env.loader.get_source(env, name)[0] if env.loader else ""
        assert list(meta.find_referenced_templates(env.parse(source))) == [], name


class _Html:
    def __html__(self) -> str:
        return "<i>made safe</i>"

    def __repr__(self) -> str:
        return "_Html()"


OUTPUT_VALUES: list[object] = [
    *HOSTILE,
    None,
    Markup("<b>kept</b>"),
    Markup("<b>\x01</b>"),
    0,
    7.5,
    True,
    datetime(2026, 12, 3, 18, 0, tzinfo=UTC),
    ["<a>", None],
    _Html(),
]

OUTPUT_TEMPLATE = (
    "{{ v }}|{{ v ~ '<' }}|{{ v | string }}|{% set block %}[{{ v }}]{% endset %}{{ block }}|"
    "{% macro m(x) %}({{ x }}){% endmacro %}{{ m(v) }}|"
    "{% filter upper %}{{ v }}{% endfilter %}|"
    "{% autoescape false %}{{ v }}{% endautoescape %}|"
    "{% autoescape true %}{{ v }}{% endautoescape %}"
)


@pytest.mark.parametrize("value", OUTPUT_VALUES, ids=repr)
def test_one_call_outputs_write_what_jinja_writes(value: object) -> None:
    """html_output and text_output are escape(finalize(v)) and str(finalize(v)), and a
    template of a one-call environment writes what Jinja2's own code writes, in HTML and
    text, inside set blocks, macros, filter blocks and autoescape blocks."""
    assert template_output.html_output(value) == str(escape(template_output.finalize(value)))
    assert template_output.text_output(value) == str(template_output.finalize(value))
    for autoescape in (True, False):
        for final in (template_output.finalize, template_output.finalize_fast):
            envs = [
                cls(autoescape=autoescape, finalize=final, undefined=StrictUndefined)
                for cls in (Environment, TrustedEnvironment, ReportSandbox)
            ]
            plain, *one_call = (e.from_string(OUTPUT_TEMPLATE).render(v=value) for e in envs)
            assert one_call == [plain, plain]


def test_one_call_outputs_raise_as_jinja_does_for_an_undefined_value() -> None:
    for autoescape in (True, False):
        for cls in (Environment, TrustedEnvironment, ReportSandbox):
            env = cls(
                autoescape=autoescape,
                finalize=template_output.finalize_fast,
                undefined=StrictUndefined,
            )
            with pytest.raises(UndefinedError, match="'missing' is undefined"):
                env.from_string("{{ missing }}").render()


def test_the_fast_environments_compile_each_output_to_one_call() -> None:
    """The shipped templates' outputs compile to html_output/text_output calls (if a new
    Jinja2 stopped calling the compiler's hooks, this fails, not the output)."""
    env = FAST._trusted
    assert env is not None
    for name, call in (("chat.html", "html_output("), ("chat.txt", "text_output(")):
        source = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
        code = env.compile(source, name=name, raw=True)
        assert code.count(f"environment.{call}") >= 5
        assert "escape(environment.finalize(" not in code
    # Any other finalize: Jinja2's own code, which calls it.
    other = TrustedEnvironment(finalize=str)
    assert "environment.finalize(" in other.compile("{{ v }}", raw=True)
