"""Hypothesis strategies for report model objects that the XML format can carry.

The constraints mirror the format: optional strings are ``None`` rather than ``""``
(an empty element reads back as unset), element names are XML names, and timestamps
are whole seconds after 1970 (``timestamp="0"`` means unset).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from rsbridge.appliance import report_model as m

# Any text XML 1.0 can carry (no C0 controls except tab/newline/CR, no surrogates).
xml_text = st.text(
    alphabet=st.characters(
        codec="utf-8",  # no surrogates
        exclude_characters="\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f"
        "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\ufffe\uffff",
    ),
    max_size=30,
)
some_text = xml_text.filter(bool)
maybe_text = st.none() | some_text
# Fields where the literal "Unknown" means "not collected".
maybe_known = st.none() | some_text.filter(lambda t: t != "Unknown")
# Chat bodies may hold anything, even characters XML cannot (they travel as encoded_body).
body_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
xml_name = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
small_int = st.integers(min_value=0, max_value=2**31 - 1)
gsnumber = st.none() | small_int
when = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
endpoint = st.none() | st.builds(
    m.Endpoint, ip=ipv4 | ipv6, port=st.none() | st.integers(min_value=1, max_value=65535)
)

actor = st.builds(
    m.Actor,
    type=st.sampled_from(["system", "customer", "representative"]),
    name=xml_text,
    gsnumber=gsnumber,
)
system_info = st.lists(
    st.builds(
        m.SystemInfoCategory,
        name=xml_text,
        columns=st.dictionaries(xml_text, xml_text, max_size=3),
        rows=st.lists(st.dictionaries(xml_text, xml_text, max_size=3), max_size=3),
    ),
    max_size=3,
)
_event_children = {
    "performed_by",
    "destination",
    "body",
    "encoded_body",
    "filename",
    "filesize",
    "system_information",
    "data",
}
event = st.builds(
    m.SessionEvent,
    timestamp=when,
    event_type=st.sampled_from(sorted(m.KNOWN_EVENT_TYPES)) | xml_text,
    performed_by=st.none() | actor,
    destination=st.none() | actor,
    body=st.none() | body_text,
    filename=maybe_text,
    filesize=st.none() | small_int,
    data=st.dictionaries(xml_text, xml_text, max_size=3),
    system_information=st.none() | system_info,
    extra=st.dictionaries(
        xml_name.filter(lambda n: n not in _event_children), xml_text, max_size=2
    ),
)
customer = st.builds(
    m.Customer,
    gsnumber=gsnumber,
    username=maybe_text,
    public_ip=endpoint,
    private_ip=endpoint,
    hostname=maybe_known,
    os=maybe_known,
    primary=st.booleans(),
    info=st.dictionaries(xml_name, xml_text, max_size=4),
)
representative = st.builds(
    m.Representative,
    gsnumber=gsnumber,
    id=st.none() | small_int.map(str),
    username=maybe_text,
    display_name=maybe_text,
    public_display_name=maybe_text,
    private_display_name=maybe_text,
    public_ip=endpoint,
    private_ip=endpoint,
    hostname=maybe_known,
    os=maybe_known,
    session_owner=st.booleans(),
    primary=st.booleans(),
    invited=st.booleans(),
    seconds_involved=st.none() | small_int,
)
survey = st.builds(
    m.ExitSurvey,
    gsnumber=gsnumber,
    answers=st.lists(st.builds(m.SurveyAnswer, name=xml_text, value=xml_text), max_size=4),
)
named = st.builds(m.NamedRef, name=xml_text, id=st.none() | small_int.map(str))
recording = st.builds(
    m.Recording, view_url=maybe_text, download_url=maybe_text, instance=st.none() | small_int
)
_session_children = {
    "session_type", "lseq", "start_time", "end_time", "duration", "public_site", "jumpoint",
    "jump_group", "external_key", "custom_attributes", "session_chat_view_url",
    "session_chat_download_url", "session_recording_view_url", "session_recording_download_url",
    "command_shell_recordings", "file_transfer_count", "file_move_count", "file_delete_count",
    "primary_customer", "primary_rep", "customer_list", "rep_list", "team_list",
    "session_details", "cust_survey_list", "rep_survey_list",
}  # fmt: skip
session = st.builds(
    m.SupportSession,
    lsid=st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    session_type=st.just("support"),
    lseq=st.none() | small_int,
    start_time=st.none() | when,
    end_time=st.none() | when,
    duration=st.none() | st.integers(0, 10**6).map(lambda s: timedelta(seconds=s)),
    public_site=st.none() | named,
    jumpoint=st.none() | named,
    jump_group=st.none()
    | st.builds(
        m.JumpGroup,
        name=xml_text,
        id=st.none() | small_int.map(str),
        type=st.none() | st.sampled_from(["shared", "personal"]),
    ),
    external_key=maybe_text,
    custom_attributes=st.lists(
        st.builds(m.CustomAttribute, code_name=xml_name, display_name=xml_text, value=xml_text),
        max_size=3,
    ),
    chat_view_url=maybe_text,
    chat_download_url=maybe_text,
    recording=st.none()
    | st.builds(m.Recording, view_url=maybe_text, download_url=maybe_text, instance=st.none()),
    command_shell_recordings=st.lists(recording, max_size=2),
    file_transfer_count=small_int,
    file_move_count=small_int,
    file_delete_count=small_int,
    primary_customer=st.none() | st.builds(m.PrimaryCustomer, name=some_text, gsnumber=gsnumber),
    primary_rep=st.none()
    | st.builds(m.PrimaryRep, name=some_text, gsnumber=gsnumber, id=st.none() | small_int.map(str)),
    customers=st.lists(customer, max_size=3),
    representatives=st.lists(representative, max_size=3),
    teams=st.lists(named, max_size=2),
    events=st.lists(event, max_size=6),
    customer_surveys=st.lists(survey, max_size=2),
    rep_surveys=st.lists(survey, max_size=2),
    extra=st.dictionaries(
        xml_name.filter(lambda n: n not in _session_children), xml_text, max_size=2
    ),
)
