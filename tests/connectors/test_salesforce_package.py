"""The org-side package: valid Metadata API source format, read back as the schema it came from.

What the checks compare against:

* ``salesforce_data/metadata.xsd`` is transcribed from the WSDL segments that the Metadata
  API Developer Guide publishes for CustomObject, CustomField, PermissionSet,
  RemoteSiteSetting, Layout and ListView (element names, sequence order, enumerations).
  Every generated XML file must validate against it.
* The same XSD accepts all 45 CustomObject, CustomField, PermissionSet, RemoteSiteSetting,
  Layout, ListView and CustomTab files of a real public project,
  trailheadapps/dreamhouse-lwc at commit 9f41bff (checked by hand with the fetch tool, not
  in this suite: no network here), so it is not stricter than what Salesforce retrieves;
  it needed ``displayLocationInDecimal``, which the current guide's segment lacks, for that.
* The conventions the XSD cannot see follow that project: a field file names itself in
  ``<fullName>`` and an object file does not; a custom lookup's related list is
  ``<Child>__c.<Field>__c`` with ``NAME`` and field API names as its columns
  (``Broker__c-Broker Layout``); a list view names itself in ``<fullName>``; a custom
  object's tab is ``customObject`` and a ``motif`` (``tabs/Broker__c.tab-meta.xml``);
  booleans are ``true``/``false``; the declaration is
  ``<?xml version="1.0" encoding="UTF-8"?>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from typer.testing import CliRunner

from rsbridge.connectors.salesforce.classic import PAGES
from rsbridge.connectors.salesforce.commands import salesforce_app
from rsbridge.connectors.salesforce.mdxml import NS
from rsbridge.connectors.salesforce.package import (
    API_VERSION,
    SOURCE_DIR,
    actions_origin,
    package_files,
    with_session_related_list,
    write_package,
)
from rsbridge.connectors.salesforce.schema import (
    DEFAULT_OBJECTS,
    OBJECTS_BY_LOGICAL,
    Schema,
)
from rsbridge.errors import ConfigurationError

DATA = Path(__file__).parent / "salesforce_data"
XSD = etree.XMLSchema(etree.parse(str(DATA / "metadata.xsd")))
CASE_LAYOUT = DATA / "Case-Case Layout.layout-meta.xml"
M = f"{{{NS}}}"


def _xml(content: bytes) -> etree._Element:
    return etree.fromstring(content, etree.XMLParser(resolve_entities=False, no_network=True))


def _text(element: etree._Element, tag: str) -> str | None:
    return element.findtext(M + tag)


def read_objects(files: dict[str, bytes]) -> dict[str, dict[str, dict[str, str | None]]]:
    """What a loader of source format sees: objects by directory, fields by file name,
    each field as its elements' text (a faithful reader, independent of the generator)."""
    objects: dict[str, dict[str, dict[str, str | None]]] = {}
    prefix = f"{SOURCE_DIR}/objects/"
    for path, content in files.items():
        if not path.startswith(prefix):
            continue
        parts = path[len(prefix) :].split("/")
        root = _xml(content)
        if parts[1] == "webLinks":  # a button names itself, like a list view
            assert root.tag == M + "WebLink"
            assert _text(root, "fullName") == parts[2].removesuffix(".webLink-meta.xml")
            continue
        fields = objects.setdefault(parts[0], {})
        if parts[1] == "listViews":
            assert root.tag == M + "ListView"
        elif parts[1:] == [f"{parts[0]}.object-meta.xml"]:
            assert root.tag == M + "CustomObject"
            assert _text(root, "fullName") is None  # the directory names the object
        else:
            assert parts[1] == "fields" and parts[2].endswith(".field-meta.xml")
            assert root.tag == M + "CustomField"
            name = parts[2].removesuffix(".field-meta.xml")
            assert _text(root, "fullName") == name
            fields[name] = {etree.QName(e).localname: e.text for e in root}
    return objects


def test_every_xml_file_is_valid_metadata_in_the_api_namespace() -> None:
    files = package_files(Schema.build())
    xml_files = [p for p in files if p.endswith("-meta.xml")]
    assert len(xml_files) > 80
    for path in xml_files:
        content = files[path]
        assert content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
        root = _xml(content)
        assert etree.QName(root).namespace == NS, path
        assert XSD.validate(root.getroottree()), f"{path}: {XSD.error_log}"
        for element in root.iter():
            if element.text in ("True", "False"):
                pytest.fail(f"{path}: booleans are lower case")
    project = json.loads(files["sfdx-project.json"])
    assert project["sourceApiVersion"] == API_VERSION
    assert [d["path"] for d in project["packageDirectories"]] == ["force-app"]
    assert all(p.startswith(("force-app/", "sfdx-project.json", "README.md")) for p in files)


def test_the_files_read_back_as_the_schema() -> None:
    schema = Schema.build()
    objects = read_objects(package_files(schema))
    assert set(objects) == {o.name for o in DEFAULT_OBJECTS}
    for obj in DEFAULT_OBJECTS:
        fields = objects[obj.name]
        assert set(fields) == {f.name for f in obj.fields}
        for fld in obj.fields:
            got = fields[fld.name]
            assert got["type"] == fld.type and got["label"] == fld.label
            if fld.length is not None:
                assert got["length"] == str(fld.length)
            assert got.get("externalId") == ("true" if fld.external_id else None)
            assert got.get("unique") == ("true" if fld.unique else None)
            if fld.reference:
                assert got["referenceTo"] == schema.reference_target(fld)
                assert got["relationshipName"] == schema.relationship_name(obj.logical, fld)
    session = objects["RS_Session__c"]
    assert session["Case__c"]["deleteConstraint"] == "SetNull"  # deleting a Case keeps sessions
    assert "deleteConstraint" not in session["Primary_Rep_User__c"]
    # Master-detail fields carry neither `required` nor `deleteConstraint` (always
    # required, always cascading); the guide's other three elements are there.
    event_session = objects["RS_Session_Event__c"]["Session__c"]
    assert "required" not in event_session and "deleteConstraint" not in event_session
    assert event_session["relationshipOrder"] == "0"
    assert event_session["reparentableMasterDetail"] == "false"
    assert objects["RS_Session_Rep__c"]["Primary__c"]["defaultValue"] == "false"


def test_objects_have_auto_numbers_and_children_share_the_session() -> None:
    files = package_files(Schema.build())
    for obj in DEFAULT_OBJECTS:
        if obj.standard:
            assert not any(p.endswith(f"/{obj.name}.object-meta.xml") for p in files)
            continue
        root = _xml(files[f"{SOURCE_DIR}/objects/{obj.name}/{obj.name}.object-meta.xml"])
        assert _text(root, "label") == obj.label
        name_field = root.find(M + "nameField")
        assert name_field is not None and _text(name_field, "type") == "AutoNumber"
        expected = "Read" if obj.logical == "session" else "ControlledByParent"
        assert _text(root, "sharingModel") == expected


def _permissions(
    files: dict[str, bytes], name: str
) -> tuple[dict[str | None, Any], dict[str | None, Any]]:
    root = _xml(files[f"{SOURCE_DIR}/permissionsets/{name}.permissionset-meta.xml"])
    fields = {
        _text(e, "field"): (_text(e, "readable"), _text(e, "editable"))
        for e in root.iterchildren(M + "fieldPermissions")
    }
    objects = {
        _text(e, "object"): {etree.QName(c).localname: c.text for c in e}
        for e in root.iterchildren(M + "objectPermissions")
    }
    return fields, objects


def test_permission_sets_give_the_integration_user_write_and_technicians_read() -> None:
    schema = Schema.build()
    files = package_files(schema)
    expected = {
        f"{o.name}.{f.name}" for o in DEFAULT_OBJECTS for f in o.fields if f.type != "MasterDetail"
    }
    fields, objects = _permissions(files, "RS_Integration")
    # Every field but master-detail ones (Salesforce refuses permissions on those).
    assert set(fields) == expected
    assert fields["RS_Session__c.Import_Key__c"] == ("true", "true")
    # Nobody maps themselves to another representative's queue through these sets.
    assert fields["User.RS_Username__c"] == ("true", "false")
    assert objects["RS_Session_Event__c"]["allowCreate"] == "true"
    assert objects["RS_Session_Event__c"]["allowDelete"] == "false"
    assert objects["Case"]["allowEdit"] == "true"
    fields, objects = _permissions(files, "RS_Support_User")
    assert set(fields) == expected
    assert set(fields.values()) == {("true", "false")}
    assert {v["allowEdit"] for v in objects.values()} == {"false"}
    assert "Case" not in objects
    root = _xml(files[f"{SOURCE_DIR}/permissionsets/RS_Support_User.permissionset-meta.xml"])
    tabs = [(_text(e, "tab"), _text(e, "visibility")) for e in root.iter(M + "tabSettings")]
    assert tabs == [("RS_Session__c", "Visible")]


def test_sessions_without_a_case_have_a_tab_and_a_list_view() -> None:
    files = package_files(Schema.build(["session=Acme_Session__c"]))
    tab = _xml(files[f"{SOURCE_DIR}/tabs/Acme_Session__c.tab-meta.xml"])
    assert (_text(tab, "customObject"), _text(tab, "motif")) == ("true", "Custom15: People")
    view = _xml(files[f"{SOURCE_DIR}/objects/Acme_Session__c/listViews/All.listView-meta.xml"])
    assert (_text(view, "fullName"), _text(view, "filterScope")) == ("All", "Everything")
    assert [e.text for e in view.iter(M + "columns")][:3] == [
        "NAME",
        "Start_Time__c",
        "Primary_Customer__c",
    ]


def test_the_remote_site_names_rsbridges_origin() -> None:
    files = package_files(Schema.build(), actions_url="https://rsb.acme.test:8443/base/")
    root = _xml(files[f"{SOURCE_DIR}/remoteSiteSettings/rsbridge.remoteSite-meta.xml"])
    assert _text(root, "url") == "https://rsb.acme.test:8443"
    assert _text(root, "isActive") == "true"
    assert _text(root, "disableProtocolSecurity") == "false"
    for bad in ("ftp://x", "https://x/?q=1", "not a url", "https://"):
        with pytest.raises(ConfigurationError, match="actions URL"):
            actions_origin(bad)


def test_renames_reach_every_file() -> None:
    schema = Schema.build(
        ["session=Acme_Session__c"], ["session.start_time=Began__c", "user.rep_username=BT__c"]
    )
    files = package_files(schema, case_layout=(CASE_LAYOUT.name, CASE_LAYOUT.read_bytes()))
    objects = read_objects(files)
    assert "RS_Session__c" not in objects
    assert "Began__c" in objects["Acme_Session__c"] and "BT__c" in objects["User"]
    assert objects["RS_Session_Team__c"]["Session__c"]["referenceTo"] == "Acme_Session__c"
    fields, objects_perm = _permissions(files, "RS_Integration")
    assert "Acme_Session__c.Began__c" in fields and "Acme_Session__c" in objects_perm
    layout = _xml(files[f"{SOURCE_DIR}/layouts/{CASE_LAYOUT.name}"])
    item = _session_list(layout, "Acme_Session__c.Case__c")
    assert _text(item, "sortField") == "Began__c"


def _session_list(layout: etree._Element, name: str) -> etree._Element:
    found = [e for e in layout.iterchildren(M + "relatedLists") if _text(e, "relatedList") == name]
    assert len(found) == 1
    return found[0]


def test_the_case_layout_gets_the_related_list_of_the_vendor_guide() -> None:
    schema = Schema.build()
    original = _xml(CASE_LAYOUT.read_bytes())
    patched_bytes = with_session_related_list(CASE_LAYOUT.read_bytes(), schema)
    patched = _xml(patched_bytes)
    assert XSD.validate(patched.getroottree()), XSD.error_log
    item = _session_list(patched, "RS_Session__c.Case__c")
    # Primary Customer, Primary Representative, Start, End, Duration; newest first; no New.
    assert [e.text for e in item.iterchildren(M + "fields")] == [
        "NAME",
        "Primary_Customer__c",
        "Primary_Representative__c",
        "Start_Time__c",
        "End_Time__c",
        "Duration__c",
    ]
    assert (_text(item, "sortField"), _text(item, "sortOrder")) == ("Start_Time__c", "Desc")
    assert [e.text for e in item.iterchildren(M + "excludeButtons")] == ["New"]
    # Everything else is kept, in order, and the new list follows the existing ones.
    before_tags = [etree.QName(e).localname for e in original]
    tags = [etree.QName(e).localname for e in patched]
    buttons = [button for button, _ in PAGES.values()]
    assert [e.text for e in patched.iterchildren(M + "customButtons")] == buttons
    assert (
        tags
        == [
            *(["customButtons"] * len(buttons)),  # the Classic buttons, first in the sequence
            *before_tags[:5],
            "relatedLists",
            *before_tags[5:],
        ]
    )
    assert patched.index(item) == 5 + len(buttons)
    added = set(item.iter()) | set(patched.iterchildren(M + "customButtons"))
    kept = [e for e in patched.iter() if e not in added]
    for before, after in zip(original.iter(), kept, strict=True):
        assert (before.tag, (before.text or "").strip()) == (after.tag, (after.text or "").strip())
    # Patching again changes nothing.
    assert with_session_related_list(patched_bytes, schema) == patched_bytes


def test_a_layout_without_related_lists_gets_it_in_sequence_order() -> None:
    layout = (
        f'<Layout xmlns="{NS}"><layoutSections><style>OneColumn</style></layoutSections>'
        "<showEmailCheckbox>false</showEmailCheckbox></Layout>"
    ).encode()
    patched = _xml(with_session_related_list(layout, Schema.build()))
    assert [etree.QName(e).localname for e in patched] == [
        "customButtons",
        "customButtons",
        "layoutSections",
        "relatedLists",
        "showEmailCheckbox",
    ]
    assert XSD.validate(patched.getroottree())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<Layout", "not well-formed"),
        (b'<Layout xmlns="urn:other"/>', "not a <Layout>"),
        (f'<CustomObject xmlns="{NS}"/>'.encode(), "not a <Layout>"),
        (
            b'<?xml version="1.0"?><!DOCTYPE Layout [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            + f'<Layout xmlns="{NS}"><relatedObjects>&x;</relatedObjects></Layout>'.encode(),
            "DOCTYPE",
        ),
    ],
)
def test_a_file_that_is_not_a_layout_is_refused(content: bytes, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        with_session_related_list(content, Schema.build())


@pytest.mark.parametrize(
    "name",
    [
        "Account-Account Layout.layout-meta.xml",
        "Case-Case Layout.xml",
        "Case-../../../etc/x.layout-meta.xml",
        "Case-a\\b.layout-meta.xml",
    ],
)
def test_only_a_case_layout_file_name_is_taken(name: str) -> None:
    layout = CASE_LAYOUT.read_bytes()
    with pytest.raises(ConfigurationError, match="not a Case page layout"):
        package_files(Schema.build(), case_layout=(name, layout))


def test_write_package_writes_the_tree_and_keeps_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    files = package_files(Schema.build())
    written = write_package(tmp_path, files)
    assert len(written) == len(files)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    field = tmp_path / SOURCE_DIR / "objects/RS_Session__c/fields/LSID__c.field-meta.xml"
    assert (
        field.read_bytes()
        == files[f"{SOURCE_DIR}/objects/RS_Session__c/fields/LSID__c.field-meta.xml"]
    )
    with pytest.raises(ConfigurationError, match="not a directory"):
        write_package(tmp_path / "notes.txt", files)


# --- the command ------------------------------------------------------------------------


CONFIG = """
[actions]
public_url = "https://rsbridge.acme.test/rs"

[[appliances]]
host = "support.example.com"
client_id = "x"
client_secret = "y"

[[integrations]]
name = "sfdc"
connector = "salesforce"

[integrations.settings]
login_url = "https://acme.my.salesforce.com"
client_id = "3MVG9-consumer-key"
client_secret = "consumer-secret"
objects = ["session=Acme_Session__c"]
fields = ["session.lsid=Session_Id__c"]
"""


def test_the_command_writes_the_package_with_the_configured_names(tmp_path: Path) -> None:
    config = tmp_path / "rsbridge.toml"
    config.write_text(CONFIG)
    out = tmp_path / "pkg"
    result = CliRunner().invoke(
        salesforce_app,
        ["package", "--out", str(out), "-c", str(config), "--case-layout", str(CASE_LAYOUT)],
    )
    assert result.exit_code == 0, result.output
    assert "sf project deploy start --source-dir" in result.output
    # The one step left by hand: the token, on the principals the package made.
    assert "External Credentials > rsbridge > Principals: give rsbridge" in result.output
    assert "rsbridge_portal" in result.output and "parameter Token" in result.output
    objects = out / SOURCE_DIR / "objects"
    assert (objects / "Acme_Session__c/fields/Session_Id__c.field-meta.xml").is_file()
    assert not (objects / "RS_Session__c").exists()
    site = _xml((out / SOURCE_DIR / "remoteSiteSettings/rsbridge.remoteSite-meta.xml").read_bytes())
    assert _text(site, "url") == "https://rsbridge.acme.test"
    layout = _xml((out / SOURCE_DIR / "layouts" / CASE_LAYOUT.name).read_bytes())
    _session_list(layout, "Acme_Session__c.Case__c")
    # The Case buttons name the configured integration.
    apex = (out / SOURCE_DIR / "classes/RSBridgeActions.cls").read_text()
    assert "INTEGRATION = 'sfdc';" in apex


def test_the_command_says_what_is_wrong(tmp_path: Path) -> None:
    config = tmp_path / "rsbridge.toml"
    config.write_text(CONFIG.replace("session=Acme_Session__c", "session=Acme__Session__c"))
    result = CliRunner().invoke(
        salesforce_app, ["package", "--out", str(tmp_path / "p"), "-c", str(config)]
    )
    assert result.exit_code == 1
    assert "two underscores in a row" in result.output
    config.write_text(CONFIG)
    result = CliRunner().invoke(
        salesforce_app,
        ["package", "--out", str(tmp_path / "p"), "-c", str(config), "--integration", "x"],
    )
    assert result.exit_code != 0 and "found: sfdc" in result.output


def test_without_a_configuration_the_defaults_and_a_placeholder_url_are_used(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(salesforce_app, ["package", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "set [actions] public_url or --actions-url" in " ".join(result.output.split())
    session = OBJECTS_BY_LOGICAL["session"].name
    assert (tmp_path / SOURCE_DIR / "objects" / session / f"{session}.object-meta.xml").is_file()
    result = CliRunner().invoke(
        salesforce_app, ["package", "--out", str(tmp_path), "--actions-url", "rsbridge.acme.test"]
    )
    assert result.exit_code == 1 and "is not an http:// or https:// URL" in result.output
