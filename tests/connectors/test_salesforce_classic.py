"""The Salesforce Classic Case buttons: Visualforce pages behind Case detail-page buttons.

No Visualforce compiler runs outside an org, so what the checks compare against is what
one would refuse: the metadata files validate (salesforce_data/metadata.xsd: ApexPage,
WebLink, PermissionSet), a button opens a page of the package, each page is well-formed
markup of Visualforce components on the Case's standard controller, and every ``{!...}``
binding names a property, getter or action of the controller extension, whose Apex the
compile check (test_salesforce_compile.py) parses. The extension must send the Lightning
components' requests, so its Jump options are the ones rsbridge accepts.
"""

from __future__ import annotations

import re
from typing import get_args

import pytest
from lxml import etree

from rsbridge.actions.models import JumpKind
from rsbridge.connectors.salesforce.classic import CONTROLLER, CONTROLLER_TEST, PAGES
from rsbridge.connectors.salesforce.components import APEX_CLASS
from rsbridge.connectors.salesforce.mdxml import NS
from rsbridge.connectors.salesforce.package import SOURCE_DIR, package_files
from rsbridge.connectors.salesforce.schema import Schema
from tests.connectors.test_salesforce_package import XSD

M = f"{{{NS}}}"
APEX = "urn:salesforce:visualforce:apex"
# The Visualforce standard components the pages may use (Visualforce Developer Guide,
# Standard Component Reference).
COMPONENTS = {
    "page",
    "sectionHeader",
    "form",
    "pageBlock",
    "pageMessage",
    "pageBlockButtons",
    "commandButton",
    "pageBlockSection",
    "pageBlockSectionItem",
    "outputLabel",
    "outputText",
    "outputLink",
    "selectList",
    "selectOptions",
    "inputText",
}
STANDARD_ACTIONS = {"cancel", "save", "edit", "view"}
FORMULA_FUNCTIONS = {"NOT", "ISBLANK"}


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return package_files(Schema.build())


def _controller(files: dict[str, bytes]) -> str:
    return files[f"{SOURCE_DIR}/classes/{CONTROLLER}.cls"].decode()


def _page(files: dict[str, bytes], name: str) -> etree._Element:
    markup = files[f"{SOURCE_DIR}/pages/{name}.page"].decode()
    # Visualforce markup is XML whose apex: prefix the platform declares; declare it to parse.
    declared = markup.replace("<apex:page ", f'<apex:page xmlns:apex="{APEX}" ', 1)
    return etree.fromstring(declared.encode(), etree.XMLParser(resolve_entities=False))


def test_the_buttons_open_the_pages_of_the_package(files: dict[str, bytes]) -> None:
    for page, (button, label) in PAGES.items():
        link = etree.fromstring(
            files[f"{SOURCE_DIR}/objects/Case/webLinks/{button}.webLink-meta.xml"]
        )
        meta = etree.fromstring(files[f"{SOURCE_DIR}/pages/{page}.page-meta.xml"])
        for root in (link, meta):
            assert XSD.validate(root.getroottree()), XSD.error_log
        assert link.findtext(M + "fullName") == button
        assert link.findtext(M + "linkType") == "page"
        assert link.findtext(M + "displayType") == "button"  # a detail-page button
        assert link.findtext(M + "page") == page
        assert link.findtext(M + "masterLabel") == meta.findtext(M + "label") == label
    for name in (CONTROLLER, CONTROLLER_TEST):
        meta = etree.fromstring(files[f"{SOURCE_DIR}/classes/{name}.cls-meta.xml"])
        assert XSD.validate(meta.getroottree()), XSD.error_log


def test_technicians_may_open_the_pages(files: dict[str, bytes]) -> None:
    support = etree.fromstring(
        files[f"{SOURCE_DIR}/permissionsets/RS_Support_User.permissionset-meta.xml"]
    )
    assert XSD.validate(support.getroottree()), XSD.error_log
    pages = [
        (a.findtext(M + "apexPage"), a.findtext(M + "enabled"))
        for a in support.iter(M + "pageAccesses")
    ]
    assert pages == [(p, "true") for p in sorted(PAGES)]
    classes = {a.findtext(M + "apexClass") for a in support.iter(M + "classAccesses")}
    assert {CONTROLLER, APEX_CLASS} <= classes


@pytest.mark.parametrize("name", sorted(PAGES))
def test_a_page_binds_only_what_the_controller_has(files: dict[str, bytes], name: str) -> None:
    root = _page(files, name)
    assert root.tag == f"{{{APEX}}}page"
    assert root.get("standardController") == "Case"
    assert root.get("extensions") == CONTROLLER
    used = {etree.QName(e).localname for e in root.iter() if etree.QName(e).namespace == APEX}
    assert used <= COMPONENTS, used - COMPONENTS
    apex = _controller(files)
    properties = set(re.findall(r"public [\w<>, ]+ (\w+) \{ get;", apex))
    getters = {g[0].lower() + g[1:] for g in re.findall(r"public [\w<>, ]+ get(\w+)\(\)", apex)}
    actions = set(re.findall(r"public PageReference (\w+)\(\)", apex)) | STANDARD_ACTIONS
    markup = etree.tostring(root, encoding="unicode")
    for expression in re.findall(r"\{!([^}]*)\}", markup):
        for ref in re.findall(r"[A-Za-z_][\w.]*", expression):
            if ref in FORMULA_FUNCTIONS or ref.startswith("Case."):
                continue
            assert ref in properties | getters | actions, f"{name}: {{!{expression}}}"
    for element in root.iter(f"{{{APEX}}}commandButton"):
        action = (element.get("action") or "").strip("{!}")
        assert action in actions, action
    # Every link points at a property the controller keeps to https links.
    for element in root.iter(f"{{{APEX}}}outputLink"):
        target = (element.get("value") or "").strip("{!}")
        assert re.search(rf"{target} = link\(answer, '\w+'\);", apex), target
    assert 'escape="false"' not in markup


def test_the_controller_calls_the_lightning_components_apex(files: dict[str, bytes]) -> None:
    apex = _controller(files)
    actions = files[f"{SOURCE_DIR}/classes/{APEX_CLASS}.cls"].decode()
    calls = re.findall(rf"{APEX_CLASS}\.(\w+)\(([^;]*)\);", apex)
    assert {name for name, _ in calls} == {"sessionKey", "jump"}
    for name, arguments in calls:
        declared = re.search(rf"public static String {name}\(([^)]*)\)", actions)
        assert declared is not None, name
        assert arguments.count(",") == declared.group(1).count(","), name
    assert "callout:" not in apex and "Bearer" not in apex  # only RSBridgeActions calls out


def test_the_jump_options_are_the_ones_rsbridge_accepts(files: dict[str, bytes]) -> None:
    apex = _controller(files)
    kinds = re.findall(
        r"new SelectOption\('([a-z_]+)'", apex.split("getKinds", 1)[1].split("}", 1)[0]
    )
    assert sorted(kinds) == sorted(get_args(JumpKind))
    js = files[f"{SOURCE_DIR}/lwc/rsbridgeJump/rsbridgeJump.js"].decode()
    assert kinds == [k for k in re.findall(r"value: '([a-z_]+)'", js) if k in kinds]
