"""Tests for the session custom attribute limits and encoding."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsbridge.appliance.custom_fields import (
    MAX_FIELDS,
    MAX_TOTAL_BYTES,
    MAX_VALUE_CHARS,
    custom_field_params,
)
from rsbridge.errors import ClientScriptError


def test_external_key_comes_first_then_attributes_in_order() -> None:
    params = custom_field_params({"snow_task_id": "abc", "a_1": "x y"}, external_key="INC0010001")
    assert params == [
        ("session.custom.external_key", "INC0010001"),
        ("session.custom.snow_task_id", "abc"),
        ("session.custom.a_1", "x y"),
    ]


def test_no_external_key_and_no_attributes_gives_nothing() -> None:
    assert custom_field_params({}) == []


def test_empty_values_are_kept_because_they_clear_the_attribute() -> None:
    assert custom_field_params({"note": ""}, external_key="") == [
        ("session.custom.external_key", ""),
        ("session.custom.note", ""),
    ]


@pytest.mark.parametrize("code_name", ["", "has space", "session.custom.x", "a-b", "naïve", "x/y"])
def test_malformed_code_names_are_refused(code_name: str) -> None:
    with pytest.raises(ClientScriptError, match="code name"):
        custom_field_params({code_name: "v"})


@pytest.mark.parametrize("code_name", ["external_key", "External_Key"])
def test_external_key_inside_attributes_is_refused(code_name: str) -> None:
    with pytest.raises(ClientScriptError, match=r"external_key=\.\.\."):
        custom_field_params({code_name: "1234"})


def test_value_at_the_character_limit_passes() -> None:
    value = "é" * MAX_VALUE_CHARS  # characters, not bytes, are what this limit counts
    assert custom_field_params({"notes": value}) == [("session.custom.notes", value)]


def test_value_over_the_character_limit_names_field_limit_and_size() -> None:
    with pytest.raises(ClientScriptError) as caught:
        custom_field_params({"notes": "Z" * (MAX_VALUE_CHARS + 1)})
    message = caught.value.message
    assert "session.custom.notes" in message
    assert "1,024" in message
    assert "1,025" in message
    assert "ZZZZZZZZZZ" not in message


def test_external_key_over_the_character_limit_is_named() -> None:
    custom_field_params({}, external_key="k" * MAX_VALUE_CHARS)
    with pytest.raises(ClientScriptError, match=r"session\.custom\.external_key"):
        custom_field_params({}, external_key="k" * (MAX_VALUE_CHARS + 1))


def test_total_at_the_byte_limit_passes() -> None:
    # 3 x 1,024 euro signs (3 bytes each) + 1,024 ASCII characters = 10,240 bytes.
    attributes = {f"f{i}": "€" * MAX_VALUE_CHARS for i in range(3)}
    params = custom_field_params(attributes, external_key="k" * MAX_VALUE_CHARS)
    assert sum(len(value.encode()) for _, value in params) == MAX_TOTAL_BYTES


def test_total_one_byte_over_the_limit_names_the_limit_and_size() -> None:
    attributes = {f"f{i}": "a" * MAX_VALUE_CHARS for i in range(10)}
    custom_field_params(attributes)
    with pytest.raises(ClientScriptError) as caught:
        custom_field_params(attributes, external_key="x")
    message = caught.value.message
    assert "external key included" in message
    assert "10,240" in message
    assert "10,241" in message
    assert "aaaaaaaaaa" not in message


def test_thirty_fields_pass_and_the_external_key_does_not_count() -> None:
    attributes = {f"f{i}": "v" for i in range(MAX_FIELDS)}
    assert len(custom_field_params(attributes, external_key="k")) == MAX_FIELDS + 1


def test_thirty_one_fields_are_refused() -> None:
    attributes = {f"f{i}": "v" for i in range(MAX_FIELDS + 1)}
    with pytest.raises(ClientScriptError, match=r"31 custom fields given; .* at most 30"):
        custom_field_params(attributes)


def test_lone_surrogate_is_refused_with_the_field_name() -> None:
    with pytest.raises(ClientScriptError, match=r"session\.custom\.notes"):
        custom_field_params({"notes": "bad \ud800"})


def test_long_malformed_code_name_is_not_echoed_whole() -> None:
    with pytest.raises(ClientScriptError) as caught:
        custom_field_params({"-" * 5000: "v"})
    assert "5,000 characters" in caught.value.message
    assert "-" * 100 not in caught.value.message


code_names = st.from_regex(r"[A-Za-z0-9_]{1,30}", fullmatch=True).filter(
    lambda name: name.lower() != "external_key"
)
# At most 30 values of at most 80 characters (4 UTF-8 bytes at most each) stay under
# the 10,240-byte total, so every generated mapping is valid.
values = st.text(max_size=80)


@given(
    attributes=st.dictionaries(code_names, values, max_size=MAX_FIELDS),
    external_key=st.none() | values,
)
def test_valid_attributes_survive_a_url_round_trip(
    attributes: dict[str, str], external_key: str | None
) -> None:
    params = custom_field_params(attributes, external_key=external_key)
    decoded = parse_qsl(urlencode(params), keep_blank_values=True, strict_parsing=True)
    expected = ([] if external_key is None else [("external_key", external_key)]) + list(
        attributes.items()
    )
    assert [(name.removeprefix("session.custom."), value) for name, value in decoded] == expected
