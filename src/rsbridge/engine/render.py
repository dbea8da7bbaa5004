"""Session reports rendered with Jinja2 templates, as plain text and HTML.

Each report part (``chat``, ``notes``, ``system_info``, ``people``, ``recordings``,
``custom_attributes``, ``customer_survey``, ``rep_survey``) and the whole report
(``report``) is a template in two formats: ``NAME.txt`` and ``NAME.html``. The defaults
ship in the ``rsbridge/templates`` package directory; an integration may name an
override directory whose files replace the defaults of the same name.

Templates run in Jinja2's immutable sandbox with strict undefined variables (the shipped
templates that no override replaces, the package's own code, run outside it); HTML
templates autoescape (chat bodies come from whoever is on the other end of the
session), plain-text templates do not. Every failure, at load or render time, is raised
as :class:`~rsbridge.errors.TemplateError` naming the template file and line.
docs/templates.md lists the variables and filters templates receive.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplatesNotFound,
    TemplateSyntaxError,
    select_autoescape,
)
from jinja2.nodes import EvalContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import pass_eval_context
from markupsafe import Markup, escape

from rsbridge import fastpaths
from rsbridge.appliance.report_json import compact_json, session_data
from rsbridge.appliance.report_model import (
    FILE_EVENT_TYPES,
    Actor,
    EventType,
    ExitSurvey,
    SessionEvent,
    SupportSession,
)
from rsbridge.connectors.base import RenderedPart, RenderedReport, Ticket
from rsbridge.engine.template_output import finalize, finalize_fast
from rsbridge.engine.template_sandbox import ReportSandbox, TrustedEnvironment
from rsbridge.errors import TemplateError

PARTS: tuple[str, ...] = (
    "chat",
    "notes",
    "system_info",
    "people",
    "recordings",
    "custom_attributes",
    "customer_survey",
    "rep_survey",
)
"""The report parts, in the order the default full report shows them."""

REPORT = "report"
"""Name of the whole-report template."""

TEMPLATE_SUFFIXES: tuple[str, ...] = (".txt", ".html")
"""File suffixes of templates: plain text and HTML."""

# --- filters ----------------------------------------------------------------------------


def _as_utc(value: datetime) -> datetime:
    # The report model is tz-aware; a naive value can only have come from a template
    # author's own data, and UTC is the only sensible reading of it.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def filter_isotime(value: datetime | None) -> str:
    """``2024-12-02T08:00:00Z``: the UTC ISO 8601 form; ``None`` gives ``""``."""
    if value is None:
        return ""
    text = _as_utc(value).astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def filter_datetime(
    value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S %Z", tz: str = "UTC"
) -> str:
    """A readable time, ``2024-12-02 08:00:00 UTC`` by default.

    ``fmt`` is a :func:`~datetime.datetime.strftime` format, ``tz`` an IANA zone name
    (``Europe/Paris``) the time is converted to first. ``None`` gives ``""``.
    """
    if value is None:
        return ""
    return _as_utc(value).astimezone(ZoneInfo(tz)).strftime(fmt)


def filter_duration(value: timedelta | float | None) -> str:
    """``1h 02m 05s``, ``2m 05s`` or ``45s`` from a timedelta or seconds; ``None``: ``""``."""
    if value is None:
        return ""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    sign = "-" if seconds < 0 else ""
    total = round(abs(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{sign}{minutes}m {secs:02d}s"
    return f"{sign}{secs}s"


def filter_filesize(value: float | None) -> str:
    """``812 B``, ``1.2 KB``, ``3.4 MB`` (multiples of 1024); ``None`` gives ``""``."""
    if value is None:
        return ""
    size = float(value)
    if abs(size) < 1024:
        return f"{int(size)} B"
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1024
        if abs(size) < 1024 or unit == "TB":
            break
    return f"{size:.1f} {unit}"


def filter_actor(value: Actor | None) -> str:
    """The display name of an event actor: ``System`` for the appliance itself."""
    if value is None:
        return ""
    if value.type == "system":
        return "System"
    return value.name


def filter_humanize(value: str) -> str:
    """``task_number`` becomes ``Task number`` (survey questions, data names)."""
    text = str(value).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def filter_pick(mapping: Mapping[str, Any], keys: Iterable[str], default: str = "") -> list[Any]:
    """The values of ``mapping`` for ``keys``, in that order (``default`` if missing).

    ``{{ row | pick(category.columns) | join(" | ") }}`` prints one system information row.
    """
    return [mapping.get(key, default) for key in keys]


def filter_http_url(value: str | None) -> str:
    """``value`` if it is an http(s) URL, else ``""``: keeps ``javascript:`` out of links."""
    if not value:
        return ""
    try:
        scheme = urlsplit(value.strip()).scheme.lower()
    except ValueError:
        return ""
    return value.strip() if scheme in ("http", "https") else ""


@pass_eval_context
def filter_nl2br(eval_ctx: EvalContext, value: str | None) -> str:
    """In HTML templates: escape ``value`` and turn its line breaks into ``<br />``.

    Plain-text templates get ``value`` unchanged.
    """
    if value is None:
        return ""
    if not eval_ctx.autoescape:
        return value
    lines = str(value).replace("\r\n", "\n").split("\n")
    return Markup("<br />\n").join(escape(line) for line in lines)


_DATETIME_MEMO_MAX = 4096

# For a time in UTC these directives depend on its date alone (%Z and %z are constant).
_DATE_DIRECTIVES = frozenset("aAbBdjmUwWyYGuVZz%")
_CLOCK_FIELDS = {"H": "hour", "M": "minute", "S": "second"}
_FORMAT_PARTS = re.compile("(%.)", re.DOTALL)


@dataclasses.dataclass(frozen=True, slots=True)
class _TimeFormat:
    """How a strftime format is written fast for a time in UTC: remembered by date
    (``by_date``), or as zero-padded hours, minutes and seconds (``clock``: a ``%``
    template and the fields it takes), else by strftime itself (neither)."""

    by_date: bool = False
    clock: tuple[str, tuple[str, ...]] | None = None


@functools.lru_cache(maxsize=256)
def _time_format(fmt: str) -> _TimeFormat:
    parts = _FORMAT_PARTS.split(fmt)  # text, directive, text, ...
    if any("%" in text for text in parts[0::2]):
        return _TimeFormat()  # a lone "%" at the end: strftime's own business
    directives = [d[1] for d in parts[1::2]]
    if all(d in _DATE_DIRECTIVES for d in directives):
        return _TimeFormat(by_date=True)
    if all(d in _CLOCK_FIELDS or d == "%" for d in directives):
        pattern = "".join(
            part if i % 2 == 0 else "%%" if part == "%%" else "%02d" for i, part in enumerate(parts)
        )
        fields = tuple(_CLOCK_FIELDS[d] for d in directives if d != "%")
        return _TimeFormat(clock=(pattern, fields))
    return _TimeFormat()


def _memo_datetime() -> Callable[..., str]:
    """:func:`filter_datetime` remembering what it wrote for UTC times of the report model.

    The chat templates format each event's time two or three ways, in text and in HTML,
    and the day heading repeats for every event of a day: most calls repeat an earlier
    one. Only exact ``datetime`` values in UTC are remembered (the model's own), so equal
    keys always mean the same output; a format of the date alone (the day heading) is
    remembered by date, and one of hours, minutes and seconds alone is written without
    strftime (a fifth of its cost). Bounded; a race between threads only recomputes.
    """
    memo: dict[tuple[object, str], str] = {}

    def filter_datetime_memo(
        value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S %Z", tz: str = "UTC"
    ) -> str:
        if type(value) is not datetime or value.tzinfo is not UTC or tz != "UTC":
            return filter_datetime(value, fmt, tz)
        kind = _time_format(fmt)
        if kind.clock is not None:
            pattern, fields = kind.clock
            return pattern % tuple(getattr(value, f) for f in fields)
        key = (value.date() if kind.by_date else value, fmt)
        text = memo.get(key)
        if text is None:
            # Already in UTC: converting to the zone "UTC" changes no field and no name.
            text = value.strftime(fmt)
            if len(memo) >= _DATETIME_MEMO_MAX:
                memo.clear()
            memo[key] = text
        return text

    return filter_datetime_memo


@pass_eval_context
def _nl2br_fast(eval_ctx: EvalContext, value: str | None) -> str:
    """:func:`filter_nl2br` without splitting a value that has no line break."""
    if type(value) is str and eval_ctx.autoescape and "\n" not in value and "\r" not in value:
        return escape(value)
    return filter_nl2br(eval_ctx, value)


FILTERS: Mapping[str, Callable[..., Any]] = {
    "isotime": filter_isotime,
    "datetime": filter_datetime,
    "duration": filter_duration,
    "filesize": filter_filesize,
    "actor": filter_actor,
    "humanize": filter_humanize,
    "pick": filter_pick,
    "http_url": filter_http_url,
    "nl2br": filter_nl2br,
}
"""The filters rsbridge adds to Jinja2's built-in ones, by name."""


@functools.lru_cache(maxsize=512)
def _normalise_event_type(name: str) -> str:
    # "Chat Message", "chat message" and "CHAT_MESSAGE" name the same event type.
    return " ".join(name.replace("_", " ").split()).casefold()


_ALL_TEMPLATES: frozenset[str] = frozenset(
    name + suffix for name in (*PARTS, REPORT) for suffix in TEMPLATE_SUFFIXES
)
"""The report's templates: what :meth:`Renderer.render` renders by default."""

KEY_MAIL = "session_key_mail"
"""The session-key e-mail's templates: ``session_key_mail.txt`` and ``..._subject.txt``."""

SAMPLE_KEY_MAIL: Mapping[str, Any] = {
    "short_key": "1234567",
    "key_url": "https://support.example.com/?ak=0123456789abcdef0123456789abcdef",
    "expires": datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
    "queue": "general",
    "ticket": Ticket("0" * 32, "INC0010001", "https://itsm.example.com/INC0010001"),
    "caller_name": "Abel Tuter",
    "integration": "servicenow",
    "appliance_subject": "Remote Support Invitation",
    "appliance_body": "Click on the link below and follow the directions.",
}
"""Values a template check renders the session-key e-mail with."""


def _is_template(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return name.endswith(TEMPLATE_SUFFIXES) and not base.startswith(".")


class Renderer:
    """Renders session reports and exit surveys from the default or overriding templates.

    Args:
        override_dir: a directory searched before the defaults; a file there named like
            a default template (``chat.html``) replaces it.
        import_events: the event types that appear in the report (chat log, notes,
            system information); names match regardless of case, and ``_`` may stand
            for a space. ``None`` (the default) keeps every event.
        fast_paths: run the shipped templates that no override replaces outside the
            sandbox (they are the package's own code, not user input), and read the report
            model's data fields in overrides without the sandbox's checks
            (:mod:`rsbridge.engine.template_sandbox`); same output either way. ``False``
            runs every template in the plain sandbox; ``None`` (the default) follows
            :mod:`rsbridge.fastpaths`.

    Templates are compiled once and cached: edits to the override directory take effect
    in a new Renderer. Instances are safe to share between threads.

    Raises:
        TemplateError: ``override_dir`` is not a directory.
    """

    def __init__(
        self,
        override_dir: Path | None = None,
        *,
        import_events: Collection[str] | None = None,
        fast_paths: bool | None = None,
    ) -> None:
        loaders: list[BaseLoader] = []
        if override_dir is not None:
            if not override_dir.is_dir():
                raise TemplateError(
                    f"template directory {override_dir} does not exist or is not a directory",
                    template=str(override_dir),
                )
            loaders.append(FileSystemLoader(override_dir))
        loaders.append(PackageLoader("rsbridge", "templates"))
        self.override_dir = override_dir
        self._import_events = (
            None
            if import_events is None
            else frozenset(_normalise_event_type(name) for name in import_events)
        )
        if fast_paths is None:
            fast_paths = fastpaths.enabled()
        sandbox = ReportSandbox if fast_paths else ImmutableSandboxedEnvironment
        self.fast_paths = fast_paths
        self._env = self._environment(sandbox, ChoiceLoader(loaders))
        # The sandbox guards against template code, and the shipped templates are the
        # package's own code: where no override replaces one, it runs in a plain
        # environment that loads only the package's templates (about a tenth less work
        # per report). Every template of the override directory, and whatever it
        # includes, stays in the sandbox.
        self._trusted: Environment | None = None
        self._overridden: frozenset[str] = frozenset()
        if fast_paths:
            self._trusted = self._environment(TrustedEnvironment, loaders[-1])
            if override_dir is not None:
                self._overridden = frozenset(FileSystemLoader(override_dir).list_templates())
        self._templates: dict[str, Template] = {}

    # --- public API ---------------------------------------------------------------------

    def render(
        self,
        session: SupportSession,
        templates: Collection[str] | None = None,
        *,
        session_json: bool = False,
    ) -> RenderedReport:
        """The whole report and each part of ``session``, as plain text and HTML.

        ``templates`` names the ones wanted (``chat.txt``, ``report.html``: a connector's
        :meth:`~rsbridge.connectors.base.Connector.report_templates`); ``None``: all. The
        whole report of a format needs, and renders, every part of that format. A part
        rendered in neither format is left out of ``parts``; a format not rendered is "".
        ``session_json``: the report carries :meth:`session_json` too (a connector's
        :meth:`~rsbridge.connectors.base.Connector.writes_session_json`).

        Raises:
            ValueError: ``templates`` names a template that is not a report template.
            TemplateError: a template is missing, broken or fails while rendering.
        """
        wanted = _ALL_TEMPLATES if templates is None else frozenset(templates)
        if not wanted <= _ALL_TEMPLATES:
            unknown = ", ".join(sorted(wanted - _ALL_TEMPLATES))
            raise ValueError(f"not report templates: {unknown}")
        full_text, full_html = f"{REPORT}.txt" in wanted, f"{REPORT}.html" in wanted
        context = self._context(session)
        parts: dict[str, RenderedPart] = {}
        for name in PARTS:
            text = full_text or f"{name}.txt" in wanted
            html = full_html or f"{name}.html" in wanted
            if text or html:
                parts[name] = RenderedPart(
                    text=self._render(f"{name}.txt", context) if text else "",
                    html=self._render(f"{name}.html", context) if html else "",
                )
        # The full report gets the parts already rendered: overriding one part changes
        # the full report too, and nothing is rendered twice. The HTML parts come from
        # autoescaping templates, so they are markup, not text to escape again.
        text_parts = {n: p.text for n, p in parts.items()}
        html_parts = {n: Markup(p.html) for n, p in parts.items()}  # noqa: S704
        full = RenderedPart(
            text=self._render(f"{REPORT}.txt", {**context, "parts": text_parts})
            if full_text
            else "",
            html=self._render(f"{REPORT}.html", {**context, "parts": html_parts})
            if full_html
            else "",
        )
        written = self.session_json(session) if session_json else None
        return RenderedReport(full=full, parts=parts, session_json=written)

    def render_part(self, session: SupportSession, part: str, *, html: bool = False) -> str:
        """One part (or ``report``) of ``session`` in one format.

        Raises:
            TemplateError: ``part`` is unknown, or its template fails.
        """
        if part == REPORT:
            full = self.render(session).full
            return full.html if html else full.text
        if part not in PARTS:
            raise TemplateError(
                f"unknown report part {part!r}; choose from {', '.join((REPORT, *PARTS))}",
                template=part,
            )
        suffix = ".html" if html else ".txt"
        return self._render(part + suffix, self._context(session))

    def render_survey(
        self, session: SupportSession, kind: Literal["customer", "rep"], survey: ExitSurvey
    ) -> RenderedPart:
        """One exit survey of ``session``, with the ``customer_survey`` or ``rep_survey``
        templates (which then see just this survey).

        Raises:
            ValueError: ``kind`` is neither ``customer`` nor ``rep``.
            TemplateError: the template is missing, broken or fails while rendering.
        """
        if kind not in ("customer", "rep"):
            raise ValueError(f"survey kind must be 'customer' or 'rep', not {kind!r}")
        context = self._context(session)
        context[f"{kind}_surveys"] = [survey]
        context["survey"] = survey
        name = f"{kind}_survey"
        return RenderedPart(
            text=self._render(f"{name}.txt", context),
            html=self._render(f"{name}.html", context),
        )

    def render_key_mail(self, values: Mapping[str, Any]) -> tuple[str, str]:
        """The session-key e-mail's subject (one line) and body, from the templates
        ``session_key_mail_subject.txt`` and ``session_key_mail.txt`` (their comments list
        the ``values`` they see).

        Raises:
            TemplateError: a template is missing, broken or fails while rendering.
        """
        context = dict(values)
        subject = " ".join(self._render(f"{KEY_MAIL}_subject.txt", context).split())
        return subject, self._render(f"{KEY_MAIL}.txt", context)

    def check(self, sample: SupportSession | None = None) -> list[str]:
        """Compile every template (overrides and defaults); return their names.

        With a ``sample`` session, also render the report and both surveys of it, which
        finds runtime errors (undefined variables, refused attribute access) too. The
        session-key e-mail is always rendered, with sample values.

        Raises:
            TemplateError: for the first template, in name order, that fails.
        """
        names = sorted(self._env.list_templates(filter_func=_is_template))
        for name in names:
            self._template(name)
        if sample is not None:
            self.render(sample)
            self.render_survey(sample, "customer", ExitSurvey())
            self.render_survey(sample, "rep", ExitSurvey())
        # Needs no session: always rendered, so that `rsbridge check` finds an unknown value.
        self.render_key_mail(SAMPLE_KEY_MAIL)
        return names

    # --- internals ----------------------------------------------------------------------

    def imported_session(self, session: SupportSession) -> SupportSession:
        """``session`` with only the events of ``import_events`` (itself if all are kept)."""
        if self._import_events is None:
            return session
        return dataclasses.replace(session, events=[e for e in session.events if self._imported(e)])

    def session_json(self, session: SupportSession) -> bytes | None:
        """The imported session (:meth:`imported_session`) as compact JSON, as a connector
        writes it (:func:`~rsbridge.appliance.report_json.compact_json`); None if it
        cannot be written so (text with a lone surrogate, which no parsed report holds):
        the connector then meets the error itself, as without this."""
        try:
            return compact_json(session_data(self.imported_session(session)))
        except ValueError:  # UnicodeEncodeError
            return None

    def _imported(self, event: SessionEvent) -> bool:
        return (
            self._import_events is None
            or _normalise_event_type(event.event_type) in self._import_events
        )

    def _context(self, session: SupportSession) -> dict[str, Any]:
        events = [e for e in session.events if self._imported(e)]
        names: dict[int, str] = {}
        for e in events:
            for actor in (e.performed_by, e.destination):
                if actor is not None and actor.gsnumber is not None and actor.type != "system":
                    names.setdefault(actor.gsnumber, actor.name)
        # The people lists name people better than event actors do; they win.
        for c in session.customers:
            name = c.info.get("name") or c.hostname or c.username
            if c.gsnumber is not None and name:
                names[c.gsnumber] = name
        for r in session.representatives:
            name = r.display_name or r.private_display_name or r.username
            if r.gsnumber is not None and name:
                names[r.gsnumber] = name
        return {
            "session": session,
            "events": events,
            "notes": [e for e in events if e.event_type == EventType.SESSION_NOTE_ADDED],
            "system_info": [
                e
                for e in events
                if e.event_type == EventType.SYSTEM_INFORMATION_RETRIEVED and e.system_information
            ],
            "customer_surveys": list(session.customer_surveys),
            "rep_surveys": list(session.rep_surveys),
            "survey": None,
            "names": names,
        }

    def _environment(self, cls: type[Environment], loader: BaseLoader) -> Environment:
        """An environment of ``cls`` with the report templates' options, filters and
        globals."""
        env = cls(
            loader=loader,
            undefined=StrictUndefined,
            autoescape=select_autoescape(
                enabled_extensions=("html", "htm", "xml"),
                disabled_extensions=("txt",),
                default_for_string=False,
                default=False,
            ),
            trim_blocks=True,
            lstrip_blocks=True,
            finalize=finalize_fast if self.fast_paths else finalize,
            # Compiled templates are kept for the renderer's life; no mtime checks.
            auto_reload=False,
            cache_size=-1,
        )
        env.filters.update(FILTERS)
        if self.fast_paths:
            # Same output, less work per event (tests/engine/test_render_fast.py).
            env.filters.update({"datetime": _memo_datetime(), "nl2br": _nl2br_fast})
        env.globals.update(
            {
                "EventType": EventType,
                "file_event_types": FILE_EVENT_TYPES,
                "parts_order": PARTS,
            }
        )
        return env

    def _template(self, name: str) -> Template:
        template = self._templates.get(name)
        if template is None:
            env = self._env
            if self._trusted is not None and name not in self._overridden:
                env = self._trusted
            try:
                template = env.get_template(name)
            except Exception as exc:
                raise self._error(name, exc) from exc
            self._templates[name] = template
        return template

    def _render(self, name: str, context: Mapping[str, Any]) -> str:
        template = self._template(name)
        try:
            return template.render(context).strip()
        except Exception as exc:
            raise self._error(name, exc) from exc

    def _error(self, name: str, exc: Exception) -> TemplateError:
        """Turn any exception of loading or rendering ``name`` into a TemplateError."""
        if isinstance(exc, TemplateSyntaxError):
            where = exc.name or name
            message = f"{where} line {exc.lineno}: {exc.message or 'syntax error'}"
            return TemplateError(message, template=where, line=exc.lineno)
        if isinstance(exc, TemplatesNotFound | TemplateNotFound):
            detail = f"template {exc.message or exc.name!r} not found{self._searched()}"
        elif isinstance(exc, TemplateError):
            detail = exc.message
        else:
            detail = str(exc) or type(exc).__name__
            if not type(exc).__module__.startswith("jinja2"):
                detail = f"{type(exc).__name__}: {detail}"
        frames = self._template_frames(exc.__traceback__)
        if not frames:
            return TemplateError(f"{name}: {detail}", template=name)
        where, line = frames[-1]
        message = f"{where} line {line}: {detail}"
        if len(frames) > 1:
            message += " (via " + ", ".join(f"{n} line {ln}" for n, ln in frames[-2::-1]) + ")"
        return TemplateError(message, template=where, line=line)

    def _searched(self) -> str:
        if self.override_dir is None:
            return " among the default templates"
        return f" in {self.override_dir} or among the default templates"

    def _template_frames(self, tb: TracebackType | None) -> list[tuple[str, int]]:
        """(template name, line) of the template frames of ``tb``, outermost first.

        Jinja2 rewrites the traceback of a rendering error so that frames of compiled
        template code carry the template's file name and source line.
        """
        frames: list[tuple[str, int]] = []
        known: list[str] | None = None
        while tb is not None:
            if "__jinja_exception__" in tb.tb_frame.f_globals:
                if known is None:
                    known = self._env.list_templates()
                filename = tb.tb_frame.f_code.co_filename
                frames.append((_template_name(filename, known), tb.tb_lineno))
            tb = tb.tb_next
        return frames


def _template_name(filename: str, known: Iterable[str]) -> str:
    """The template name (``chat.html``) of a template file path."""
    path = os.path.normpath(filename)
    best = ""
    for name in known:
        candidate = os.path.normpath(name)
        if (path == candidate or path.endswith(os.sep + candidate)) and len(name) > len(best):
            best = name
    return best or os.path.basename(path)
