"""The Case buttons of the Salesforce package: they ask rsbridge for what it answers.

Apex and Lightning web components cannot run here. What is checked instead: the metadata
files validate (salesforce_data/metadata.xsd; the component configuration follows the
Salesforce docs' quick-action sample: ``lightning__RecordAction`` with a ``ScreenAction``
target config), the Apex calls routes the actions API serves with field names and values
its request models accept, the components offer only values those models accept, and the
JavaScript parses (node, when it is installed). test_salesforce_compile.py compiles the Apex
and the components with Salesforce's own parsers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, get_args

import pytest
from lxml import etree

from rsbridge.actions.models import JumpKind, JumpRequest, SessionKeyRequest
from rsbridge.config import Config
from rsbridge.connectors.salesforce.classic import CONTROLLER
from rsbridge.connectors.salesforce.components import (
    APEX_CLASS,
    APEX_TEST_CLASS,
    COMPONENTS,
    component_files,
)
from rsbridge.connectors.salesforce.credentials import NAMED_CREDENTIAL
from rsbridge.connectors.salesforce.mdxml import NS
from rsbridge.connectors.salesforce.package import SOURCE_DIR, package_files
from rsbridge.connectors.salesforce.schema import Schema
from rsbridge.errors import ConfigurationError
from rsbridge.web.actions import action_routes

DATA = Path(__file__).parent / "salesforce_data"
XSD = etree.XMLSchema(etree.parse(str(DATA / "metadata.xsd")))
M = f"{{{NS}}}"


def _files(integration: str = "acme-sfdc") -> dict[str, bytes]:
    return package_files(Schema.build(), integration=integration)


def _apex(files: dict[str, bytes]) -> str:
    return files[f"{SOURCE_DIR}/classes/{APEX_CLASS}.cls"].decode()


def _method(apex: str, name: str) -> str:
    """The source of the Apex method ``name``, up to the next method."""
    start = apex.index(f"public static String {name}(")
    end = apex.find("@AuraEnabled", start)
    return apex[start : end if end != -1 else len(apex)]


def _keys(source: str) -> set[str]:
    """The JSON field names an Apex method puts in its request body."""
    return set(re.findall(r"'([a-z_]+)' =>", source)) | set(
        re.findall(r"body\.put\('([a-z_]+)'", source)
    )


def test_the_metadata_files_validate() -> None:
    files = _files()
    for name in (APEX_CLASS, APEX_TEST_CLASS):
        assert f"{SOURCE_DIR}/classes/{name}.cls" in files
    for component, (action, label) in COMPONENTS.items():
        base = f"{SOURCE_DIR}/lwc/{component}/{component}"
        assert {f"{base}.html", f"{base}.js"} <= set(files)
        bundle = etree.fromstring(files[f"{base}.js-meta.xml"])
        quick = etree.fromstring(
            files[f"{SOURCE_DIR}/quickActions/Case.{action}.quickAction-meta.xml"]
        )
        for root in (bundle, quick):
            assert XSD.validate(root.getroottree()), XSD.error_log
        assert quick.findtext(M + "lightningWebComponent") == component
        assert quick.findtext(M + "type") == "LightningWebComponent"
        assert quick.findtext(M + "actionSubtype") == "ScreenAction"
        assert quick.findtext(M + "label") == label
        assert [t.text for t in bundle.iter(M + "target")] == [
            "lightning__RecordPage",
            "lightning__RecordAction",
        ]
        configs = {c.get("targets"): c for c in bundle.iter(M + "targetConfig")}
        assert configs["lightning__RecordAction"].findtext(M + "actionType") == "ScreenAction"
        assert [o.text for o in configs["lightning__RecordPage"].iter(M + "object")] == ["Case"]
    for path, content in files.items():
        if path.endswith(".cls-meta.xml"):
            root = etree.fromstring(content)
            assert XSD.validate(root.getroottree()), XSD.error_log
            assert root.findtext(M + "status") == "Active"


def test_technicians_may_run_the_apex_class() -> None:
    files = _files()
    support = etree.fromstring(
        files[f"{SOURCE_DIR}/permissionsets/RS_Support_User.permissionset-meta.xml"]
    )
    assert [
        (a.findtext(M + "apexClass"), a.findtext(M + "enabled"))
        for a in support.iter(M + "classAccesses")
    ] == [(APEX_CLASS, "true"), (CONTROLLER, "true")]


def test_the_apex_names_the_integration_and_calls_through_the_named_credential() -> None:
    apex = _apex(_files("acme-sfdc"))
    assert "public static final String INTEGRATION = 'acme-sfdc';" in apex
    assert "{{" not in apex
    assert f"'callout:{NAMED_CREDENTIAL}'" in apex
    # No secret and no address in the code: both live in the Named Credential.
    assert "Bearer" not in apex and "https://" not in apex
    assert "UserInfo.getUserName()" in _method(apex, "sessionKey")
    test_class = _files()[f"{SOURCE_DIR}/classes/{APEX_TEST_CLASS}.cls"].decode()
    assert "@IsTest" in test_class and "{{" not in test_class


@pytest.mark.parametrize("name", ["", "a'b", "x\\", "line\nbreak", "a" * 101])
def test_an_integration_name_that_could_break_the_apex_is_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="not an integration name"):
        component_files(name, source_dir=SOURCE_DIR, api_version="60.0")


def test_the_apex_calls_routes_rsbridge_serves() -> None:
    apex = _apex(_files())
    called = set(re.findall(r"send\('POST', '(/actions/[a-z-]+)'", apex))
    served = {getattr(r, "path", "") for r in action_routes(Config(), lambda: None)}
    assert called == {"/actions/session-key", "/actions/jump"}
    assert called <= served


def test_the_request_bodies_are_ones_the_actions_api_accepts() -> None:
    apex = _apex(_files())
    samples: dict[str, Any] = {
        "integration": "acme-sfdc",
        "ticket": "500000000000001",
        "user": "abel.tuter@acme.example",
        "email": True,
        "request_id": "sf-1700000000000-abcd1234",
        "kind": "rdp",
        "ci": "WS-0042",
        "jumpoint": "Jumpoint A",
        "username": "admin",
        "protocol": "ssh",
        "port": 3389,
        "console": "rep",
        "output": "url",
    }
    session_keys = _keys(_method(apex, "sessionKey"))
    assert {"integration", "ticket", "user", "email", "request_id"} == session_keys
    SessionKeyRequest.model_validate({k: samples[k] for k in session_keys})
    jump_keys = _keys(_method(apex, "jump"))
    assert {"integration", "ticket", "output", "kind", "ci", "console", "port"} <= jump_keys
    JumpRequest.model_validate({k: samples[k] for k in jump_keys})


def test_the_jump_form_offers_only_what_rsbridge_accepts() -> None:
    js = _files()[f"{SOURCE_DIR}/lwc/rsbridgeJump/rsbridgeJump.js"].decode()
    offered = re.findall(r"value: '([a-z_]+)'", js)
    kinds = [v for v in offered if v in get_args(JumpKind)]
    assert sorted(kinds) == sorted(get_args(JumpKind))  # every Jump the vendor offers
    others = set(offered) - set(kinds)
    assert others == {"ssh", "telnet", "rep", "web"}
    for value in others:
        field = "protocol" if value in ("ssh", "telnet") else "console"
        JumpRequest.model_validate({"integration": "x", field: value})


def test_the_components_call_the_apex_methods_that_exist() -> None:
    files = _files()
    apex = _apex(files)
    for component in COMPONENTS:
        js = files[f"{SOURCE_DIR}/lwc/{component}/{component}.js"].decode()
        for method in re.findall(rf"@salesforce/apex/{APEX_CLASS}\.(\w+)'", js):
            assert f"public static String {method}(" in apex
        html = files[f"{SOURCE_DIR}/lwc/{component}/{component}.html"].decode()
        # Every handler the template names is a method of the component.
        for handler in re.findall(r"\son[a-z]+=\{(\w+)\}", html):
            assert re.search(rf"^    (async )?{handler}\(", js, re.MULTILINE), handler


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_component_javascript_parses(tmp_path: Path) -> None:
    files = _files()
    node = shutil.which("node")
    assert node is not None
    for component in COMPONENTS:
        js = files[f"{SOURCE_DIR}/lwc/{component}/{component}.js"].decode()
        # Node parses no decorators; `@api` is the only one the components use.
        plain = tmp_path / f"{component}.mjs"
        plain.write_text(js.replace("@api ", ""))
        result = subprocess.run(  # noqa: S603 (a fixed program on a file of ours)
            [node, "--check", str(plain)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
