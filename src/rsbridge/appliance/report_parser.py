"""Streaming parser for the appliance's Reporting API XML.

A report with thousands of sessions is read one ``<session>`` at a time: bytes are
pushed into an lxml pull parser (so the same code serves an HTTP response stream and a
file), each finished item element is turned into a model object and then freed, so
memory depends on the largest session, not on the report.

Hardening: a DTD in the prolog is refused (:class:`ReportSecurityError`), so no entity
can be declared or expanded; nothing is fetched from the network, libxml2's size
limits stay on,
and :class:`ReportLimits` bounds the whole document and any one item, in bytes and in
elements (:class:`ReportTooLargeError`). Malformed XML raises :class:`ReportSyntaxError`
with the line and column. An ``<error>`` answered by the appliance inside or instead of a
report raises the matching :class:`~rsbridge.errors.ApplianceCommandError`.

One damaged item need not cost the others: an item that is well-formed XML but holds a
value that cannot be read (``<filesize>12abc</filesize>``) is reported to ``on_damaged``
and skipped, and the parser reads on. Items nobody asked for (``wanted``) are freed
without being built, and counted. Errors raised while an item is open name its key
(``ReportError.item``), so a caller can fetch the other items again without it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Generic, TypeVar

from lxml import etree

from rsbridge.appliance.report_model import (
    Actor,
    CustomAttribute,
    Customer,
    Endpoint,
    ExitSurvey,
    ExitSurveyRecord,
    JumpGroup,
    NamedRef,
    PrimaryCustomer,
    PrimaryRep,
    Recording,
    Representative,
    SessionEvent,
    SessionSummary,
    SupportSession,
    SurveyAnswer,
    SurveyQuestion,
    SystemInfoCategory,
    TeamActivity,
)
from rsbridge.appliance.xml import (
    Element,
    PrologGuard,
    children,
    command_error,
    local_name,
    safe_pull_parser,
    syntax_error_parts,
    unix_time,
)
from rsbridge.errors import ReportError, ReportSyntaxError, ReportTooLargeError

T = TypeVar("T")

CHUNK_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class ReportLimits:
    """Size limits for one report document.

    ``max_item_bytes`` and ``max_item_elements`` bound a single session (or survey, ...)
    and so the parser's memory; ``max_bytes`` bounds the document (``None``: no limit,
    streaming keeps memory flat anyway). Elements need their own bound because libxml2
    spends about 120 bytes on each: 60 MB of empty elements inside one session would
    take some 2 GB as a tree, while 250,000 elements take about 30 MB (a day-long session
    with a large system-information snapshot has some tens of thousands).
    """

    max_bytes: int | None = None
    max_item_bytes: int = 64 * 1024 * 1024
    max_item_elements: int = 250_000


DEFAULT_LIMITS = ReportLimits()


# --- scalar conversions -----------------------------------------------------------


def _text(el: Element) -> str | None:
    return el.text or None


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ReportError(f"expected an integer, got {value[:40]!r}") from None


# Reports repeat the same few actors and timestamps thousands of times; these memos
# (bounded, and only holding immutable values) spare rebuilding them for every event.
_MEMO_MAX = 4096
_TIMES: dict[str, datetime | None] = {}
_ACTORS: dict[tuple[str | None, str | None, str | None], Actor] = {}
_EPOCH = datetime.fromtimestamp(0, tz=UTC)


def _time(el: Element) -> datetime | None:
    raw = el.get("timestamp") or ""
    try:
        return _TIMES[raw]
    except KeyError:
        value = unix_time(raw, ReportError)
        if len(_TIMES) >= _MEMO_MAX:
            _TIMES.clear()
        _TIMES[raw] = value
        return value


def _duration(value: str | None) -> timedelta | None:
    if not value:
        return None
    try:
        h, m, s = (int(part) for part in value.split(":"))
        return timedelta(hours=h, minutes=m, seconds=s)
    except (ValueError, OverflowError):
        raise ReportError(f"expected a duration HH:MM:SS, got {value[:40]!r}") from None


def parse_endpoint(value: str | None) -> Endpoint | None:
    """``1.2.3.4:5``, ``[2001:db8::1]:5``, ``10.0.0.4`` or ``Unknown`` -> :class:`Endpoint`."""
    if not value or value == "Unknown":
        return None
    if value.startswith("["):
        host, _, port = value[1:].partition("]:")
        return Endpoint(host.rstrip("]"), _int(port))
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return Endpoint(host, _int(port))
    return Endpoint(value)  # bare IPv4, or bare IPv6 without a port


def _known(value: str | None) -> str | None:
    return None if value == "Unknown" else value


def _flag(value: str | None) -> bool:
    return value == "1"


def _named(el: Element) -> NamedRef:
    return NamedRef(name=el.text or "", id=el.get("id"))


def _actor(el: Element) -> Actor:
    key = (el.get("type"), el.text, el.get("gsnumber"))
    actor = _ACTORS.get(key)
    if actor is None:
        if len(_ACTORS) >= _MEMO_MAX:
            _ACTORS.clear()
        actor = _ACTORS[key] = Actor(key[0] or "", key[1] or "", _int(key[2]))
    return actor


def _values_list(el: Element) -> list[tuple[str, str]]:
    """``<value name=".." value=".."/>`` children as pairs (survey questions may repeat)."""
    return [(v.get("name") or "", v.get("value") or "") for v in el.iterchildren("{*}value")]


def _values(el: Element) -> dict[str, str]:
    """``<value>`` children as an ordered mapping (event data names are unique)."""
    return dict(_values_list(el))


def _fields(el: Element) -> dict[str, str]:
    """``<field name="..">text</field>`` children as an ordered mapping."""
    return {f.get("name") or "": f.text or "" for f in el.iterchildren("{*}field")}


def _leaf_texts(el: Element) -> dict[str, str]:
    return {name: c.text or "" for name, c in children(el)}


def _raw(el: Element) -> str:
    """Text of a leaf element, or the serialised XML of one with children."""
    if len(el):
        return etree.tostring(el, encoding="unicode", with_tail=False)
    return el.text or ""


# --- session parts ----------------------------------------------------------------


def _customer(el: Element) -> Customer:
    c = Customer(gsnumber=_int(el.get("gsnumber")))
    for child in el:
        name = local_name(child)
        if name == "username":
            c.username = _text(child)
        elif name == "public_ip":
            c.public_ip = parse_endpoint(child.text)
        elif name == "private_ip":
            c.private_ip = parse_endpoint(child.text)
        elif name == "hostname":
            c.hostname = _known(_text(child))
        elif name == "os":
            c.os = _known(_text(child))
        elif name == "primary_cust":
            c.primary = _flag(child.text)
        elif name == "info":
            c.info = _leaf_texts(child)
    return c


def _representative(el: Element) -> Representative:
    r = Representative(gsnumber=_int(el.get("gsnumber")), id=el.get("id"))
    for child in el:
        name = local_name(child)
        if name in ("username", "display_name", "public_display_name", "private_display_name"):
            setattr(r, name, _text(child))
        elif name in ("public_ip", "private_ip"):
            setattr(r, name, parse_endpoint(child.text))
        elif name in ("hostname", "os"):
            setattr(r, name, _known(_text(child)))
        elif name == "session_owner":
            r.session_owner = _flag(child.text)
        elif name == "primary_rep":
            r.primary = _flag(child.text)
        elif name == "invited":
            r.invited = _flag(child.text)
        elif name == "seconds_involved":
            r.seconds_involved = _int(child.text)
    return r


def _reps(el: Element) -> list[Representative]:
    """The ``<representative>`` children of a ``rep_list`` (sessions and surveys)."""
    return [_representative(r) for r in el.iterchildren("{*}representative")]


def _system_information(el: Element) -> list[SystemInfoCategory]:
    categories = []
    for cat in el:
        if local_name(cat) != "category":
            continue
        info = SystemInfoCategory(name=cat.get("name") or "")
        for part in cat:
            part_name = local_name(part)
            if part_name == "description":
                info.columns = _fields(part)
            elif part_name == "data":
                info.rows = [_fields(row) for row in part.iterchildren("{*}row")]
        categories.append(info)
    return categories


def _decode_body(encoded: str) -> str:
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError and non-ASCII input alike
        raise ReportError("an event's encoded_body is not valid base64 of UTF-8 text") from None


def _event(el: Element) -> SessionEvent:
    # Locals and one positional constructor call: this runs once per event, the
    # parser's most frequent object after system-information rows.
    performed_by = destination = None
    body = encoded = filename = None
    filesize = None
    data: dict[str, str] = {}
    system_information = None
    extra: dict[str, str] = {}
    for child in el:
        name = local_name(child)
        if name == "performed_by":
            performed_by = _actor(child)
        elif name == "destination":
            destination = _actor(child)
        elif name == "body":
            body = child.text or ""
        elif name == "encoded_body":
            encoded = child.text
        elif name == "filename":
            filename = _text(child)
        elif name == "filesize":
            filesize = _int(child.text)
        elif name == "system_information":
            system_information = _system_information(child)
        elif name == "data":
            data = _values(child)
        elif name:
            extra[name] = _raw(child)
    if encoded:
        body = _decode_body(encoded)
    return SessionEvent(
        _time(el) or _EPOCH,
        el.get("event_type") or "",
        performed_by,
        destination,
        body,
        filename,
        filesize,
        data,
        system_information,
        extra,
    )


def _surveys(el: Element) -> list[ExitSurvey]:
    return [
        ExitSurvey(
            gsnumber=_int(s.get("gsnumber")),
            answers=[SurveyAnswer(name=k, value=v) for k, v in _values_list(s)],
        )
        for s in el
        if isinstance(s.tag, str)
    ]


def _recording(el: Element) -> Recording:
    rec = Recording(instance=_int(el.get("instance")))
    for child in el:
        name = local_name(child)
        if name == "view_url":
            rec.view_url = _text(child)
        elif name == "download_url":
            rec.download_url = _text(child)
    return rec


def _primary_customer(el: Element) -> PrimaryCustomer | None:
    if not el.text and el.get("gsnumber") is None:
        return None
    return PrimaryCustomer(name=el.text or "", gsnumber=_int(el.get("gsnumber")))


def _primary_rep(el: Element) -> PrimaryRep | None:
    if not el.text and el.get("gsnumber") is None:
        return None
    return PrimaryRep(name=el.text or "", gsnumber=_int(el.get("gsnumber")), id=el.get("id"))


def _set_recording_url(s: SupportSession, attr: str, el: Element) -> None:
    if s.recording is None:
        s.recording = Recording()
    setattr(s.recording, attr, _text(el))


_SessionHandler = Callable[[SupportSession, Element], None]

# One handler per child element of <session>; a dict keeps the per-session loop flat.
_SESSION_CHILDREN: dict[str, _SessionHandler] = {
    "session_type": lambda s, el: setattr(s, "session_type", el.text or ""),
    "lseq": lambda s, el: setattr(s, "lseq", _int(el.text)),
    "start_time": lambda s, el: setattr(s, "start_time", _time(el)),
    "end_time": lambda s, el: setattr(s, "end_time", _time(el)),
    "duration": lambda s, el: setattr(s, "duration", _duration(el.text)),
    "public_site": lambda s, el: setattr(s, "public_site", _named(el)),
    "jumpoint": lambda s, el: setattr(s, "jumpoint", _named(el)),
    "jump_group": lambda s, el: setattr(
        s, "jump_group", JumpGroup(name=el.text or "", id=el.get("id"), type=el.get("type"))
    ),
    "external_key": lambda s, el: setattr(s, "external_key", _text(el)),
    "custom_attributes": lambda s, el: setattr(
        s,
        "custom_attributes",
        [
            CustomAttribute(
                code_name=a.get("code_name") or "",
                display_name=a.get("display_name") or "",
                value=a.text or "",
            )
            for a in el
            if local_name(a) == "custom_attribute"
        ],
    ),
    "session_chat_view_url": lambda s, el: setattr(s, "chat_view_url", _text(el)),
    "session_chat_download_url": lambda s, el: setattr(s, "chat_download_url", _text(el)),
    "session_recording_view_url": lambda s, el: _set_recording_url(s, "view_url", el),
    "session_recording_download_url": lambda s, el: _set_recording_url(s, "download_url", el),
    "command_shell_recordings": lambda s, el: setattr(
        s, "command_shell_recordings", [_recording(r) for r in el if isinstance(r.tag, str)]
    ),
    "file_transfer_count": lambda s, el: setattr(s, "file_transfer_count", _int(el.text) or 0),
    "file_move_count": lambda s, el: setattr(s, "file_move_count", _int(el.text) or 0),
    "file_delete_count": lambda s, el: setattr(s, "file_delete_count", _int(el.text) or 0),
    "primary_customer": lambda s, el: setattr(s, "primary_customer", _primary_customer(el)),
    "primary_rep": lambda s, el: setattr(s, "primary_rep", _primary_rep(el)),
    "customer_list": lambda s, el: setattr(
        s, "customers", [_customer(c) for c in el if local_name(c) == "customer"]
    ),
    "rep_list": lambda s, el: setattr(s, "representatives", _reps(el)),
    "team_list": lambda s, el: setattr(
        s, "teams", [_named(t) for t in el if local_name(t) == "team"]
    ),
    "session_details": lambda s, el: setattr(
        s, "events", [_event(e) for e in el.iterchildren("{*}event")]
    ),
    "cust_survey_list": lambda s, el: setattr(s, "customer_surveys", _surveys(el)),
    "rep_survey_list": lambda s, el: setattr(s, "rep_surveys", _surveys(el)),
}


def build_session(el: Element) -> SupportSession:
    """Turn one ``<session>`` element into a :class:`SupportSession`."""
    s = SupportSession(lsid=el.get("lsid") or "")
    for child in el:
        name = local_name(child)
        handler = _SESSION_CHILDREN.get(name)
        if handler is not None:
            handler(s, child)
        elif name:
            s.extra[name] = _raw(child)
    return s


def build_summary(el: Element) -> SessionSummary:
    """Turn one ``<session_summary>`` element into a :class:`SessionSummary`."""
    return SessionSummary(
        lsid=el.get("lsid") or "",
        has_recording=_flag(el.get("has_recording")),
        external_key=el.get("external_key") or None,
    )


def _question(el: Element) -> SurveyQuestion:
    q = SurveyQuestion(id=el.get("id") or "", name="", label="")
    for child in el:
        name = local_name(child)
        if name in ("name", "label"):
            setattr(q, name, child.text or "")
        elif name in ("type", "report_header"):
            setattr(q, name, _text(child))
        elif name == "answer_list":
            q.answers = [a.text or "" for a in child if local_name(a) == "answer"]
    return q


def build_exit_survey(el: Element) -> ExitSurveyRecord:
    """Turn one ``<exit_survey>`` element into an :class:`ExitSurveyRecord`."""
    r = ExitSurveyRecord(lsid=el.get("lsid") or "", timestamp=_time(el))
    for child in el:
        name = local_name(child)
        if name == "submitted_by":
            r.submitted_by = child.get("type")
        elif name == "primary_rep":
            r.primary_rep = _primary_rep(child)
        elif name == "primary_customer":
            r.primary_customer = _primary_customer(child)
        elif name == "rep_list":
            r.representatives = _reps(child)
        elif name == "question_list":
            r.questions = [_question(q) for q in child if local_name(q) == "question"]
    return r


def build_team_activity(el: Element) -> TeamActivity:
    """Turn one ``<team_activity>`` element into a :class:`TeamActivity`."""
    events: list[SessionEvent] = []
    for child in el:
        if local_name(child) == "events":
            events = [_event(e) for e in child if local_name(e) == "event"]
    return TeamActivity(id=el.get("id") or "", name=el.get("name") or "", events=events)


# --- the streaming machinery ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportKind(Generic[T]):
    """Which root and item elements a report has, how to build an item, and which
    attribute of an item names it (``key``: the lsid of a session)."""

    root: str
    item: str
    build: Callable[[Element], T]
    key: str | None = None


SUPPORT_SESSIONS: ReportKind[SupportSession] = ReportKind(
    "session_list", "session", build_session, "lsid"
)
SESSION_LISTING: ReportKind[SessionSummary] = ReportKind(
    "session_summary_list", "session_summary", build_summary, "lsid"
)
EXIT_SURVEYS: ReportKind[ExitSurveyRecord] = ReportKind(
    "exit_survey_list", "exit_survey", build_exit_survey, "lsid"
)
TEAM_ACTIVITY: ReportKind[TeamActivity] = ReportKind(
    "team_activity_list", "team_activity", build_team_activity, "id"
)


@dataclass(frozen=True, slots=True)
class DamagedItem:
    """An item that is well-formed XML but could not be read, and was skipped.

    ``key`` is its key attribute (lsid), ``None`` if it has none; ``index`` its
    position among the items of the document (0 for the first).
    """

    key: str | None
    index: int
    error: ReportError


class ReportParser(Generic[T]):
    """Push parser: :meth:`feed` bytes as they arrive, get finished items back.

    >>> parser = ReportParser(SUPPORT_SESSIONS)
    >>> for chunk in chunks: handle(parser.feed(chunk))
    >>> handle(parser.close())
    """

    def __init__(
        self,
        kind: ReportKind[T],
        limits: ReportLimits = DEFAULT_LIMITS,
        *,
        what: str = "",
        wanted: Collection[str] | None = None,
        on_damaged: Callable[[DamagedItem], None] | None = None,
    ) -> None:
        """``what`` names the report in error messages (e.g. ``report SupportSession``).

        ``wanted``: the keys (lsids) asked for; other items are skipped unbuilt and
        counted in :attr:`items_skipped`. ``on_damaged``: called for each item that
        holds a value that cannot be read, which is then skipped (without it, such an
        item raises its :class:`ReportError`).
        """
        self._kind = kind
        self._what = what or f"report <{kind.root}>"
        self._wanted = wanted
        self._on_damaged = on_damaged
        # A syntax error found while feeding is raised on the next call, so that the
        # items completed before the damage are delivered first; so is a damaged item
        # when there is no on_damaged to report it to.
        self._pending: etree.XMLSyntaxError | None = None
        self._failed: ReportError | None = None
        self._limits = limits
        self._guard = PrologGuard()
        self._parser = safe_pull_parser((f"{{*}}{kind.item}", "{*}error"), events=("start", "end"))
        self._total = 0
        self._since_item = 0
        self._elements = 0
        self._open: str | None = None
        self.items_seen = 0
        """Items completed so far: delivered, skipped or damaged."""
        self.items_skipped = 0
        """Items skipped because their key was not ``wanted``."""
        self.items_damaged = 0
        """Items skipped because a value in them could not be read."""

    def feed(self, data: bytes) -> list[T]:
        """Parse ``data`` (any split is fine); return the items completed by it."""
        self._raise_pending()
        items: list[T] = []
        # Limits are checked before libxml2 sees the bytes, one bounded piece at a time,
        # so an oversized item is refused before its tree is built.
        for start in range(0, len(data), CHUNK_SIZE):
            piece = data[start : start + CHUNK_SIZE] if len(data) > CHUNK_SIZE else data
            try:
                self._check_limits(piece)
            except ReportError as exc:
                self._failed = exc
                break
            safe = self._guard.feed(piece)
            if safe:
                self._feed_lxml(safe)
                items += self._collect()
            if self._pending is not None or self._failed is not None:
                break
        if not items:
            self._raise_pending()
        # Otherwise a failure is raised on the next call, after these items are delivered.
        return items

    def close(self) -> list[T]:
        """Finish the document; raise if it is truncated or not the expected report."""
        self._raise_pending()
        rest = self._guard.flush()
        if rest:
            self._feed_lxml(rest)
        items = self._collect()
        self._raise_pending()
        try:
            root = self._parser.close()
        except etree.XMLSyntaxError as exc:
            raise self._syntax_error(exc) from None
        name = local_name(root)
        if name == "error":
            raise command_error(root.text or "", self._what)
        if name != self._kind.root:
            raise ReportError(f"expected a <{self._kind.root}> report, got <{name}>")
        return items

    def _check_limits(self, piece: bytes) -> None:
        self._total += len(piece)
        self._since_item += len(piece)
        # Every element has a start tag, so "<" not followed by "/" bounds their number
        # from above (comments and CDATA only make the count stricter).
        self._elements += piece.count(b"<") - piece.count(b"</")
        item = f"<{self._kind.item}>"
        if self._limits.max_bytes is not None and self._total > self._limits.max_bytes:
            raise self._keyed(
                ReportTooLargeError(
                    f"report larger than the limit of {self._limits.max_bytes} bytes"
                )
            )
        if self._since_item > self._limits.max_item_bytes:
            raise self._keyed(
                ReportTooLargeError(
                    f"one {item} is larger than the limit of "
                    f"{self._limits.max_item_bytes} bytes ({self._where()})"
                )
            )
        if self._elements > self._limits.max_item_elements:
            raise self._keyed(
                ReportTooLargeError(
                    f"one {item} has more than the limit of "
                    f"{self._limits.max_item_elements} elements ({self._where()})"
                )
            )

    def _where(self) -> str:
        named = f"{self._kind.key} {self._open!r}, " if self._open is not None else ""
        return f"{named}after item #{self.items_seen}"

    def _keyed(self, error: ReportError) -> ReportError:
        """``error`` marked with the key of the item open when it happened."""
        error.item = self._open
        return error

    def _feed_lxml(self, data: bytes) -> None:
        try:
            self._parser.feed(data)
        except etree.XMLSyntaxError as exc:
            self._pending = exc

    def _raise_pending(self) -> None:
        if self._failed is not None:
            raise self._failed
        if self._pending is not None:
            raise self._syntax_error(self._pending) from None

    def _collect(self) -> list[T]:
        items: list[T] = []
        if self._failed is not None:
            return items
        key_name = self._kind.key
        for event, el in self._parser.read_events():
            if not isinstance(el, etree._Element):
                continue
            if local_name(el) == "error":
                if event != "end":
                    continue
                parent = el.getparent()
                if parent is None or parent.getparent() is None:  # root or child of root
                    raise command_error(el.text or "", self._what)
                continue
            key = el.get(key_name) if key_name else None
            if event == "start":
                self._open = key
                continue
            index = self.items_seen
            self.items_seen += 1
            if self._wanted is not None and key not in self._wanted:
                self.items_skipped += 1
            else:
                try:
                    items.append(self._kind.build(el))
                except ReportError as exc:
                    exc.item = key
                    if self._on_damaged is None:
                        self._failed = exc
                        return items
                    self.items_damaged += 1
                    self._on_damaged(DamagedItem(key, index, exc))
            self._open = None
            self._since_item = 0
            self._elements = 0
            # Free what is done: the element and the siblings before it.
            el.clear()
            parent = el.getparent()
            if parent is not None:
                while el.getprevious() is not None:
                    del parent[0]
        return items

    def _syntax_error(self, exc: etree.XMLSyntaxError) -> ReportError:
        line, column, detail = syntax_error_parts(exc)
        message = (
            f"malformed report XML at line {line}, column {column}: {detail} "
            f"(after {self.items_seen} complete <{self._kind.item}> elements)"
        )
        if "huge" in detail.lower():  # libxml2's own size limits
            return self._keyed(ReportTooLargeError(message))
        return self._keyed(ReportSyntaxError(message, line=line, column=column))


def iter_report(
    source: bytes | Iterable[bytes] | IO[bytes],
    kind: ReportKind[T],
    limits: ReportLimits = DEFAULT_LIMITS,
    *,
    what: str = "",
    wanted: Collection[str] | None = None,
    on_damaged: Callable[[DamagedItem], None] | None = None,
) -> Iterator[T]:
    """Parse a report from bytes, an iterable of chunks or a binary file, one item at a time.

    ``what`` names the report in error messages (default: its root element);
    ``wanted`` and ``on_damaged`` as for :class:`ReportParser`.
    """
    parser = ReportParser(kind, limits, what=what, wanted=wanted, on_damaged=on_damaged)
    chunks: Iterable[bytes]
    read = getattr(source, "read", None)
    if isinstance(source, bytes):
        chunks = (source[i : i + CHUNK_SIZE] for i in range(0, len(source), CHUNK_SIZE))
    elif callable(read):
        chunks = iter(lambda: bytes(read(CHUNK_SIZE)), b"")
    else:
        assert isinstance(source, Iterable)
        chunks = source
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.close()


def iter_sessions(
    source: bytes | Iterable[bytes] | IO[bytes] | Path, limits: ReportLimits = DEFAULT_LIMITS
) -> Iterator[SupportSession]:
    """Parse a SupportSession report (bytes, chunks, a binary file or a path)."""
    if isinstance(source, Path):
        with source.open("rb") as fh:
            yield from iter_report(fh, SUPPORT_SESSIONS, limits)
    else:
        yield from iter_report(source, SUPPORT_SESSIONS, limits)
