"""The Salesforce session objects: default API names within Salesforce's limits, and renames."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsbridge.connectors.salesforce.schema import (
    DEFAULT_OBJECTS,
    LABEL_MAX,
    LONG_TEXT_MAX,
    LONG_TEXT_MIN,
    NAME_MAX,
    NUMBER_PRECISION_MAX,
    OBJECTS_BY_LOGICAL,
    RENAME_SETTINGS,
    TEXT_MAX,
    Schema,
    custom_name_problem,
)
from rsbridge.errors import ConfigurationError

CUSTOM = [o for o in DEFAULT_OBJECTS if not o.standard]
CHILDREN = ("rep", "customer", "team", "event", "attribute", "recording", "survey")


def test_every_default_name_label_and_size_is_one_salesforce_accepts() -> None:
    for obj in DEFAULT_OBJECTS:
        if not obj.standard:
            assert custom_name_problem(obj.name) is None, obj.name
            assert len(obj.label) <= LABEL_MAX and len(obj.plural_label) <= LABEL_MAX
        for fld in obj.fields:
            assert custom_name_problem(fld.name) is None, fld.name
            assert len(fld.label) <= LABEL_MAX, fld.label
            if fld.type == "Text":
                assert fld.length is not None and 1 <= fld.length <= TEXT_MAX
            if fld.type == "LongTextArea":
                assert fld.length is not None and LONG_TEXT_MIN <= fld.length <= LONG_TEXT_MAX
            if fld.type == "Number":
                assert fld.precision is not None and fld.precision <= NUMBER_PRECISION_MAX
            if fld.type in ("Lookup", "MasterDetail"):
                assert fld.reference and fld.relationship_label
        names = [f.name.lower() for f in obj.fields]
        assert len(names) == len(set(names)), obj.logical
    assert len({o.name.lower() for o in DEFAULT_OBJECTS}) == len(DEFAULT_OBJECTS)


def test_every_object_has_a_unique_external_id_to_upsert_by() -> None:
    for obj in CUSTOM:
        key = next(f for f in obj.fields if f.logical == "key")
        assert key.external_id and key.unique and key.type == "Text"


def test_sessions_look_up_the_case_and_children_are_details_of_the_session() -> None:
    session = OBJECTS_BY_LOGICAL["session"]
    case = next(f for f in session.fields if f.logical == "case")
    # A Lookup: a session imported without a Case must be possible.
    assert (case.type, case.reference, case.relationship_label) == (
        "Lookup",
        "Case",
        "Remote Support Sessions",
    )
    # The columns of the vendor guide's related list exist on the session.
    logical = {f.logical for f in session.fields}
    assert {"primary_customer", "primary_rep", "start_time", "end_time", "duration"} <= logical
    for name in CHILDREN:
        masters = [f for f in OBJECTS_BY_LOGICAL[name].fields if f.type == "MasterDetail"]
        assert [(f.logical, f.reference) for f in masters] == [("session", "session")]


def test_the_user_field_maps_a_salesforce_user_to_a_representative() -> None:
    user = OBJECTS_BY_LOGICAL["user"]
    assert user.standard and user.name == "User"
    [field] = user.fields
    assert (field.name, field.label) == ("RS_Username__c", "BeyondTrust Username")


def test_renames_change_names_references_and_relationship_names() -> None:
    schema = Schema.build(
        ["session=Acme_Session__c", " event = Acme_Event__c "],
        ["session.lsid=Session_Id__c", "user.rep_username=BT_User__c"],
    )
    assert schema.object("session") == "Acme_Session__c"
    assert schema.object("event") == "Acme_Event__c"
    assert schema.object("rep") == "RS_Session_Rep__c"
    assert schema.field("session", "lsid") == "Session_Id__c"
    assert schema.field("user", "rep_username") == "BT_User__c"
    master = next(f for f in OBJECTS_BY_LOGICAL["event"].fields if f.type == "MasterDetail")
    assert schema.reference_target(master) == "Acme_Session__c"
    assert schema.relationship_name("event", master) == "Acme_Events"
    case = next(f for f in OBJECTS_BY_LOGICAL["session"].fields if f.logical == "case")
    assert schema.relationship_name("session", case) == "Acme_Sessions"
    assert schema.record("session", {"lsid": "abc", "case": "500x"}) == {
        "Session_Id__c": "abc",
        "Case__c": "500x",
    }


def test_relationship_names_are_unique_per_parent_and_valid() -> None:
    schema = Schema.build()
    by_parent: dict[str, list[str]] = {}
    for obj in CUSTOM:
        for fld in obj.fields:
            if fld.reference:
                name = schema.relationship_name(obj.logical, fld)
                assert custom_name_problem(f"{name}__c") is None, name
                by_parent.setdefault(schema.reference_target(fld), []).append(name)
    for names in by_parent.values():
        assert len(names) == len({n.lower() for n in names})
    assert by_parent["Case"] == ["RS_Sessions"]
    assert len(by_parent["User"]) == 2


def test_a_long_object_name_keeps_relationship_names_within_the_limit() -> None:
    long = "A" * NAME_MAX
    schema = Schema.build([f"session={long}__c"])
    case = next(f for f in OBJECTS_BY_LOGICAL["session"].fields if f.logical == "case")
    name = schema.relationship_name("session", case)
    assert len(name) <= NAME_MAX and custom_name_problem(f"{name}__c") is None


@pytest.mark.parametrize(
    ("objects", "fields", "message"),
    [
        (["nosuch=X__c"], [], r"objects: 'nosuch=X__c' is not <object>=<API name>"),
        (["session"], [], r"objects: 'session' is not"),
        (["user=Person__c"], [], r"standard User object"),
        (["session=Session"], [], r"does not end with __c"),
        (["session=1Session__c"], [], r"must start with a letter"),
        (["session=My Session__c"], [], r"must start with a letter"),
        (["session=ns__Session__c"], [], r"two underscores in a row"),
        (["session=Session___c"], [], r"ends with an underscore"),
        ([f"session={'S' * (NAME_MAX + 1)}__c"], [], r"longer than 40"),
        (["rep=RS_Session__c"], [], r"objects: session and rep would both be named"),
        (["rep=rs_session__c"], [], r"would both be named"),  # names are case-insensitive
        ([], ["session.nosuch=X__c"], r"fields: 'session.nosuch=X__c' is not"),
        ([], ["lsid=X__c"], r"is not <object>.<field>=<API name>"),
        ([], ["session.lsid=Bad__Name__c"], r"two underscores"),
        ([], ["session.lsid=Import_Key__c"], r"session.key and session.lsid"),
    ],
)
def test_a_bad_rename_is_a_clear_error(objects: list[str], fields: list[str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Schema.build(objects, fields)


def test_the_rename_settings_are_declared_for_the_connector() -> None:
    assert [(s.name, s.type, s.default) for s in RENAME_SETTINGS] == [
        ("objects", "list", []),
        ("fields", "list", []),
    ]


def test_every_object_and_field_is_documented_with_its_rename_key() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "salesforce.md").read_text()
    for obj in DEFAULT_OBJECTS:
        assert f"`{obj.name}`" in doc
        if not obj.standard:
            assert f"`objects` key `{obj.logical}`" in doc
        for fld in obj.fields:
            assert f"| `{fld.name}` |" in doc and f"`{obj.logical}.{fld.logical}`" in doc
