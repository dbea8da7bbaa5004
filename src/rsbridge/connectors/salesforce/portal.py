"""A "Get Support Now" component for a self-service portal (Experience Cloud).

The vendor's integration lets a customer start a session from a Case; rsbridge's actions
API has the routes for it (``GET /actions/issues``, ``POST /actions/support-now``). The
Lightning web component ``rsbridgeSupportNow``, placed on the Case detail page of an
Experience Cloud site (targets ``lightningCommunity__Page`` and
``lightningCommunity__Default``, the record id from the page: ``{!recordId}``), lists the
issues and asks for a start URL through the Apex class ``RSBridgeSupportNow``. That class
sends the signed-in customer's e-mail address as ``requester_email``, so rsbridge refuses
a Case whose contact is someone else, and calls through the Named Credential with the
portal's own principal (:data:`.credentials.PORTAL_PRINCIPAL`), whose token an rsbridge
client limited to those two routes holds.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from lxml import etree

from rsbridge.connectors.salesforce.mdxml import add, document, element

PORTAL_CLASS: Final = "RSBridgeSupportNow"
PORTAL_TEST_CLASS: Final = "RSBridgeSupportNowTest"
PORTAL_COMPONENT: Final = "rsbridgeSupportNow"
PORTAL_LABEL: Final = "Get Support Now"
START_TYPES: Final = ("chat", "full")
"""What the site builder may choose: a click-to-chat or a full session."""


def portal_files(*, source_dir: str, api_version: str) -> dict[str, bytes]:
    """The portal component and its Apex class, by path under the project."""
    sources = resources.files("rsbridge.connectors.salesforce") / "metadata"
    files: dict[str, bytes] = {}
    for name in (PORTAL_CLASS, PORTAL_TEST_CLASS):
        files[f"{source_dir}/classes/{name}.cls"] = (
            sources / "classes" / f"{name}.cls"
        ).read_bytes()
        meta = element("ApexClass")
        add(meta, "apiVersion", api_version)
        add(meta, "status", "Active")
        files[f"{source_dir}/classes/{name}.cls-meta.xml"] = document(meta)
    folder = sources / "lwc" / PORTAL_COMPONENT
    base = f"{source_dir}/lwc/{PORTAL_COMPONENT}/{PORTAL_COMPONENT}"
    for suffix in ("html", "js"):
        files[f"{base}.{suffix}"] = (folder / f"{PORTAL_COMPONENT}.{suffix}").read_bytes()
    files[f"{base}.js-meta.xml"] = document(_bundle(api_version))
    return files


def _bundle(api_version: str) -> etree._Element:
    """Exposed to Experience Builder; the site's Case page supplies the record id."""
    root = element("LightningComponentBundle")
    add(root, "apiVersion", api_version)
    add(root, "isExposed", "true")
    add(root, "masterLabel", PORTAL_LABEL)
    targets = add(root, "targets")
    add(targets, "target", "lightningCommunity__Page")
    add(targets, "target", "lightningCommunity__Default")
    configs = add(root, "targetConfigs")
    config = add(configs, "targetConfig")
    config.set("targets", "lightningCommunity__Default")
    record = add(config, "property")
    for key, value in (
        ("name", "recordId"),
        ("type", "String"),
        ("label", "Case ID"),
        ("default", "{!recordId}"),
    ):
        record.set(key, value)
    start = add(config, "property")
    for key, value in (
        ("name", "startType"),
        ("type", "String"),
        ("label", "Session type"),
        ("datasource", ",".join(START_TYPES)),
        ("default", START_TYPES[0]),
    ):
        start.set(key, value)
    return root
