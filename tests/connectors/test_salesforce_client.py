"""The Salesforce client's pure pieces: SOQL literals, error arrays, external ids in paths.

The client's calls are tested against the simulated org (tests/sim_salesforce and the
connector tests); these are the parts whose mistakes would let session data change a
query or a URL.
"""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsbridge.connectors.salesforce.client import (
    SalesforceError,
    _path_value,
    error_array,
    soql_like_prefix,
    soql_quote,
)


def _unquote(literal: str) -> str:
    """Read a SOQL string literal back the way Salesforce does (the documented escapes)."""
    assert literal[0] == literal[-1] == "'"
    out, i, body = [], 0, literal[1:-1]
    escapes = {
        "n": "\n",
        "r": "\r",
        "t": "\t",
        "b": "\b",
        "f": "\f",
        '"': '"',
        "'": "'",
        "\\": "\\",
    }
    while i < len(body):
        char = body[i]
        if char == "\\":
            out.append(escapes[body[i + 1]])
            i += 2
            continue
        assert char != "'", f"an unescaped quote ends the literal early: {literal!r}"
        out.append(char)
        i += 1
    return "".join(out)


@given(st.text())
def test_every_value_reads_back_as_one_literal(value: str) -> None:
    assert _unquote(soql_quote(value)) == value


def test_a_value_cannot_add_a_condition() -> None:
    literal = soql_quote("00001026' OR CaseNumber != '")
    assert literal == "'00001026\\' OR CaseNumber != \\''"
    assert _unquote(literal) == "00001026' OR CaseNumber != '"


@given(st.text(min_size=1))
def test_an_external_id_stays_one_path_segment(value: str) -> None:
    encoded = _path_value(value)
    assert not set(encoded) & set("/?#.")
    assert unquote(encoded) == value


def test_error_arrays_name_code_message_and_fields() -> None:
    body = [
        {
            "message": "Required fields are missing: [Subject]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["Subject"],
        },
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"},
    ]
    first, second = error_array(body)
    assert first == SalesforceError(
        "REQUIRED_FIELD_MISSING", "Required fields are missing: [Subject]", ("Subject",)
    )
    assert str(first) == (
        "REQUIRED_FIELD_MISSING: Required fields are missing: [Subject] (fields: Subject)"
    )
    assert second.code == "INVALID_SESSION_ID" and second.fields == ()


@pytest.mark.parametrize("body", [None, "text", [], [1, 2], {"unrelated": True}])
def test_what_is_not_an_error_array_gives_no_errors(body: object) -> None:
    assert error_array(body) == []


def test_a_like_prefix_matches_its_wildcards_literally() -> None:
    # In the literal, \_ and \% stand for the characters: escaped once, after quoting.
    assert soql_like_prefix("a_b%c@") == "'a\\_b\\%c@%'"
    assert soql_like_prefix("o'hara@") == "'o\\'hara@%'"
    assert soql_like_prefix("back\\slash@") == "'back\\\\slash@%'"
