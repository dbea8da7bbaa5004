"""Typed model of the appliance's session reports (Reporting API).

The classes mirror the XML of ``generate_report=SupportSession`` (see
docs/appliance.md for the element-by-element mapping). They are plain dataclasses:
cheap to build while streaming thousands of sessions, comparable with ``==`` (the
property tests rely on it) and serialisable with :func:`to_jsonable`.

Conventions:

* Times are timezone-aware UTC :class:`~datetime.datetime` values taken from the
  ``timestamp`` attributes (the text form is derived from them).
* Values the appliance reports as the literal ``Unknown`` or as an empty element
  are ``None``.
* Nothing is dropped: event types this model does not know keep their raw type
  name, actors and ``<data><value>`` pairs; unknown child elements of an event are
  kept in :attr:`SessionEvent.extra`.
"""

from __future__ import annotations

import dataclasses
import enum
import operator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rsbridge import fastpaths


class EventType(enum.StrEnum):
    """The 53 ``event_type`` values of a Remote Support session report."""

    CALLBACK_BUTTON_DEPLOYED = "Callback Button Deployed"
    CALLBACK_BUTTON_REMOVED = "Callback Button Removed"
    CHAT_MESSAGE = "Chat Message"
    COMMAND_SHELL_SESSION_STARTED = "Command Shell Session Started"
    CONFERENCE_MEMBER_ADDED = "Conference Member Added"
    CONFERENCE_MEMBER_DEPARTED = "Conference Member Departed"
    CONFERENCE_MEMBER_STATE_CHANGED = "Conference Member State Changed"
    CONFERENCE_OWNER_CHANGED = "Conference Owner Changed"
    CREDENTIAL_INJECTION_ATTEMPT_FAILED = "Credential Injection Attempt Failed"
    CREDENTIAL_INJECTION_ATTEMPT = "Credential Injection Attempt"
    CUSTOMER_EXIT_SURVEY = "Customer Exit Survey"
    DIRECTORY_CREATED = "Directory Created"
    EXTERNAL_KEY = "External Key"
    FILE_DELETED = "File Deleted"
    FILE_DOWNLOAD_FAILED = "File Download Failed"
    FILE_DOWNLOAD = "File Download"
    FILE_MOVED = "File Moved"
    FILE_UPLOAD_FAILED = "File Upload Failed"
    FILE_UPLOAD = "File Upload"
    FILES_SHARED = "Files Shared"
    JUMP_ITEM_AUTHORIZATION_REQUEST_UTILIZED = "Jump Item Authorization Request Utilized"
    JUMP_ITEM_AUTHORIZATION_REQUEST = "Jump Item Authorization Request"
    LEGAL_AGREEMENT_RESPONSE = "Legal Agreement Response"
    PINNED_SESSION_MOVED_AWAY_FROM_QUEUE = "Pinned Session Moved Away from Queue"
    PINNED_SESSION_MOVED_TO_QUEUE = "Pinned Session Moved to Queue"
    PINNED_SESSION_PASSWORD_MODIFIED = "Pinned Session Password Modified"  # noqa: S105
    REGISTRY_EXPORTED = "Registry Exported"
    REGISTRY_IMPORTED = "Registry Imported"
    REGISTRY_KEY_ADDED = "Registry Key Added"
    REGISTRY_KEY_DELETED = "Registry Key Deleted"
    REGISTRY_KEY_RENAMED = "Registry Key Renamed"
    REGISTRY_VALUE_ADDED = "Registry Value Added"
    REGISTRY_VALUE_DELETED = "Registry Value Deleted"
    REGISTRY_VALUE_MODIFIED = "Registry Value Modified"
    REGISTRY_VALUE_RENAMED = "Registry Value Renamed"
    REPRESENTATIVE_EXIT_SURVEY = "Representative Exit Survey"
    REPRESENTATIVE_MONITORING_STARTED = "Representative Monitoring Started"
    REPRESENTATIVE_MONITORING_STOPPED = "Representative Monitoring Stopped"
    SCREEN_RECORDING = "Screen Recording"
    SCREENSHOT_CAPTURED = "Screenshot Captured"
    SERVICE_ACCESS_ALLOWED = "Service Access Allowed"
    SESSION_ASSIGNED = "Session Assigned"
    SESSION_ASSIGNMENT_RESPONSE = "Session Assignment Response"
    SESSION_END = "Session End"
    SESSION_FOREGROUND_WINDOW_CHANGED = "Session Foreground Window Changed"
    SESSION_NOTE_ADDED = "Session Note Added"
    SESSION_PINNED_TO_QUEUE = "Session Pinned to Queue"
    SESSION_START = "Session Start"
    SESSION_TRANSFERRED_AWAY_FROM_QUEUE = "Session Transferred Away from Queue"
    SESSION_TRANSFERRED_TO_QUEUE = "Session Transferred to Queue"
    SESSION_UNPINNED_FROM_QUEUE = "Session Unpinned from Queue"
    SHOW_MY_SCREEN_RECORDING = "Show My Screen Recording"
    SYSTEM_INFORMATION_RETRIEVED = "System Information Retrieved"


KNOWN_EVENT_TYPES: frozenset[str] = frozenset(e.value for e in EventType)

#: Event types that carry a file name and size.
FILE_EVENT_TYPES: frozenset[str] = frozenset(
    {
        EventType.FILE_UPLOAD,
        EventType.FILE_UPLOAD_FAILED,
        EventType.FILE_DOWNLOAD,
        EventType.FILE_DOWNLOAD_FAILED,
        EventType.FILE_DELETED,
        EventType.FILE_MOVED,
        EventType.FILES_SHARED,
        EventType.DIRECTORY_CREATED,
    }
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A network address as reported: ``ip``, ``ip:port`` or ``[ipv6]:port``."""

    ip: str
    port: int | None = None

    def __str__(self) -> str:
        if self.port is None:
            return self.ip
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{host}:{self.port}"


@dataclass(slots=True)
class NamedRef:
    """An element with an optional numeric ``id`` and a text name (site, jumpoint, team)."""

    name: str
    id: str | None = None


@dataclass(slots=True)
class JumpGroup:
    """The Jump Group a Jump session came from (``type`` is ``shared`` or ``personal``)."""

    name: str
    id: str | None = None
    type: str | None = None


@dataclass(slots=True)
class CustomAttribute:
    """One ``session.custom.*`` field as reported."""

    code_name: str
    display_name: str
    value: str


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performed an event, or who it was for (``performed_by`` / ``destination``).

    ``type`` is ``system``, ``customer`` or ``representative`` in practice; ``gsnumber``
    matches :attr:`Customer.gsnumber` / :attr:`Representative.gsnumber`.
    """

    type: str
    name: str
    gsnumber: int | None = None


@dataclass(slots=True)
class PrimaryCustomer:
    """``<primary_customer gsnumber>name``."""

    name: str
    gsnumber: int | None = None


@dataclass(slots=True)
class PrimaryRep:
    """``<primary_rep gsnumber id>name``."""

    name: str
    gsnumber: int | None = None
    id: str | None = None


@dataclass(slots=True)
class Customer:
    """A customer in ``customer_list``; ``info`` holds the front-end survey fields."""

    gsnumber: int | None = None
    username: str | None = None
    public_ip: Endpoint | None = None
    private_ip: Endpoint | None = None
    hostname: str | None = None
    os: str | None = None
    primary: bool = False
    info: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Representative:
    """A representative in ``rep_list``."""

    gsnumber: int | None = None
    id: str | None = None
    username: str | None = None
    display_name: str | None = None
    public_display_name: str | None = None
    private_display_name: str | None = None
    public_ip: Endpoint | None = None
    private_ip: Endpoint | None = None
    hostname: str | None = None
    os: str | None = None
    session_owner: bool = False
    primary: bool = False
    invited: bool = False
    seconds_involved: int | None = None


@dataclass(slots=True)
class SystemInfoCategory:
    """One category of a ``System Information Retrieved`` event.

    ``columns`` maps field name to its label (``<description>``), in report order;
    ``rows`` holds one mapping of field name to value per ``<row>``.
    """

    name: str
    columns: dict[str, str] = field(default_factory=dict)
    rows: list[dict[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class SessionEvent:
    """One ``<event>`` of ``session_details``.

    ``body`` is the decoded text of chat messages and notes (``encoded_body`` wins
    over ``body`` when both are present, as it carries the characters XML cannot).
    ``data`` holds the ``<data><value name value/>`` pairs in order.
    """

    timestamp: datetime
    event_type: str
    performed_by: Actor | None = None
    destination: Actor | None = None
    body: str | None = None
    filename: str | None = None
    filesize: int | None = None
    data: dict[str, str] = field(default_factory=dict)
    system_information: list[SystemInfoCategory] | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        """Whether ``event_type`` is one of the documented :class:`EventType` values."""
        return self.event_type in KNOWN_EVENT_TYPES


@dataclass(slots=True)
class SurveyAnswer:
    """One ``<value name value/>`` of an exit survey (a question may repeat)."""

    name: str
    value: str


@dataclass(slots=True)
class ExitSurvey:
    """A customer or representative exit survey embedded in the session report."""

    gsnumber: int | None = None
    answers: list[SurveyAnswer] = field(default_factory=list)

    def answer(self, name: str) -> str | None:
        """The first answer to question ``name``, or ``None``."""
        for a in self.answers:
            if a.name == name:
                return a.value
        return None


@dataclass(slots=True)
class Recording:
    """Links to a recording (screen, Show My Screen or one command-shell instance)."""

    view_url: str | None = None
    download_url: str | None = None
    instance: int | None = None


@dataclass(slots=True)
class SupportSession:
    """One ``<session>`` of a SupportSession report."""

    lsid: str
    session_type: str = "support"
    lseq: int | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: timedelta | None = None
    public_site: NamedRef | None = None
    jumpoint: NamedRef | None = None
    jump_group: JumpGroup | None = None
    external_key: str | None = None
    custom_attributes: list[CustomAttribute] = field(default_factory=list)
    chat_view_url: str | None = None
    chat_download_url: str | None = None
    recording: Recording | None = None
    command_shell_recordings: list[Recording] = field(default_factory=list)
    file_transfer_count: int = 0
    file_move_count: int = 0
    file_delete_count: int = 0
    primary_customer: PrimaryCustomer | None = None
    primary_rep: PrimaryRep | None = None
    customers: list[Customer] = field(default_factory=list)
    representatives: list[Representative] = field(default_factory=list)
    teams: list[NamedRef] = field(default_factory=list)
    events: list[SessionEvent] = field(default_factory=list)
    customer_surveys: list[ExitSurvey] = field(default_factory=list)
    rep_surveys: list[ExitSurvey] = field(default_factory=list)
    #: Child elements this model does not know, by name (text, or XML if they nest).
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        """True once the appliance reports an end time: the report is complete."""
        return self.end_time is not None

    def custom(self, code_name: str) -> str | None:
        """The value of custom attribute ``code_name``, or ``None``."""
        for attr in self.custom_attributes:
            if attr.code_name == code_name:
                return attr.value
        return None

    def events_of(self, *event_types: str) -> list[SessionEvent]:
        """The events whose type is one of ``event_types``, in report order."""
        wanted = set(event_types)
        return [e for e in self.events if e.event_type in wanted]


@dataclass(slots=True)
class SessionSummary:
    """One ``<session_summary>`` of a SupportSessionListing report."""

    lsid: str
    has_recording: bool = False
    external_key: str | None = None


@dataclass(slots=True)
class SurveyQuestion:
    """A question of a SupportCustExitSurvey / SupportRepExitSurvey report."""

    id: str
    name: str
    label: str
    type: str | None = None
    report_header: str | None = None
    answers: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ExitSurveyRecord:
    """One ``<exit_survey>`` of a SupportCustExitSurvey / SupportRepExitSurvey report."""

    lsid: str
    timestamp: datetime | None = None
    submitted_by: str | None = None
    primary_rep: PrimaryRep | None = None
    primary_customer: PrimaryCustomer | None = None
    representatives: list[Representative] = field(default_factory=list)
    questions: list[SurveyQuestion] = field(default_factory=list)

    def answer(self, name: str) -> str | None:
        """The first answer to the question named ``name`` (e.g. ``rating``)."""
        for q in self.questions:
            if q.name == name and q.answers:
                return q.answers[0]
        return None


@dataclass(slots=True)
class TeamActivity:
    """One ``<team_activity>`` of a SupportTeam report."""

    id: str
    name: str
    events: list[SessionEvent] = field(default_factory=list)


def pickled_by_field_values(cls: type) -> None:
    """Pickle ``cls`` (a slots dataclass) as the class and the tuple of its field values:
    unpickling calls the class with them.

    A session holds about a hundred model objects, and is pickled to a render process
    (:mod:`rsbridge.engine.render_pool`) and its rendering back. A frozen slots dataclass
    pickles by ``__getstate__``, which calls :func:`dataclasses.fields` for every object:
    twice as slow as this. Calling the class (whose ``__init__`` sets each field) unpickles
    a session in 0.084 ms against 0.149 for a ``__setstate__`` that sets them one by one.

    Raises:
        TypeError: ``cls``'s ``__init__`` does not take every field, or it has a
            ``__post_init__`` (calling it again could change what was pickled).
    """
    fields = dataclasses.fields(cls)
    if any(not f.init for f in fields) or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} cannot be pickled by calling it with its fields")
    values = operator.attrgetter(*(f.name for f in fields))

    if len(fields) == 1:

        def reduce(self: Any) -> tuple[type, tuple[Any, ...]]:
            return cls, (values(self),)

    else:

        def reduce(self: Any) -> tuple[type, tuple[Any, ...]]:
            return cls, values(self)

    # setattr: the type checker refuses to replace methods of ``type``.
    setattr(cls, "__reduce__", reduce)  # noqa: B010


# Every model class of this module (all are slots dataclasses).
for _model in [v for v in list(globals().values()) if isinstance(v, type)]:
    if dataclasses.is_dataclass(_model):
        pickled_by_field_values(_model)


def to_jsonable(obj: Any) -> Any:
    """Turn a model object (or list of them) into JSON-compatible data.

    Datetimes become ISO 8601 strings, durations seconds, endpoints their string form.
    """
    return _jsonable(obj) if fastpaths.enabled() else _jsonable_checked(obj)


_AS_IS: frozenset[type] = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
"""Field names by dataclass, learnt on first sight: ``dataclasses.fields`` is slow."""


def _jsonable(obj: Any) -> Any:
    # Dispatch on the exact type (a session has ~800 values); anything unexpected,
    # subclasses included, takes the isinstance checks of _jsonable_checked.
    kind = type(obj)
    if kind in _AS_IS:
        return obj
    names = _FIELD_NAMES.get(kind)
    if names is not None:
        return {name: _jsonable(getattr(obj, name)) for name in names}
    if kind is list or kind is tuple:
        return [_jsonable(v) for v in obj]
    if kind is dict:
        return {str(k): v if type(v) is str else _jsonable(v) for k, v in obj.items()}
    if kind is datetime:
        return obj.isoformat()
    if kind is Endpoint:
        return str(obj)
    if kind is timedelta:
        return obj.total_seconds()
    if dataclasses.is_dataclass(obj) and not isinstance(
        obj, type | datetime | timedelta | Endpoint
    ):
        _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(obj))
        return _jsonable(obj)
    return _jsonable_checked(obj)


def _jsonable_checked(obj: Any) -> Any:
    """The general converter (the fast paths' fallback, and the old path)."""
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, timedelta):
        return obj.total_seconds()
    if isinstance(obj, Endpoint):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable_checked(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [_jsonable_checked(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _jsonable_checked(v) for k, v in obj.items()}
    return obj
