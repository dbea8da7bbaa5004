"""Serialise report model objects to the appliance's Reporting API XML.

This is the simulator's half of the report format; :mod:`rsbridge.appliance.report_parser`
is the client's half, and the property tests check that one undoes the other.

Layout follows the real samples quoted in shared/reference/beyondtrust-api.md §3:
XML declaration, a blank line, a root element with a default namespace, tab
indentation, empty elements for unset values, the literal ``Unknown`` for network
details that were not collected, and ``encoded_body`` (base64) next to ``body`` when a
chat message holds characters XML 1.0 cannot carry. ``team_list`` is inferred (no
public sample shows it).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

from lxml import etree

from rsbridge.appliance.report_model import (
    Actor,
    CustomAttribute,
    Customer,
    Endpoint,
    ExitSurvey,
    ExitSurveyRecord,
    PrimaryCustomer,
    PrimaryRep,
    Representative,
    SessionEvent,
    SessionSummary,
    SupportSession,
    SystemInfoCategory,
    TeamActivity,
)

REPORTING_NS = "http://www.bomgar.com/namespaces/API/reporting"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n\n'
UNKNOWN = "Unknown"

# Characters XML 1.0 cannot carry, even as character references.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

_Element = etree._Element


def _sub(parent: _Element, tag: str, text: str | None = None, **attrs: str | None) -> _Element:
    el = etree.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    # The appliance writes unset values as <x></x>; only <value .../> is self-closing.
    if tag != "value":
        el.text = text or ""
    return el


def _ts(value: datetime) -> str:
    return str(int(value.timestamp()))


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _hms(value: timedelta) -> str:
    total = int(value.total_seconds())
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def _endpoint(value: Endpoint | None) -> str:
    return UNKNOWN if value is None else str(value)


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _gs(value: int | None) -> str | None:
    return None if value is None else str(value)


def _actor(parent: _Element, tag: str, actor: Actor | None) -> None:
    if actor is not None:
        _sub(parent, tag, actor.name, type=actor.type, gsnumber=_gs(actor.gsnumber))


def _primary_customer(parent: _Element, value: PrimaryCustomer | None) -> None:
    if value is None:
        _sub(parent, "primary_customer")
    else:
        _sub(parent, "primary_customer", value.name, gsnumber=_gs(value.gsnumber))


def _primary_rep(parent: _Element, value: PrimaryRep | None) -> None:
    if value is None:
        _sub(parent, "primary_rep")
    else:
        _sub(parent, "primary_rep", value.name, gsnumber=_gs(value.gsnumber), id=value.id)


def _custom_attributes(parent: _Element, attrs: list[CustomAttribute]) -> None:
    el = _sub(parent, "custom_attributes")
    for a in attrs:
        _sub(el, "custom_attribute", a.value, display_name=a.display_name, code_name=a.code_name)


def _customer(parent: _Element, c: Customer) -> None:
    el = _sub(parent, "customer", gsnumber=_gs(c.gsnumber))
    _sub(el, "username", c.username)
    _sub(el, "public_ip", _endpoint(c.public_ip))
    _sub(el, "private_ip", _endpoint(c.private_ip))
    _sub(el, "hostname", c.hostname or UNKNOWN)
    _sub(el, "os", c.os or UNKNOWN)
    _sub(el, "primary_cust", _flag(c.primary))
    info = _sub(el, "info")
    for name, value in c.info.items():
        _sub(info, name, value)


def _representative(parent: _Element, r: Representative) -> None:
    el = _sub(parent, "representative", gsnumber=_gs(r.gsnumber), id=r.id)
    _sub(el, "username", r.username)
    _sub(el, "display_name", r.display_name)
    _sub(el, "public_display_name", r.public_display_name)
    _sub(el, "private_display_name", r.private_display_name)
    _sub(el, "public_ip", _endpoint(r.public_ip))
    _sub(el, "private_ip", _endpoint(r.private_ip))
    _sub(el, "hostname", r.hostname or UNKNOWN)
    _sub(el, "os", r.os or UNKNOWN)
    _sub(el, "session_owner", _flag(r.session_owner))
    _sub(el, "primary_rep", _flag(r.primary))
    if r.invited:  # present only for invited reps
        _sub(el, "invited", "1")
    if r.seconds_involved is not None:
        _sub(el, "seconds_involved", str(r.seconds_involved))


def _rep_list(parent: _Element, reps: list[Representative]) -> None:
    el = _sub(parent, "rep_list")
    for r in reps:
        _representative(el, r)


def _system_information(parent: _Element, categories: list[SystemInfoCategory]) -> None:
    el = _sub(parent, "system_information")
    for cat in categories:
        cat_el = _sub(el, "category", name=cat.name)
        desc = _sub(cat_el, "description")
        for name, label in cat.columns.items():
            _sub(desc, "field", label, name=name)
        data = _sub(cat_el, "data")
        for row in cat.rows:
            row_el = _sub(data, "row")
            for name, value in row.items():
                _sub(row_el, "field", value, name=name)


def _body(parent: _Element, body: str) -> None:
    if _XML_INVALID.search(body):
        _sub(parent, "body", _XML_INVALID.sub("", body))
        _sub(parent, "encoded_body", base64.b64encode(body.encode("utf-8")).decode("ascii"))
    else:
        _sub(parent, "body", body)


def _event(parent: _Element, ev: SessionEvent) -> None:
    el = _sub(parent, "event", timestamp=_ts(ev.timestamp), event_type=ev.event_type)
    _actor(el, "performed_by", ev.performed_by)
    _actor(el, "destination", ev.destination)
    if ev.body is not None:
        _body(el, ev.body)
    if ev.filename is not None:
        _sub(el, "filename", ev.filename)
    if ev.filesize is not None:
        _sub(el, "filesize", str(ev.filesize))
    if ev.system_information is not None:
        _system_information(el, ev.system_information)
    if ev.data:
        data = _sub(el, "data")
        for name, value in ev.data.items():
            _sub(data, "value", name=name, value=value)
    for name, text in ev.extra.items():
        _sub(el, name, text)


def _surveys(parent: _Element, list_tag: str, item_tag: str, surveys: list[ExitSurvey]) -> None:
    el = _sub(parent, list_tag)
    for s in surveys:
        item = _sub(el, item_tag, gsnumber=_gs(s.gsnumber))
        for a in s.answers:
            _sub(item, "value", name=a.name, value=a.value)


def session_element(s: SupportSession) -> _Element:
    """Build the ``<session>`` element of one support session (no namespace)."""
    el = etree.Element("session", lsid=s.lsid)
    _sub(el, "session_type", s.session_type)
    _sub(el, "lseq", None if s.lseq is None else str(s.lseq))
    if s.start_time is None:
        _sub(el, "start_time")
    else:
        _sub(el, "start_time", _iso(s.start_time), timestamp=_ts(s.start_time))
    if s.end_time is None:
        _sub(el, "end_time")
    else:
        _sub(el, "end_time", _iso(s.end_time), timestamp=_ts(s.end_time))
    _sub(el, "duration", None if s.duration is None else _hms(s.duration))
    if s.public_site is not None:
        _sub(el, "public_site", s.public_site.name, id=s.public_site.id)
    if s.jumpoint is not None:
        _sub(el, "jumpoint", s.jumpoint.name, id=s.jumpoint.id)
    if s.jump_group is not None:
        _sub(el, "jump_group", s.jump_group.name, type=s.jump_group.type, id=s.jump_group.id)
    _sub(el, "external_key", s.external_key)
    _custom_attributes(el, s.custom_attributes)
    _sub(el, "session_chat_view_url", s.chat_view_url)
    _sub(el, "session_chat_download_url", s.chat_download_url)
    if s.recording is not None:
        _sub(el, "session_recording_view_url", s.recording.view_url)
        _sub(el, "session_recording_download_url", s.recording.download_url)
    if s.command_shell_recordings:
        shells = _sub(el, "command_shell_recordings")
        for rec in s.command_shell_recordings:
            item = _sub(
                shells,
                "command_shell_recording",
                instance=None if rec.instance is None else str(rec.instance),
            )
            _sub(item, "download_url", rec.download_url)
            _sub(item, "view_url", rec.view_url)
    _sub(el, "file_transfer_count", str(s.file_transfer_count))
    _sub(el, "file_move_count", str(s.file_move_count))
    _sub(el, "file_delete_count", str(s.file_delete_count))
    _primary_customer(el, s.primary_customer)
    _primary_rep(el, s.primary_rep)
    customers = _sub(el, "customer_list")
    for c in s.customers:
        _customer(customers, c)
    _rep_list(el, s.representatives)
    teams = _sub(el, "team_list")
    for t in s.teams:
        _sub(teams, "team", t.name, id=t.id)
    details = _sub(el, "session_details")
    for ev in s.events:
        _event(details, ev)
    _surveys(el, "cust_survey_list", "cust_exit_survey", s.customer_surveys)
    _surveys(el, "rep_survey_list", "rep_exit_survey", s.rep_surveys)
    for name, text in s.extra.items():
        _sub(el, name, text)
    return el


def _serialise(el: _Element, level: int) -> bytes:
    etree.indent(el, space="\t", level=level)
    return etree.tostring(el, encoding="utf-8")


def _open_root(tag: str, namespace: str) -> bytes:
    return f'<{tag} xmlns="{namespace}" xmlns:xsi="{XSI_NS}">\n'.encode()


def session_bytes(session: SupportSession) -> bytes:
    """One ``<session>`` element of a SupportSession report, as served."""
    return _serialise(session_element(session), 0) + b"\n"


def session_list_chunks(
    sessions: Iterable[SupportSession],
    *,
    namespace: str = REPORTING_NS,
    serialise: Callable[[SupportSession], bytes] = session_bytes,
) -> Iterator[bytes]:
    """Yield a SupportSession report in pieces, one session per chunk (for streaming);
    ``serialise`` gives each session's element."""
    yield XML_DECLARATION + _open_root("session_list", namespace)
    for s in sessions:
        yield serialise(s)
    yield b"</session_list>\n"


def session_list(sessions: Iterable[SupportSession], *, namespace: str = REPORTING_NS) -> bytes:
    """A whole SupportSession report."""
    return b"".join(session_list_chunks(sessions, namespace=namespace))


def _document(root: _Element) -> bytes:
    etree.indent(root, space="\t")
    return XML_DECLARATION + etree.tostring(root, encoding="utf-8") + b"\n"


def _root(tag: str, namespace: str) -> _Element:
    return etree.Element(f"{{{namespace}}}{tag}", nsmap={None: namespace})  # type: ignore[dict-item]  # stubs lack the default-namespace key


def session_summary_list(
    summaries: Iterable[SessionSummary], *, namespace: str = REPORTING_NS
) -> bytes:
    """A SupportSessionListing report."""
    root = _root("session_summary_list", namespace)
    for s in summaries:
        _sub(
            root,
            "session_summary",
            lsid=s.lsid,
            has_recording=_flag(s.has_recording),
            external_key=s.external_key,
        )
    return _document(_in_namespace(root, namespace))


def exit_survey_list(
    records: Iterable[ExitSurveyRecord], *, namespace: str = REPORTING_NS
) -> bytes:
    """A SupportCustExitSurvey / SupportRepExitSurvey report."""
    root = _root("exit_survey_list", namespace)
    for r in records:
        stamp = None if r.timestamp is None else _ts(r.timestamp)
        el = _sub(root, "exit_survey", lsid=r.lsid, timestamp=stamp)
        if r.submitted_by is not None:
            _sub(el, "submitted_by", type=r.submitted_by)
        _primary_rep(el, r.primary_rep)
        _primary_customer(el, r.primary_customer)
        _rep_list(el, r.representatives)
        questions = _sub(el, "question_list")
        for q in r.questions:
            q_el = _sub(questions, "question", id=q.id)
            _sub(q_el, "type", q.type)
            _sub(q_el, "label", q.label)
            _sub(q_el, "name", q.name)
            _sub(q_el, "report_header", q.report_header)
            answers = _sub(q_el, "answer_list")
            for a in q.answers:
                _sub(answers, "answer", a)
    return _document(_in_namespace(root, namespace))


def team_activity_list(teams: Iterable[TeamActivity], *, namespace: str = REPORTING_NS) -> bytes:
    """A SupportTeam report."""
    root = _root("team_activity_list", namespace)
    for t in teams:
        el = _sub(root, "team_activity", id=t.id, name=t.name)
        events = _sub(el, "events")
        for ev in t.events:
            _event(events, ev)
    return _document(_in_namespace(root, namespace))


def reporting_error(message: str, *, namespace: str = REPORTING_NS) -> bytes:
    """A root-level ``<error>`` answer of the Reporting API."""
    root = _root("error", namespace)
    root.text = message
    return _document(root)


def _in_namespace(root: _Element, namespace: str) -> _Element:
    """Move children built without a namespace into the default namespace of ``root``."""
    for el in root.iterdescendants():
        if isinstance(el.tag, str) and not el.tag.startswith("{"):
            el.tag = f"{{{namespace}}}{el.tag}"
    return root
