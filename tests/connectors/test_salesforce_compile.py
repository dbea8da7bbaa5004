"""The package's Apex and Lightning web components compile with Salesforce's own parsers.

One node invocation (salesforce_compile.py) checks every Apex class and component file
of the generated package, together with broken samples that must be refused, so a
checker that accepted everything would fail here too.
"""

from __future__ import annotations

import pytest

from rsbridge.connectors.salesforce.package import package_files
from rsbridge.connectors.salesforce.schema import Schema
from tests.connectors.salesforce_compile import compile_problems

_CHECKED = (".cls", ".trigger", ".js", ".html")
BROKEN = {
    "broken/classes/Broken.cls": "public class Broken { void f() { Integer x = ; } }",
    "broken/classes/NoType.cls": "public class NoType { private static final X = 'a'; }",
    "broken/lwc/brokenJs/brokenJs.js": (
        "import { LightningElement, api } from 'lwc';\n"
        "export default class BrokenJs extends LightningElement { @api; }\n"
    ),
    "broken/lwc/brokenHtml/brokenHtml.html": (
        "<template><lightning-button onclick={handle()}></lightning-button></template>\n"
    ),
    "broken/lwc/noRoot/noRoot.html": "<div>{text}</div>\n",
}


@pytest.fixture(scope="module")
def problems() -> dict[str, list[str]]:
    files = package_files(Schema.build(), integration="acme-sfdc")
    sources = {p: c.decode() for p, c in files.items() if p.endswith(_CHECKED)}
    return compile_problems({**sources, **BROKEN})


def test_every_apex_class_and_component_of_the_package_compiles(
    problems: dict[str, list[str]],
) -> None:
    package = {p: v for p, v in problems.items() if p not in BROKEN}
    assert any(p.endswith(".cls") for p in package)
    assert any(p.endswith(".html") for p in package) and any(p.endswith(".js") for p in package)
    failed = {p: v for p, v in package.items() if v}
    assert failed == {}


@pytest.mark.parametrize("path", sorted(BROKEN))
def test_the_check_refuses_broken_sources(problems: dict[str, list[str]], path: str) -> None:
    assert problems[path], f"{path} was accepted"
