"""Tests for console URLs, BRCS files and session-start URLs."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsbridge.appliance.scripting import (
    ClientScriptCommand,
    DisplaySize,
    GenerateSessionKey,
    IssueQueue,
    JumpMethod,
    PushAndStartLocal,
    PushAndStartRemote,
    RdpQuality,
    RepresentativeQueue,
    SessionKeyQueue,
    ShellProtocol,
    StartJumpItemSession,
    StartRdpSession,
    StartShellJumpSession,
    StartVncSession,
    StartVproSession,
    Terminal,
    brcs_extension,
    brcs_file,
    console_url,
    start_session_url,
)
from rsbridge.errors import ClientScriptError

SITE = "support.example.com"
REP = [("type", "rep"), ("operation", "generate")]


def split(url: str) -> tuple[str, list[tuple[str, str]]]:
    """The URL without its query, and the query decoded back into ordered pairs."""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return base, parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)


def test_documented_vpro_example_is_reproduced_byte_for_byte() -> None:
    command = StartVproSession(
        target="ABCDEF02", jumpoint="Network01", custom_fields={"custom_field1": "Custom Value"}
    )
    assert console_url(SITE, command) == (
        "https://support.example.com/api/client_script?type=rep&operation=generate"
        "&action=start_vpro_session&target=ABCDEF02&jumpoint=Network01"
        "&session.custom.custom_field1=Custom%20Value"
    )


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        pytest.param(
            GenerateSessionKey(
                public_portal_hostname="help.example.com",
                external_key="INC0010001",
                custom_fields={"snow_task_id": "9d3f"},
            ),
            [
                ("action", "generate_session_key"),
                ("public_portal_hostname", "help.example.com"),
                ("session.custom.external_key", "INC0010001"),
                ("session.custom.snow_task_id", "9d3f"),
            ],
            id="generate_session_key",
        ),
        pytest.param(
            GenerateSessionKey(), [("action", "generate_session_key")], id="generate_bare"
        ),
        pytest.param(
            PushAndStartLocal(hostname="pc-042.corp.example.com"),
            [("action", "push_and_start_local"), ("hostname", "pc-042.corp.example.com")],
            id="push_and_start_local",
        ),
        pytest.param(
            PushAndStartRemote(target="10.0.0.5", jumpoint="Branch Office"),
            [
                ("action", "push_and_start_remote"),
                ("target", "10.0.0.5"),
                ("jumpoint", "Branch Office"),
            ],
            id="push_and_start_remote",
        ),
        pytest.param(
            StartJumpItemSession(
                search_string="ABCDEF02",
                client_tag="finance",
                method=JumpMethod.PINNED,
                credential_id=17,
                external_key="CHG0030002",
            ),
            [
                ("action", "start_jump_item_session"),
                ("search_string", "ABCDEF02"),
                ("client.tag", "finance"),
                ("jump.method", "pinned"),
                ("credential_id", "17"),
                ("session.custom.external_key", "CHG0030002"),
            ],
            id="start_jump_item_session",
        ),
        pytest.param(
            StartRdpSession(
                target="srv01",
                jumpoint="DC",
                username="CORP\\admin",
                display_size="1920x1080",
                quality=RdpQuality.PERFORMANCE_QUALITY,
                console=True,
            ),
            [
                ("action", "start_rdp_session"),
                ("target", "srv01"),
                ("jumpoint", "DC"),
                ("username", "CORP\\admin"),
                ("display_size", "1920x1080"),
                ("quality", "performance_quality"),
                ("console", "yes"),
            ],
            id="start_rdp_session",
        ),
        pytest.param(
            StartRdpSession(target="srv01", display_size=DisplaySize.ALL_DISPLAYS, console=False),
            [
                ("action", "start_rdp_session"),
                ("target", "srv01"),
                ("display_size", "all_displays"),
                ("console", "no"),
            ],
            id="start_rdp_session_named_size",
        ),
        pytest.param(
            StartVncSession(target="kiosk-7", jumpoint="Stores", port=5901),
            [
                ("action", "start_vnc_session"),
                ("target", "kiosk-7"),
                ("jumpoint", "Stores"),
                ("port", "5901"),
            ],
            id="start_vnc_session",
        ),
        pytest.param(
            StartShellJumpSession(
                target="router1",
                jumpoint="Core",
                username="netops",
                protocol=ShellProtocol.TELNET,
                port=23,
                terminal=Terminal.VT100,
            ),
            [
                ("action", "start_shell_jump_session"),
                ("target", "router1"),
                ("jumpoint", "Core"),
                ("username", "netops"),
                ("protocol", "telnet"),
                ("port", "23"),
                ("terminal", "vt100"),
            ],
            id="start_shell_jump_session",
        ),
        pytest.param(
            StartVproSession(target="ws-9.corp.example.com", jumpoint="vPro"),
            [
                ("action", "start_vpro_session"),
                ("target", "ws-9.corp.example.com"),
                ("jumpoint", "vPro"),
            ],
            id="start_vpro_session",
        ),
    ],
)
def test_console_url_for_each_command(
    command: ClientScriptCommand, expected: list[tuple[str, str]]
) -> None:
    base, pairs = split(console_url(SITE, command))
    assert base == "https://support.example.com/api/client_script"
    assert pairs == REP + expected


def test_web_console_runs_start_jump_item_session() -> None:
    url = console_url(SITE, StartJumpItemSession(search_string="ABCDEF02"), console="web")
    assert url == (
        "https://support.example.com/api/client_script?type=web_console&operation=execute"
        "&action=start_jump_item_session&search_string=ABCDEF02"
    )


@pytest.mark.parametrize(
    "command",
    [GenerateSessionKey(), StartVncSession(target="kiosk-7"), PushAndStartLocal(hostname="pc")],
)
def test_web_console_refuses_every_other_command(command: ClientScriptCommand) -> None:
    with pytest.raises(
        ClientScriptError, match=f"only runs start_jump_item_session.*{command.action}"
    ):
        console_url(SITE, command, console="web")


def test_unknown_console_is_refused() -> None:
    with pytest.raises(ClientScriptError, match="'rep' or 'web'"):
        console_url(SITE, GenerateSessionKey(), console="desktop")  # type: ignore[arg-type]


def test_values_are_percent_encoded_per_rfc3986() -> None:
    url = console_url(SITE, PushAndStartRemote(target="a b+c&d=e/f?é~_.-"))
    assert url.endswith("&target=a%20b%2Bc%26d%3De%2Ff%3F%C3%A9~_.-")


@pytest.mark.parametrize("site", ["support.example.com:8443", "10.1.2.3", "[2001:db8::1]:443"])
def test_site_may_carry_a_port_or_be_an_address(site: str) -> None:
    assert console_url(site, GenerateSessionKey()).startswith(f"https://{site}/api/client_script?")


@pytest.mark.parametrize(
    ("site", "complaint"),
    [
        ("https://support.example.com", "scheme"),
        ("support.example.com/login", "not a host name"),
        ("support.example.com?x=1", "not a host name"),
        ("rep@support.example.com", "not a host name"),
        ("", "not a host name"),
        ("support.example.com:70000", "port"),
    ],
)
def test_site_with_scheme_path_or_bad_port_is_refused(site: str, complaint: str) -> None:
    with pytest.raises(ClientScriptError, match=complaint):
        console_url(site, GenerateSessionKey())


LENGTH_LIMITS: list[tuple[type[ClientScriptCommand], str, str, int]] = [
    (GenerateSessionKey, "public_portal_hostname", "public_portal_hostname", 255),
    (PushAndStartLocal, "hostname", "hostname", 255),
    (StartJumpItemSession, "client_comments", "client.comments", 255),
    (StartJumpItemSession, "client_hostname", "client.hostname", 255),
    (StartJumpItemSession, "client_private_ip", "client.private_ip", 255),
    (StartJumpItemSession, "client_public_ip", "client.public_ip", 255),
    (StartJumpItemSession, "client_tag", "client.tag", 255),
]


@pytest.mark.parametrize(("cls", "attribute", "param", "limit"), LENGTH_LIMITS)
def test_length_limits_at_the_boundary(
    cls: type[ClientScriptCommand], attribute: str, param: str, limit: int
) -> None:
    at_limit: dict[str, Any] = {attribute: "h" * limit}
    assert (param, "h" * limit) in cls(**at_limit).params()
    over: dict[str, Any] = {attribute: "h" * (limit + 1)}
    with pytest.raises(ClientScriptError) as caught:
        cls(**over)
    assert param in caught.value.message
    assert f"at most {limit}" in caught.value.message
    assert f"{limit + 1}" in caught.value.message


def test_custom_field_limits_apply_to_commands() -> None:
    StartVncSession(target="t", custom_fields={"notes": "n" * 1024})
    with pytest.raises(ClientScriptError, match=r"session\.custom\.notes"):
        StartVncSession(target="t", custom_fields={"notes": "n" * 1025})
    with pytest.raises(ClientScriptError, match=r"external_key=\.\.\."):
        GenerateSessionKey(custom_fields={"external_key": "1"})


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (PushAndStartLocal, {"hostname": ""}, "hostname"),
        (PushAndStartRemote, {"target": ""}, "target"),
        (StartRdpSession, {"target": ""}, "target"),
        (StartVncSession, {"target": ""}, "target"),
        (StartShellJumpSession, {"target": ""}, "target"),
        (StartVproSession, {"target": "ws", "jumpoint": ""}, "jumpoint"),
    ],
)
def test_required_fields_must_not_be_empty(
    cls: type[ClientScriptCommand], kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ClientScriptError, match=f"{field} is required"):
        cls(**kwargs)


def test_jump_item_search_needs_search_string_or_a_client_field() -> None:
    with pytest.raises(ClientScriptError, match=r"search_string or at least one of client\."):
        StartJumpItemSession(method=JumpMethod.RDP)
    command = StartJumpItemSession(client_hostname="pc-042")
    assert command.params() == [
        ("action", "start_jump_item_session"),
        ("client.hostname", "pc-042"),
    ]


def test_option_strings_from_configuration_become_enums_or_are_refused() -> None:
    command = StartShellJumpSession(target="t", protocol="ssh")  # type: ignore[arg-type]
    assert command.protocol is ShellProtocol.SSH
    with pytest.raises(ClientScriptError, match=r"jump\.method is 'ssh'; use one of: push, "):
        StartJumpItemSession(search_string="x", method="ssh")  # type: ignore[arg-type]
    with pytest.raises(ClientScriptError, match="quality"):
        StartRdpSession(target="t", quality="best")  # type: ignore[arg-type]
    with pytest.raises(ClientScriptError, match="terminal"):
        StartShellJumpSession(target="t", terminal="ansi")  # type: ignore[arg-type]


@pytest.mark.parametrize("size", ["primary_display", "800x600", "0x600", "800X600", "big"])
def test_display_size_forms(size: str) -> None:
    if size in {"primary_display", "800x600"}:
        assert ("display_size", size) in StartRdpSession(target="t", display_size=size).params()
    else:
        with pytest.raises(ClientScriptError, match="display_size"):
            StartRdpSession(target="t", display_size=size)


@pytest.mark.parametrize("port", [0, 65536])
def test_ports_out_of_range_are_refused(port: int) -> None:
    with pytest.raises(ClientScriptError, match="port"):
        StartVncSession(target="t", port=port)


def test_brcs_file_text() -> None:
    text = brcs_file(
        [
            StartJumpItemSession(search_string="ABCDEF 02", method=JumpMethod.PUSH),
            GenerateSessionKey(custom_fields={"note": "Ä&B"}),
        ]
    )
    assert text == (
        "BRCS1.0\n"
        "action=start_jump_item_session&search_string=ABCDEF%2002&jump.method=push\n"
        "action=generate_session_key&session.custom.note=%C3%84%26B"
    )


def test_brcs_file_holds_ten_commands_at_most() -> None:
    commands = [StartVncSession(target=f"host{i}") for i in range(11)]
    assert brcs_file(commands[:10]).count("\n") == 10
    with pytest.raises(ClientScriptError, match="1 to 10 commands; 11 given"):
        brcs_file(commands)


def test_brcs_file_needs_a_command() -> None:
    with pytest.raises(ClientScriptError, match="0 given"):
        brcs_file([])


def test_brcs_extension() -> None:
    assert brcs_extension("example") == "brcs-example"
    with pytest.raises(ClientScriptError, match="file name"):
        brcs_extension("../evil")


def test_documented_start_session_example() -> None:
    url = start_session_url(
        SITE,
        IssueQueue(issue_id=1),
        customer_name="John Doe",
        customer_company="Company Name",
        customer_company_code="1234",
        customer_details="I need support",
        external_key="1234",
    )
    base, pairs = split(url)
    assert base == "https://support.example.com/api/start_session"
    assert pairs == [
        ("issue_menu", "1"),
        ("id", "1"),
        ("customer.name", "John Doe"),
        ("customer.company", "Company Name"),
        ("customer.company_code", "1234"),
        ("customer.details", "I need support"),
        ("session.custom.external_key", "1234"),
    ]


def test_start_session_by_representative_as_click_to_chat() -> None:
    url = start_session_url(
        SITE,
        RepresentativeQueue(rep_id=30, public_name="Admin"),
        click_to_chat=True,
        custom_fields={"snow_call_id": "NEW0001"},
    )
    assert url == (
        "https://support.example.com/api/start_session?id=30&name=Admin&c2cjs=1"
        "&session.custom.snow_call_id=NEW0001"
    )


def test_start_session_by_key_and_by_issue_code_name() -> None:
    assert start_session_url(SITE, SessionKeyQueue(short_key="1728331")) == (
        "https://support.example.com/api/start_session?short_key=1728331"
    )
    _, pairs = split(start_session_url(SITE, IssueQueue(code_name="printing")))
    assert pairs == [("issue_menu", "1"), ("codeName", "printing")]


@pytest.mark.parametrize("short_key", ["172833", "17283310", "172833a", "١٢٣٤٥٦٧"])
def test_short_key_must_be_seven_ascii_digits(short_key: str) -> None:
    with pytest.raises(ClientScriptError, match="short_key"):
        SessionKeyQueue(short_key=short_key)


def test_issue_queue_takes_code_name_or_id_never_both() -> None:
    with pytest.raises(ClientScriptError, match="exactly one of codeName"):
        IssueQueue(code_name="printing", issue_id=3)
    with pytest.raises(ClientScriptError, match="exactly one of codeName"):
        IssueQueue()


@pytest.mark.parametrize(
    ("keyword", "param"),
    [
        ("customer_name", "customer.name"),
        ("customer_company", "customer.company"),
        ("customer_company_code", "customer.company_code"),
    ],
)
def test_customer_fields_limit_at_the_boundary(keyword: str, param: str) -> None:
    queue = SessionKeyQueue(short_key="1728331")
    at_limit: dict[str, Any] = {keyword: "c" * 100}
    _, pairs = split(start_session_url(SITE, queue, **at_limit))
    assert (param, "c" * 100) in pairs
    over: dict[str, Any] = {keyword: "c" * 101}
    with pytest.raises(ClientScriptError) as caught:
        start_session_url(SITE, queue, **over)
    assert param in caught.value.message
    assert "at most 100" in caught.value.message


def test_start_session_checks_custom_fields() -> None:
    with pytest.raises(ClientScriptError, match=r"session\.custom\.external_key"):
        start_session_url(SITE, SessionKeyQueue(short_key="1728331"), external_key="k" * 1025)


code_names = st.from_regex(r"[a-z0-9_]{1,20}", fullmatch=True).filter(
    lambda name: name != "external_key"
)


@given(attributes=st.dictionaries(code_names, st.text(max_size=80), max_size=30))
def test_custom_attributes_round_trip_through_urls_and_brcs(attributes: dict[str, str]) -> None:
    command = StartJumpItemSession(search_string="x", custom_fields=attributes)
    expected = [(f"session.custom.{name}", value) for name, value in attributes.items()]
    _, pairs = split(console_url(SITE, command, console="web"))
    assert pairs[4:] == expected
    line = brcs_file([command]).split("\n")[1]
    assert parse_qsl(line, keep_blank_values=True, strict_parsing=True)[2:] == expected
