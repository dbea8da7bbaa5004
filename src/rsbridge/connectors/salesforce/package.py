"""The org-side package: Salesforce metadata in source format, generated from a Schema.

:func:`package_files` returns every file of a Salesforce DX project that ``sf project
deploy start --source-dir force-app`` deploys (docs/salesforce.md walks through it):

* ``sfdx-project.json``;
* ``force-app/main/default/objects/<Object>/<Object>.object-meta.xml`` for each session
  object and ``.../fields/<Field>.field-meta.xml`` for each of their fields, plus the
  User field ``RS_Username__c`` ("BeyondTrust Username");
* ``permissionsets/RS_Integration.permissionset-meta.xml``: what rsbridge's integration
  user needs (create, read and edit the session objects, read and edit Cases, read the
  User field) and ``RS_Support_User``: read access for technicians (the related list);
* a tab and an "All" list view for sessions, so sessions imported without a Case
  ("Import External Sessions") can be found too;
* the Case buttons (:mod:`.components`): the Lightning web components
  ``rsbridgeSessionKey`` and ``rsbridgeJump``, their Case quick actions and the Apex class
  that calls rsbridge's actions API through the Named Credential ``rsbridge``;
* the Salesforce Classic Case buttons (:mod:`.classic`): two Visualforce pages behind
  Case detail-page buttons, through the same Apex class;
* "Get Support Now" for a self-service portal (:mod:`.portal`), with the permission set
  ``RS_Portal_User``;
* that Named Credential and its External Credential (:mod:`.credentials`), which
  ``RS_Support_User`` grants; the token is entered in Setup, never generated;
* ``remoteSiteSettings/rsbridge.remoteSite-meta.xml``: rsbridge's address, for Apex of your
  own that calls it without the Named Credential;
* with a Case page layout retrieved from the org (:func:`with_session_related_list`),
  that layout with the "Remote Support Sessions" related list added.

The Case layout is not generated from nothing: deploying a layout replaces the whole
layout, so a generated one would wipe out the org's own. rsbridge adds the related list
to the org's layout instead, and only when asked.

Every XML file is in the Metadata API namespace, with elements in the order of the
published WSDL (tests/connectors/salesforce_metadata.xsd checks it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from lxml import etree

from rsbridge.connectors.salesforce.classic import CONTROLLER, PAGES, classic_files
from rsbridge.connectors.salesforce.components import APEX_CLASS, component_files
from rsbridge.connectors.salesforce.credentials import (
    NAMED_CREDENTIAL,
    PORTAL_PRINCIPAL,
    PORTAL_PRINCIPAL_ACCESS,
    PRINCIPAL,
    PRINCIPAL_ACCESS,
    TOKEN_PARAMETER,
    credential_files,
)
from rsbridge.connectors.salesforce.mdxml import NS, add, document, element
from rsbridge.connectors.salesforce.portal import PORTAL_CLASS, PORTAL_COMPONENT, portal_files
from rsbridge.connectors.salesforce.schema import DEFAULT_OBJECTS, Field, Schema, SObject
from rsbridge.errors import ConfigurationError

API_VERSION: Final = "60.0"
SOURCE_DIR: Final = "force-app/main/default"
INTEGRATION_PERMISSION_SET: Final = "RS_Integration"
SUPPORT_PERMISSION_SET: Final = "RS_Support_User"
PORTAL_PERMISSION_SET: Final = "RS_Portal_User"
REMOTE_SITE: Final = "rsbridge"
DEFAULT_ACTIONS_URL: Final = "https://rsbridge.example.com"
DEFAULT_INTEGRATION: Final = "salesforce"
CASE_LAYOUT: Final = "Case-Case Layout"

TAB_MOTIF: Final = "Custom15: People"
LIST_VIEW_COLUMNS: Final = (
    "start_time",
    "primary_customer",
    "primary_rep",
    "case",
    "duration",
)
"""The session fields of the "All" list view, after the Name."""
RELATED_LIST_COLUMNS: Final = (
    "primary_customer",
    "primary_rep",
    "start_time",
    "end_time",
    "duration",
)
"""The session fields the Case's related list shows (the vendor guide's order)."""

# The CustomField elements rsbridge writes, in the order of the published WSDL sequence.
_FIELD_ORDER: Final = (
    "fullName",
    "caseSensitive",
    "defaultValue",
    "deleteConstraint",
    "description",
    "displayFormat",
    "externalId",
    "label",
    "length",
    "precision",
    "referenceTo",
    "relationshipLabel",
    "relationshipName",
    "relationshipOrder",
    "reparentableMasterDetail",
    "required",
    "scale",
    "type",
    "unique",
    "visibleLines",
    "writeRequiresMasterRead",
)
# The Layout elements that follow relatedLists in the WSDL sequence.
_AFTER_RELATED_LISTS: Final = frozenset(
    {
        "relatedObjects",
        "runAssignmentRulesDefault",
        "showEmailCheckbox",
        "showHighlightsPanel",
        "showInteractionLogPanel",
        "showKnowledgeComponent",
        "showRunAssignmentRulesCheckbox",
        "showSolutionSection",
        "showSubmitAndAttachButton",
        "summaryLayout",
    }
)
_URL = re.compile(r"(https?://[^/?#\s]+)(/[^?#\s]*)?")


def package_files(
    schema: Schema,
    *,
    actions_url: str = DEFAULT_ACTIONS_URL,
    integration: str = DEFAULT_INTEGRATION,
    case_layout: tuple[str, bytes] | None = None,
) -> dict[str, bytes]:
    """Every file of the package, by path relative to the project directory.

    ``actions_url`` is rsbridge's public URL (``[actions] public_url``); ``case_layout``
    is (file name, content) of a Case layout retrieved from the org, to which the
    related list is added; ``integration`` is the name the Case buttons send to rsbridge.
    """
    files: dict[str, bytes] = {
        "sfdx-project.json": _project_json(),
        "README.md": _readme(schema, case_layout is not None).encode(),
    }
    for obj in DEFAULT_OBJECTS:
        name = schema.object(obj.logical)
        base = f"{SOURCE_DIR}/objects/{name}"
        if not obj.standard:
            files[f"{base}/{name}.object-meta.xml"] = document(_custom_object(obj))
        for fld in obj.fields:
            api = schema.field(obj.logical, fld.logical)
            files[f"{base}/fields/{api}.field-meta.xml"] = document(_custom_field(schema, obj, fld))
    session = schema.object("session")
    files[f"{SOURCE_DIR}/objects/{session}/listViews/All.listView-meta.xml"] = document(
        _list_view(schema)
    )
    files[f"{SOURCE_DIR}/tabs/{session}.tab-meta.xml"] = document(_tab())
    sets = f"{SOURCE_DIR}/permissionsets"
    files[f"{sets}/{INTEGRATION_PERMISSION_SET}.permissionset-meta.xml"] = document(
        _permission_set(schema, integration=True)
    )
    files[f"{sets}/{SUPPORT_PERMISSION_SET}.permissionset-meta.xml"] = document(
        _permission_set(schema, integration=False)
    )
    files[f"{SOURCE_DIR}/remoteSiteSettings/{REMOTE_SITE}.remoteSite-meta.xml"] = document(
        _remote_site(actions_url)
    )
    files.update(component_files(integration, source_dir=SOURCE_DIR, api_version=API_VERSION))
    files.update(classic_files(source_dir=SOURCE_DIR, api_version=API_VERSION))
    files.update(portal_files(source_dir=SOURCE_DIR, api_version=API_VERSION))
    files[f"{sets}/{PORTAL_PERMISSION_SET}.permissionset-meta.xml"] = document(
        _portal_permission_set()
    )
    actions_origin(actions_url)  # a URL Salesforce can call, or a clear error
    files.update(credential_files(actions_url.strip(), source_dir=SOURCE_DIR))
    if case_layout is not None:
        filename, content = case_layout
        if (
            not filename.startswith("Case-")
            or not filename.endswith(".layout-meta.xml")
            or any(c in filename for c in "/\\\0")
        ):
            raise ConfigurationError(
                f"{filename!r} is not a Case page layout in source format "
                "(Case-<layout name>.layout-meta.xml)"
            )
        files[f"{SOURCE_DIR}/layouts/{filename}"] = with_session_related_list(content, schema)
    return files


def write_package(out: Path, files: Mapping[str, bytes]) -> list[Path]:
    """Write ``files`` under ``out`` (created if needed); other files there stay."""
    if out.exists() and not out.is_dir():
        raise ConfigurationError(f"{out} exists and is not a directory")
    written = []
    for relative, content in sorted(files.items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return written


def actions_origin(url: str) -> str:
    """The scheme and host of rsbridge's actions URL (what a remote site names)."""
    match = _URL.fullmatch(url.strip())
    if match is None:
        raise ConfigurationError(
            f"actions URL {url!r} is not an http:// or https:// URL without query or fragment"
        )
    return match.group(1)


# --- objects and fields ---------------------------------------------------------------


def _custom_object(obj: SObject) -> etree._Element:
    root = element("CustomObject")
    detail = any(f.type == "MasterDetail" for f in obj.fields)
    add(root, "deploymentStatus", "Deployed")
    if obj.description:
        add(root, "description", obj.description)
    for flag, value in (
        ("enableActivities", False),
        ("enableBulkApi", True),
        ("enableFeeds", False),
        ("enableHistory", False),
        ("enableReports", True),
        ("enableSearch", not detail),
        ("enableSharing", True),
        ("enableStreamingApi", True),
    ):
        add(root, flag, _bool(value))
    add(root, "label", obj.label)
    name_field = add(root, "nameField")
    add(name_field, "displayFormat", obj.number_format)
    short = obj.label.removeprefix("Remote Support Session").strip() or "Session"
    add(name_field, "label", f"{short} Number")
    add(name_field, "type", "AutoNumber")
    add(root, "pluralLabel", obj.plural_label)
    # Details share their session's access; sessions are readable by every internal user
    # and written by the integration user that owns them (docs/salesforce.md: sharing).
    add(root, "sharingModel", "ControlledByParent" if detail else "Read")
    add(root, "visibility", "Public")
    return root


def _custom_field(schema: Schema, obj: SObject, fld: Field) -> etree._Element:
    values: dict[str, str] = {
        "fullName": schema.field(obj.logical, fld.logical),
        "label": fld.label,
        "type": fld.type,
    }
    if fld.description:
        values["description"] = fld.description
    if fld.external_id:
        values["externalId"] = "true"
    if fld.unique:
        values["unique"] = "true"
        values["caseSensitive"] = "false"
    if fld.type == "Text":
        values.update(length=str(fld.length), required="false")
    elif fld.type == "LongTextArea":
        values.update(length=str(fld.length), visibleLines="3")
    elif fld.type == "Number":
        values.update(precision=str(fld.precision), scale="0", required="false")
    elif fld.type == "Checkbox":
        values["defaultValue"] = "false"
    elif fld.type in ("DateTime", "Url"):
        values["required"] = "false"
    elif fld.type in ("Lookup", "MasterDetail"):
        values.update(
            referenceTo=schema.reference_target(fld),
            relationshipLabel=fld.relationship_label or obj.plural_label,
            relationshipName=schema.relationship_name(obj.logical, fld),
        )
        if fld.type == "Lookup":
            values["required"] = "false"
            if fld.reference != "User":  # a User is never deleted, only deactivated
                values["deleteConstraint"] = "SetNull"
        else:
            values.update(
                relationshipOrder="0",
                reparentableMasterDetail="false",
                writeRequiresMasterRead="false",
            )
    root = element("CustomField")
    for tag in _FIELD_ORDER:
        if tag in values:
            add(root, tag, values[tag])
    return root


# --- permission sets and the remote site -----------------------------------------------


def _permission_set(schema: Schema, *, integration: bool) -> etree._Element:
    root = element("PermissionSet")
    if not integration:  # the Case buttons' Apex runs as the technician
        for apex_class in sorted((APEX_CLASS, CONTROLLER)):
            item = add(root, "classAccesses")
            add(item, "apexClass", apex_class)
            add(item, "enabled", "true")
    if integration:
        description = (
            "rsbridge's integration user: writes Remote Support sessions and their related "
            "records, reads and updates Cases, reads each user's BeyondTrust username."
        )
        label = "rsbridge Integration"
    else:
        description = (
            "Technicians: read the Remote Support sessions of Cases (the related list) and "
            "their representatives, customers, events, recordings and survey answers."
        )
        label = "rsbridge Remote Support User"
    add(root, "description", description)
    if not integration:  # the Apex calls rsbridge with the principal's token
        item = add(root, "externalCredentialPrincipalAccesses")
        add(item, "enabled", "true")
        add(item, "externalCredentialPrincipal", PRINCIPAL_ACCESS)
    permissions = sorted(
        (
            (f"{schema.object(obj.logical)}.{schema.field(obj.logical, fld.logical)}", obj)
            for obj in DEFAULT_OBJECTS
            for fld in obj.fields
            if fld.type != "MasterDetail"  # always required: Salesforce refuses permissions
        ),
        key=lambda pair: pair[0],
    )
    for name, obj in permissions:
        item = add(root, "fieldPermissions")
        # Nobody edits a username mapping through these sets: it decides whose queue a
        # session key goes to, so only administrators set it.
        add(item, "editable", _bool(integration and not obj.standard))
        add(item, "field", name)
        add(item, "readable", "true")
    add(root, "hasActivationRequired", "false")
    add(root, "label", label)
    objects = [schema.object(o.logical) for o in DEFAULT_OBJECTS if not o.standard]
    if integration:
        objects.append("Case")
    for name in sorted(objects):
        item = add(root, "objectPermissions")
        add(item, "allowCreate", _bool(integration))
        add(item, "allowDelete", "false")
        add(item, "allowEdit", _bool(integration))
        add(item, "allowRead", "true")
        add(item, "modifyAllRecords", "false")
        add(item, "object", name)
        add(item, "viewAllRecords", "false")
    if not integration:
        for page in sorted(PAGES):  # the Classic buttons' Visualforce pages
            item = add(root, "pageAccesses")
            add(item, "apexPage", page)
            add(item, "enabled", "true")
        item = add(root, "tabSettings")
        add(item, "tab", schema.object("session"))
        add(item, "visibility", "Visible")
    if integration:
        item = add(root, "userPermissions")
        add(item, "enabled", "true")
        add(item, "name", "ApiEnabled")
    return root


def _portal_permission_set() -> etree._Element:
    """Self-service portal users: run the "Get Support Now" Apex with the portal's principal.
    No object access: which Cases they see is the site's sharing, checked in the Apex."""
    root = element("PermissionSet")
    item = add(root, "classAccesses")
    add(item, "apexClass", PORTAL_CLASS)
    add(item, "enabled", "true")
    add(
        root,
        "description",
        "Customers of a self-service portal: the Get Support Now component on their Cases.",
    )
    item = add(root, "externalCredentialPrincipalAccesses")
    add(item, "enabled", "true")
    add(item, "externalCredentialPrincipal", PORTAL_PRINCIPAL_ACCESS)
    add(root, "hasActivationRequired", "false")
    add(root, "label", "rsbridge Self-Service Portal User")
    return root


def _list_view(schema: Schema) -> etree._Element:
    root = element("ListView")
    add(root, "fullName", "All")
    add(root, "columns", "NAME")
    for column in LIST_VIEW_COLUMNS:
        add(root, "columns", schema.field("session", column))
    add(root, "filterScope", "Everything")
    add(root, "label", "All")
    return root


def _tab() -> etree._Element:
    root = element("CustomTab")
    add(root, "customObject", "true")
    add(root, "motif", TAB_MOTIF)
    return root


def _remote_site(actions_url: str) -> etree._Element:
    root = element("RemoteSiteSetting")
    add(root, "description", "rsbridge's actions API (session keys, Jump) for Apex callouts.")
    add(root, "disableProtocolSecurity", "false")
    add(root, "isActive", "true")
    add(root, "url", actions_origin(actions_url))
    return root


# --- the Case layout's related list -----------------------------------------------------


def session_related_list(schema: Schema) -> etree._Element:
    """The ``<relatedLists>`` item of the "Remote Support Sessions" related list: the
    vendor guide's columns, newest session first, no New button."""
    item = etree.Element(f"{{{NS}}}relatedLists")
    add(item, "excludeButtons", "New")
    add(item, "fields", "NAME")
    for column in RELATED_LIST_COLUMNS:
        add(item, "fields", schema.field("session", column))
    session = schema.object("session")
    add(item, "relatedList", f"{session}.{schema.field('session', 'case')}")
    add(item, "sortField", schema.field("session", "start_time"))
    add(item, "sortOrder", "Desc")
    return item


def with_session_related_list(layout: bytes, schema: Schema) -> bytes:
    """The Case page layout ``layout`` (source format, retrieved from the org) with the
    session related list added, or replaced if it is there already, and the Classic Case
    buttons among its custom buttons; nothing else changes."""
    if b"<!DOCTYPE" in layout.upper():
        raise ConfigurationError("the Case layout has a DOCTYPE; a layout file has none")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=True
    )
    try:
        root = etree.fromstring(layout, parser)
    except etree.XMLSyntaxError as exc:
        raise ConfigurationError(f"the Case layout is not well-formed XML: {exc}") from None
    if root.tag != f"{{{NS}}}Layout":
        raise ConfigurationError(
            f"the Case layout is not a <Layout> of the Metadata API namespace ({NS})"
        )
    item = session_related_list(schema)
    wanted = item.findtext(f"{{{NS}}}relatedList")
    existing = [
        e
        for e in root.iterchildren(f"{{{NS}}}relatedLists")
        if e.findtext(f"{{{NS}}}relatedList") == wanted
    ]
    if existing:
        existing[0].addprevious(item)
        for old in existing:
            root.remove(old)
    else:
        _insert_related_list(root, item)
    _add_buttons(root, [button for button, _ in PAGES.values()])
    return document(root)


def _add_buttons(root: etree._Element, buttons: list[str]) -> None:
    """Add ``buttons`` to the layout's ``customButtons`` (the first elements of a Layout)."""
    present = list(root.iterchildren(f"{{{NS}}}customButtons"))
    names = {e.text for e in present}
    anchor = present[-1] if present else root.find(f"{{{NS}}}fullName")
    for name in buttons:
        if name in names:
            continue
        button = etree.Element(f"{{{NS}}}customButtons")
        button.text = name
        if anchor is None:
            root.insert(0, button)
        else:
            anchor.addnext(button)
        anchor = button


def _insert_related_list(root: etree._Element, item: etree._Element) -> None:
    lists = list(root.iterchildren(f"{{{NS}}}relatedLists"))
    if lists:
        lists[-1].addnext(item)
        return
    for child in root:
        if etree.QName(child).localname in _AFTER_RELATED_LISTS:
            child.addprevious(item)
            return
    root.append(item)


# --- helpers ----------------------------------------------------------------------------


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _project_json() -> bytes:
    project = {
        "packageDirectories": [{"path": "force-app", "default": True}],
        "name": "rsbridge-salesforce",
        "namespace": "",
        "sourceApiVersion": API_VERSION,
    }
    return (json.dumps(project, indent=2) + "\n").encode()


def _readme(schema: Schema, with_layout: bool) -> str:
    objects = "\n".join(
        f"- `{schema.object(o.logical)}` ({o.label})" for o in DEFAULT_OBJECTS if not o.standard
    )
    layout = (
        "- `layouts/`: your Case layout with the Remote Support Sessions related list\n"
        if with_layout
        else ""
    )
    return f"""# rsbridge: Salesforce metadata

Generated by `rsbridge salesforce package`. Deploy it with the Salesforce CLI:

    sf project deploy start --source-dir force-app --target-org <your org alias>

(to production, add `--test-level RunSpecifiedTests --tests RSBridgeActionsTest
--tests RSBridgeCaseButtonsTest --tests RSBridgeSupportNowTest`)

Then assign the permission sets:

    sf org assign permset --name {INTEGRATION_PERMISSION_SET} --on-behalf-of <integration user>
    sf org assign permset --name {SUPPORT_PERMISSION_SET} --on-behalf-of <technician>

What is in it:

{objects}
- `User.{schema.field("user", "rep_username")}` (BeyondTrust Username)
- a Remote Support Sessions tab with an All list view
- permission sets `{INTEGRATION_PERMISSION_SET}` and `{SUPPORT_PERMISSION_SET}`
- the Case components `rsbridgeSessionKey` and `rsbridgeJump` (also Case quick actions) and
  the Apex class `{APEX_CLASS}` they call rsbridge through
- `{PORTAL_COMPONENT}` ("Get Support Now"), for the Case page of an Experience Cloud site;
  assign `{PORTAL_PERMISSION_SET}` to its customers and give the principal
  `{PORTAL_PRINCIPAL}` a token of its own
- for Salesforce Classic, the Case buttons "Remote Support Session Key" and "Remote Support
  Jump" (Visualforce pages `{"`, `".join(PAGES)}`; add them to the Case layout)
- the Named Credential `{NAMED_CREDENTIAL}` (rsbridge's address) and its External Credential:
  after deploying, enter rsbridge's client token in Setup > Named Credentials > External
  Credentials > `{NAMED_CREDENTIAL}` > Principals > `{PRINCIPAL}`, as the authentication
  parameter `{TOKEN_PARAMETER}` (docs/salesforce.md, "The Case buttons")
- remote site `{REMOTE_SITE}` (rsbridge's address)
{layout}
The whole set-up is in rsbridge's docs/salesforce.md.
"""
