"""The "Get Support Now" component for a self-service portal, as the package ships it.

Its Apex and component compile (test_salesforce_compile.py); its requests are checked
against the real engine in tests/actions/test_salesforce_portal.py. Here: the component
is exposed to Experience Builder with the page's record id (the Lightning Web Components
Developer Guide's ``{!recordId}`` property for Experience Cloud), offers only session
types rsbridge accepts, calls Apex methods that exist, and the portal's permission set
opens that class and the portal's principal, nothing of the technicians'.
"""

from __future__ import annotations

import re
from typing import get_args, get_type_hints

from lxml import etree

from rsbridge.actions.models import SupportNowRequest
from rsbridge.connectors.salesforce.components import APEX_CLASS
from rsbridge.connectors.salesforce.mdxml import NS
from rsbridge.connectors.salesforce.package import SOURCE_DIR, package_files
from rsbridge.connectors.salesforce.portal import PORTAL_CLASS, PORTAL_COMPONENT
from rsbridge.connectors.salesforce.schema import Schema
from tests.connectors.test_salesforce_package import XSD

M = f"{{{NS}}}"
BASE = f"{SOURCE_DIR}/lwc/{PORTAL_COMPONENT}/{PORTAL_COMPONENT}"


def _files() -> dict[str, bytes]:
    return package_files(Schema.build())


def test_the_component_is_on_experience_cloud_pages_with_the_record_id() -> None:
    bundle = etree.fromstring(_files()[f"{BASE}.js-meta.xml"])
    assert XSD.validate(bundle.getroottree()), XSD.error_log
    assert bundle.findtext(M + "isExposed") == "true"
    assert [t.text for t in bundle.iter(M + "target")] == [
        "lightningCommunity__Page",
        "lightningCommunity__Default",
    ]
    (config,) = bundle.iter(M + "targetConfig")
    assert config.get("targets") == "lightningCommunity__Default"
    properties = {p.get("name"): p for p in config.iter(M + "property")}
    assert properties["recordId"].get("default") == "{!recordId}"
    offered = (properties["startType"].get("datasource") or "").split(",")
    # SupportNowRequest.start_type is Literal["chat", "full"] | None.
    accepted = get_args(get_args(get_type_hints(SupportNowRequest)["start_type"])[0])
    assert offered == list(accepted)
    js = _files()[f"{BASE}.js"].decode()
    assert f"@api startType = '{properties['startType'].get('default')}';" in js


def test_the_component_calls_apex_that_exists() -> None:
    files = _files()
    apex = files[f"{SOURCE_DIR}/classes/{PORTAL_CLASS}.cls"].decode()
    js = files[f"{BASE}.js"].decode()
    methods = re.findall(rf"@salesforce/apex/{PORTAL_CLASS}\.(\w+)'", js)
    assert sorted(methods) == ["issues", "supportNow"]
    for method in methods:
        assert re.search(rf"@AuraEnabled\s+public static String {method}\(", apex), method
    html = files[f"{BASE}.html"].decode()
    for handler in re.findall(r"\son[a-z]+=\{(\w+)\}", html):
        assert re.search(rf"^    (async )?{handler}\(", js, re.MULTILINE), handler
    # Arguments by the Apex parameter names (an imperative Apex call passes an object).
    params = re.search(r"public static String supportNow\(([^)]*)\)", apex)
    assert params is not None
    names = [p.split()[-1] for p in params.group(1).split(",")]
    call = js[js.index("await supportNow({") :].split("})", 1)[0]
    assert re.findall(r"(\w+):", call) == names


def test_the_apex_says_who_asks_and_checks_the_case_first() -> None:
    apex = _files()[f"{SOURCE_DIR}/classes/{PORTAL_CLASS}.cls"].decode()
    support = apex[apex.index("public static String supportNow(") :]
    # Who asks comes from the user record, never from the page.
    assert "'requester_email' => UserInfo.getUserEmail()" in support
    assert support.index("requireSignedIn();") < support.index("RSBridgeActions.send(")
    assert support.index("RSBridgeActions.requireReadable(caseId);") < support.index(
        "RSBridgeActions.send("
    )
    assert "UserInfo.getUserType() == 'Guest'" in apex


def test_portal_users_get_the_portal_class_only() -> None:
    root = etree.fromstring(
        _files()[f"{SOURCE_DIR}/permissionsets/RS_Portal_User.permissionset-meta.xml"]
    )
    assert XSD.validate(root.getroottree()), XSD.error_log
    classes = [a.findtext(M + "apexClass") for a in root.iter(M + "classAccesses")]
    assert classes == [PORTAL_CLASS]  # not RSBridgeActions: no keys, no Jump
    assert APEX_CLASS not in classes
    assert list(root.iter(M + "objectPermissions")) == []
    assert list(root.iter(M + "fieldPermissions")) == []
