"""The streaming report parser: round trips, namespaces, and bad or hostile input."""

from __future__ import annotations

import base64
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsbridge.appliance import report_model as m
from rsbridge.appliance.report_parser import (
    DEFAULT_LIMITS,
    EXIT_SURVEYS,
    SESSION_LISTING,
    SUPPORT_SESSIONS,
    TEAM_ACTIVITY,
    DamagedItem,
    ReportKind,
    ReportLimits,
    ReportParser,
    build_session,
    iter_report,
    iter_sessions,
    parse_endpoint,
)
from rsbridge.appliance.xml import Element
from rsbridge.errors import (
    ApplianceCommandError,
    AppliancePermissionError,
    ReportError,
    ReportSecurityError,
    ReportSyntaxError,
    ReportTooLargeError,
)
from rsbridge.sim.appliance import report_xml
from tests import strategies

T0 = datetime(2024, 12, 3, 15, 26, 5, tzinfo=UTC)


def _session(lsid: str = "e9e99aeb9ad54fb381634498502c5a1b", **kw: object) -> m.SupportSession:
    base: dict[str, object] = {
        "lsid": lsid,
        "lseq": 8,
        "start_time": T0,
        "end_time": T0 + timedelta(seconds=902),
        "duration": timedelta(seconds=902),
        "public_site": m.NamedRef("Default", "1"),
        "external_key": "INC0010001",
        "primary_customer": m.PrimaryCustomer("John Doe", 22),
        "primary_rep": m.PrimaryRep("Admin", 21, "1"),
    }
    base.update(kw)
    return m.SupportSession(**base)  # type: ignore[arg-type]


def _chunks(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    i = 0
    for size in sizes:
        if i >= len(data):
            return
        yield data[i : i + size]
        i += size
    if i < len(data):
        yield data[i:]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    sessions=st.lists(strategies.session, min_size=0, max_size=3),
    sizes=st.lists(st.integers(min_value=1, max_value=4096), max_size=50),
    namespace=st.sampled_from(
        [
            report_xml.REPORTING_NS,
            "http://www.beyondtrust.com/sra/namespaces/API/reporting",
            "https://www.beyondtrust.com/namespaces/API/reporting",
        ]
    ),
)
def test_generated_sessions_survive_xml_round_trip(
    sessions: list[m.SupportSession], sizes: list[int], namespace: str
) -> None:
    xml = report_xml.session_list(sessions, namespace=namespace)
    assert list(iter_sessions(_chunks(xml, sizes))) == sessions


def test_real_sample_shape_is_read_field_by_field() -> None:
    # Hand-written in the layout of the reference's PRA/RS sample (not our writer).
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>

<session_list xmlns="http://www.bomgar.com/namespaces/API/reporting"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<session lsid="e9e99aeb9ad54fb381634498502c5a1b">
  <session_type>support</session_type>
  <lseq>8</lseq>
  <start_time timestamp="1733239565">2024-12-03T15:26:05+00:00</start_time>
  <end_time timestamp="1733240467">2024-12-03T15:41:07+00:00</end_time>
  <duration>00:15:02</duration>
  <public_site id="1">Default</public_site>
  <jump_group type="shared" id="1">Servers</jump_group>
  <external_key></external_key>
  <custom_attributes></custom_attributes>
  <session_chat_view_url>https://h/session_download?lsid=l%3Dx&amp;dl_action=chat&amp;view=1</session_chat_view_url>
  <file_transfer_count>2</file_transfer_count>
  <primary_customer gsnumber="22">John Doe</primary_customer>
  <primary_rep gsnumber="21" id="1">Admin</primary_rep>
  <customer_list>
    <customer gsnumber="22">
      <username>jdoe</username>
      <public_ip>4.231.237.19:61606</public_ip>
      <private_ip>10.0.0.4</private_ip>
      <hostname>WS01</hostname>
      <os>Windows 10 Enterprise</os>
      <info><name>John Doe</name><issue>Printing</issue></info>
    </customer>
  </customer_list>
  <rep_list>
    <representative gsnumber="21" id="1">
      <username>admin</username>
      <public_ip>[2a01:e34:ec57:b230:f188:56c5:7089:d987]:56722</public_ip>
      <private_ip>Unknown</private_ip>
      <os>Unknown</os>
      <session_owner>1</session_owner>
      <seconds_involved>901</seconds_involved>
    </representative>
  </rep_list>
  <session_details>
    <event timestamp="1733239565" event_type="Session Start"></event>
    <event timestamp="1733239565" event_type="Conference Owner Changed">
      <destination type="system" gsnumber="0">Pre-start Conference</destination>
      <data><value name="owner" value="Pre-start Conference" /></data>
    </event>
    <event timestamp="1733239600" event_type="Chat Message">
      <performed_by type="representative" gsnumber="21">Admin</performed_by>
      <body>bell</body>
      <encoded_body>YmVsbAc=</encoded_body>
    </event>
    <event timestamp="1733239700" event_type="File Download">
      <performed_by type="customer" gsnumber="22">John Doe</performed_by>
      <filename>C:\\log.txt</filename><filesize>1024</filesize>
    </event>
    <event timestamp="1733239800" event_type="Brand New Event">
      <gadget>x</gadget>
    </event>
  </session_details>
  <cust_survey_list><cust_exit_survey gsnumber="22"><value name="rating" value="5"/>
  </cust_exit_survey></cust_survey_list>
</session>
</session_list>
"""
    (s,) = iter_sessions(xml)
    assert s.start_time == datetime(2024, 12, 3, 15, 26, 5, tzinfo=UTC)
    assert s.duration == timedelta(minutes=15, seconds=2)
    assert s.ended
    assert s.external_key is None and s.custom_attributes == []
    assert s.jump_group == m.JumpGroup("Servers", "1", "shared")
    assert s.chat_view_url == "https://h/session_download?lsid=l%3Dx&dl_action=chat&view=1"
    assert s.customers[0].public_ip == m.Endpoint("4.231.237.19", 61606)
    assert s.customers[0].info == {"name": "John Doe", "issue": "Printing"}
    rep = s.representatives[0]
    assert rep.public_ip == m.Endpoint("2a01:e34:ec57:b230:f188:56c5:7089:d987", 56722)
    assert rep.private_ip is None and rep.os is None
    assert rep.session_owner and rep.seconds_involved == 901
    owner, chat, download, unknown = s.events[1:]
    assert owner.destination == m.Actor("system", "Pre-start Conference", 0)
    assert owner.data == {"owner": "Pre-start Conference"}
    assert chat.body == "bell\x07"  # encoded_body wins: it has what XML could not carry
    assert (download.filename, download.filesize) == ("C:\\log.txt", 1024)
    assert not unknown.known and unknown.extra == {"gadget": "x"}
    assert s.customer_surveys[0].answer("rating") == "5"


def test_endpoint_forms() -> None:
    assert parse_endpoint("Unknown") is None
    assert parse_endpoint("") is None
    assert parse_endpoint("10.0.0.4") == m.Endpoint("10.0.0.4")
    assert parse_endpoint("[::1]:80") == m.Endpoint("::1", 80)
    assert parse_endpoint("fe80::1") == m.Endpoint("fe80::1")
    assert str(m.Endpoint("::1", 80)) == "[::1]:80"


def test_in_progress_session_has_no_end_time() -> None:
    (s,) = iter_sessions(report_xml.session_list([_session(end_time=None, duration=None)]))
    assert s.end_time is None and not s.ended


def test_other_report_kinds_round_trip() -> None:
    summaries = [m.SessionSummary("a" * 32, True, "INC1"), m.SessionSummary("b" * 32)]
    assert list(iter_report(report_xml.session_summary_list(summaries), SESSION_LISTING)) == (
        summaries
    )
    records = [
        m.ExitSurveyRecord(
            lsid="c" * 32,
            timestamp=T0,
            submitted_by="customer",
            primary_rep=m.PrimaryRep("Admin", 21, "1"),
            primary_customer=m.PrimaryCustomer("John", 22),
            representatives=[m.Representative(gsnumber=21, id="1", username="admin")],
            questions=[m.SurveyQuestion("1", "rating", "How did we do?", "radio", "Rating", ["5"])],
        )
    ]
    parsed = list(iter_report(report_xml.exit_survey_list(records), EXIT_SURVEYS))
    assert parsed == records and parsed[0].answer("rating") == "5"
    teams = [m.TeamActivity("1", "Tier 1", [m.SessionEvent(T0, "Chat Message", body="hi")])]
    assert list(iter_report(report_xml.team_activity_list(teams), TEAM_ACTIVITY)) == teams


# --- bad input --------------------------------------------------------------------


def test_truncated_report_names_position_after_yielding_complete_sessions() -> None:
    xml = report_xml.session_list([_session("a" * 32), _session("b" * 32)])
    cut = xml[: xml.index(b'lsid="' + b"b" * 32) + 200]
    got: list[m.SupportSession] = []
    with pytest.raises(ReportSyntaxError) as info:
        got.extend(iter_sessions(cut))
    assert [s.lsid for s in got] == ["a" * 32]
    assert info.value.line is not None and info.value.line > 1
    assert f"line {info.value.line}" in str(info.value)


def test_malformed_xml_error_names_line_and_column() -> None:
    xml = b'<?xml version="1.0"?>\n<session_list>\n<session lsid="x">\n<lseq>1</lsq>\n'
    with pytest.raises(ReportSyntaxError) as info:
        list(iter_sessions(xml))
    assert info.value.line == 4
    assert "line 4, column" in str(info.value)


@pytest.mark.parametrize(
    "xml",
    [
        b"",
        b"not xml at all",
        b"<session_list><session lsid='x'>",
        b"\x00\x01\x02",
    ],
)
def test_garbage_is_a_syntax_error(xml: bytes) -> None:
    with pytest.raises(ReportSyntaxError):
        list(iter_sessions(xml))


def test_wrong_root_is_reported() -> None:
    with pytest.raises(ReportError, match="expected a <session_list> report, got <html>"):
        list(iter_sessions(b"<html><body>Login</body></html>"))


def test_appliance_error_instead_of_report() -> None:
    with pytest.raises(AppliancePermissionError):
        list(iter_sessions(report_xml.reporting_error("Permission denied: no reporting access")))
    nested = b'<session_list xmlns="x"><error>Invalid lsid</error></session_list>'
    with pytest.raises(ApplianceCommandError, match="Invalid lsid"):
        list(iter_sessions(nested))


def test_bad_numbers_and_encoded_body_are_clear_errors() -> None:
    with pytest.raises(ReportError, match="expected an integer"):
        list(
            iter_sessions(
                b"<session_list><session lsid='x'><lseq>8th</lseq></session></session_list>"
            )
        )
    bad = b"<session_list><session lsid='x'><session_details><event timestamp='1' event_type='Chat Message'><encoded_body>@@@</encoded_body></event></session_details></session></session_list>"  # noqa: E501
    with pytest.raises(ReportError, match="encoded_body"):
        list(iter_sessions(bad))


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<session_list><session lsid="x"><external_key>&lol9;</external_key></session></session_list>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!-- a comment first -->
<!DOCTYPE session_list [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<session_list><session lsid="x"><external_key>&xxe;</external_key></session></session_list>
"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_dtd_and_entities_are_refused(xml: bytes) -> None:
    with pytest.raises(ReportSecurityError, match="DTD"):
        list(iter_sessions(xml))
    # Also when the declaration arrives split across network chunks.
    with pytest.raises(ReportSecurityError):
        list(iter_sessions(_chunks(xml, [1] * len(xml))))


def test_entity_reference_without_dtd_is_not_expanded() -> None:
    xml = b"<session_list><session lsid='x'><external_key>&xxe;</external_key></session></session_list>"  # noqa: E501
    with pytest.raises(ReportSyntaxError, match="xxe"):
        list(iter_sessions(xml))


def _huge_session_report(body_bytes: int) -> Iterator[bytes]:
    yield b'<?xml version="1.0"?>\n<session_list><session lsid="x"><session_details>'
    yield b'<event timestamp="1" event_type="Chat Message"><body>'
    block = b"A" * (1024 * 1024)
    for _ in range(body_bytes // len(block)):
        yield block
    yield b"</body></event></session_details></session></session_list>"


def test_100mb_report_is_refused_without_holding_it() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ReportTooLargeError):
            list(iter_sessions(_huge_session_report(100 * 1024 * 1024)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 80 * 1024 * 1024


def test_item_and_document_limits_are_configurable() -> None:
    xml = report_xml.session_list([_session(str(i) * 32) for i in range(5)])
    with pytest.raises(ReportTooLargeError, match="report larger than the limit of 1000 bytes"):
        list(iter_sessions(xml, ReportLimits(max_bytes=1000)))
    with pytest.raises(ReportTooLargeError, match="one <session> is larger"):
        list(iter_sessions(_chunks(xml, [100] * 100), ReportLimits(max_item_bytes=300)))


def test_memory_stays_flat_as_sessions_are_streamed() -> None:
    one = report_xml.session_list(
        [
            _session(
                events=[
                    m.SessionEvent(T0, "Chat Message", body="x" * 200, data={"k": "v"})
                    for _ in range(200)
                ]
            )
        ]
    )
    head, _, tail = one.partition(b"<session ")
    session_bytes = b"<session " + tail[: tail.rindex(b"</session_list>")]

    def report(n: int) -> Iterator[bytes]:
        yield head
        for _ in range(n):
            yield session_bytes

        yield b"</session_list>"

    def peak(n: int) -> int:
        tracemalloc.start()
        try:
            count = sum(1 for _ in iter_sessions(report(n)))
            return tracemalloc.get_traced_memory()[1] if count == n else -1
        finally:
            tracemalloc.stop()

    small, large = peak(20), peak(400)
    assert small > 0 and large > 0
    assert large < small * 2  # 20x the sessions, not 20x the memory


def _with_events(lsid: str, n: int = 3) -> m.SupportSession:
    return _session(
        lsid,
        events=[
            m.SessionEvent(T0, "File Download", filename=f"f{i}.txt", filesize=100 + i)
            for i in range(n)
        ],
    )


def test_a_session_with_an_unreadable_value_fails_alone() -> None:
    sessions = [_with_events(f"{i:032x}") for i in range(12)]
    xml = report_xml.session_list(sessions)
    broken = sessions[1].lsid
    start = xml.index(f'lsid="{broken}"'.encode())
    at = xml.index(b"<filesize>101</filesize>", start)
    xml = xml[:at] + b"<filesize>12abc</filesize>" + xml[at + len(b"<filesize>101</filesize>") :]

    damaged: list[DamagedItem] = []
    got = list(iter_report(_chunks(xml, [700] * 400), SUPPORT_SESSIONS, on_damaged=damaged.append))
    assert got == [sessions[0], *sessions[2:]]  # the ten after it are delivered
    [item] = damaged
    assert (item.key, item.index) == (broken, 1)
    assert "expected an integer, got '12abc'" in item.error.message

    # Without on_damaged it fails the report, naming the session, after the one before it.
    before: list[m.SupportSession] = []
    with pytest.raises(ReportError, match="12abc") as caught:
        before.extend(iter_report(xml, SUPPORT_SESSIONS))  # one chunk holds them all
    assert before == sessions[:1] and caught.value.item == broken


def test_a_session_with_too_many_elements_is_refused_before_its_tree_is_built() -> None:
    # 2,000,000 empty elements (8 MB) in one session: as a libxml2 tree some 250 MB.
    elements = 2_000_000
    fed = 0

    def report() -> Iterator[bytes]:
        nonlocal fed
        head = b'<?xml version="1.0"?>\n<session_list><session lsid="big"><session_details>'
        block = b"<a/>" * 16_384  # 64 KiB
        for part in (head, *[block] * (elements // 16_384)):
            fed += len(part)
            yield part
        yield b"</session_details></session></session_list>"

    with pytest.raises(ReportTooLargeError, match="more than the limit of 250000 elements") as e:
        list(iter_sessions(report()))
    assert e.value.item == "big"
    # Refused within one piece of the limit: the tree never held much more than that.
    assert fed <= 4 * DEFAULT_LIMITS.max_item_elements + 2 * 65536
    with pytest.raises(ReportTooLargeError, match="limit of 1000 elements"):
        list(iter_sessions(report(), ReportLimits(max_item_elements=1000)))


def test_sessions_nobody_asked_for_are_skipped_unbuilt_and_counted() -> None:
    built: list[str] = []

    def build(el: Element) -> m.SupportSession:
        session = build_session(el)
        built.append(session.lsid)
        return session

    kind = ReportKind("session_list", "session", build, "lsid")
    sessions = [_with_events(f"{i:032x}", 1) for i in range(300)]
    wanted = {sessions[7].lsid, sessions[250].lsid, "not in the report"}
    parser = ReportParser(kind, wanted=wanted)
    got = [
        s for chunk in _chunks(report_xml.session_list(sessions), [4096] * 10_000)
        for s in parser.feed(chunk)
    ] + parser.close()  # fmt: skip
    assert got == [sessions[7], sessions[250]]
    assert built == [sessions[7].lsid, sessions[250].lsid]  # the others were never built
    assert (parser.items_seen, parser.items_skipped) == (300, 298)


def test_a_syntax_error_inside_a_session_names_that_session() -> None:
    xml = report_xml.session_list([_session("a" * 32), _session("b" * 32), _session("c" * 32)])
    xml = xml.replace(b"<lseq>8</lseq>", b"<lseq><<8</lseq>", 2).replace(
        b"<lseq><<8</lseq>", b"<lseq>8</lseq>", 1
    )
    got: list[m.SupportSession] = []
    with pytest.raises(ReportSyntaxError) as caught:
        got.extend(iter_sessions(_chunks(xml, [500] * 100)))
    assert [s.lsid for s in got] == ["a" * 32]
    assert caught.value.item == "b" * 32


def test_encoded_body_written_for_invalid_characters() -> None:
    xml = report_xml.session_list(
        [_session(events=[m.SessionEvent(T0, "Chat Message", body="ring\x07 \U0001f600")])]
    )
    assert base64.b64encode("ring\x07 \U0001f600".encode()) in xml
    assert b"<body>ring \xf0\x9f\x98\x80</body>" in xml


def test_parser_can_be_fed_by_hand() -> None:
    parser = ReportParser(SUPPORT_SESSIONS)
    xml = report_xml.session_list([_session("a" * 32), _session("b" * 32)])
    first = parser.feed(xml[: len(xml) // 2])
    rest = parser.feed(xml[len(xml) // 2 :]) + parser.close()
    assert [s.lsid for s in first + rest] == ["a" * 32, "b" * 32]


def test_sessions_before_damage_in_the_same_chunk_are_delivered() -> None:
    good = report_xml.session_list([_session("a" * 32)])
    damaged = good.replace(b"</session_list>", b"<session lsid='b'><lseq>1</oops>")
    got: list[m.SupportSession] = []
    with pytest.raises(ReportSyntaxError, match="after 1 complete <session>"):
        got.extend(iter_sessions([damaged]))  # one chunk holds both
    assert [s.lsid for s in got] == ["a" * 32]


def test_appliance_error_names_the_requested_report() -> None:
    kind, what = SUPPORT_SESSIONS, "report SupportSession"
    with pytest.raises(ApplianceCommandError, match=r"^report SupportSession: "):
        list(iter_report(report_xml.reporting_error("Invalid lsid"), kind, what=what))


@pytest.mark.parametrize(
    ("large", "unknown", "count"),
    [(False, False, 40), (False, True, 5), (True, False, 5)],
    ids=["normal", "unknown-events", "large"],
)
def test_simulator_sessions_survive_the_round_trip(large: bool, unknown: bool, count: int) -> None:
    from rsbridge.sim.appliance.scenarios import SessionGenerator

    generator = SessionGenerator(11, large=large, include_unknown_events=unknown)
    sessions = list(generator.sessions(count))
    xml = report_xml.session_list(sessions)
    assert list(iter_sessions(_chunks(xml, [1000, 7, 65536] * 200))) == sessions
    if unknown:
        assert any(not e.known for s in sessions for e in s.events)


def test_dtd_in_another_encoding_is_not_expanded() -> None:
    # libxml2 is made to read UTF-8 only, the bytes the prolog guard scanned.
    for codec in ("utf-16", "utf-16-be", "utf-32"):
        xml = f'<?xml version="1.0" encoding="{codec}"?>\n{BILLION_LAUGHS.decode()[22:]}'
        with pytest.raises(ReportError):
            list(iter_sessions(xml.encode(codec)))


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        (b"<start_time timestamp='99999999999999'>x</start_time>", "UNIX timestamp"),
        (b"<duration>99999999999:00:00</duration>", "duration"),
        (b"<duration>ab:cd</duration>", "duration"),
        (
            b"<session_details><event timestamp='1' event_type='Chat Message'>"
            b"<encoded_body>\xc3\xa9t\xc3\xa9</encoded_body></event></session_details>",
            "encoded_body",
        ),
    ],
)
def test_impossible_values_are_report_errors(fragment: bytes, message: str) -> None:
    xml = b"<session_list><session lsid='x'>" + fragment + b"</session></session_list>"
    with pytest.raises(ReportError, match=message):
        list(iter_sessions(xml))
