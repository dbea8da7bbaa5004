"""The Case buttons: Lightning web components and quick actions that call rsbridge.

The vendor's package puts session keys and Jump on the Case (buttons, quick actions and
Lightning components that call the appliance from Salesforce). rsbridge's take: two small
Lightning web components, each also a Case quick action, that call rsbridge's actions API
through one Apex class (``RSBridgeActions``) and show the answer:

* ``rsbridgeSessionKey``: the Case ID, then a session key with its URL and expiry (or the
  representative console URL, per the integration's ``session_key_source``) and a button
  that e-mails the key to the Case's contact;
* ``rsbridgeJump``: the Jump forms (Jump Item search, push and start local or remote, RDP,
  VNC, shell, vPro; Jumpoint, username, protocol, port; desktop or web console).

Apex makes the call, never the browser: the request carries rsbridge's client token, kept
in the Named Credential ``rsbridge`` (:mod:`.credentials`; an administrator enters the token), and
names the user Salesforce authenticated. The sources are package data under
``metadata/``; the integration's name is the one value filled in.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Final

from lxml import etree

from rsbridge.connectors.salesforce.mdxml import add, document, element
from rsbridge.errors import ConfigurationError

APEX_CLASS: Final = "RSBridgeActions"
APEX_TEST_CLASS: Final = "RSBridgeActionsTest"
COMPONENTS: Final = {
    "rsbridgeSessionKey": ("RS_Session_Key", "Remote Support Session Key"),
    "rsbridgeJump": ("RS_Jump", "Remote Support Jump"),
}
"""Component name: (its Case quick action's name, label)."""

_PLACEHOLDER: Final = "{{INTEGRATION}}"
_INTEGRATION: Final = re.compile(r"[A-Za-z0-9._-]{1,100}")


def component_files(integration: str, *, source_dir: str, api_version: str) -> dict[str, bytes]:
    """The Apex classes, components and quick actions, by path under the project."""
    # The name lands in an Apex string literal: only the characters integration names have.
    if not _INTEGRATION.fullmatch(integration):
        raise ConfigurationError(f"{integration!r} is not an integration name")
    sources = resources.files("rsbridge.connectors.salesforce") / "metadata"
    files: dict[str, bytes] = {}
    for name in (APEX_CLASS, APEX_TEST_CLASS):
        text = (sources / "classes" / f"{name}.cls").read_text(encoding="utf-8")
        files[f"{source_dir}/classes/{name}.cls"] = text.replace(_PLACEHOLDER, integration).encode()
        meta = element("ApexClass")
        add(meta, "apiVersion", api_version)
        add(meta, "status", "Active")
        files[f"{source_dir}/classes/{name}.cls-meta.xml"] = document(meta)
    for component, (action, label) in COMPONENTS.items():
        folder = sources / "lwc" / component
        for suffix in ("html", "js"):
            path = f"{source_dir}/lwc/{component}/{component}.{suffix}"
            files[path] = (folder / f"{component}.{suffix}").read_bytes()
        files[f"{source_dir}/lwc/{component}/{component}.js-meta.xml"] = document(
            _bundle(label, api_version)
        )
        files[f"{source_dir}/quickActions/Case.{action}.quickAction-meta.xml"] = document(
            _quick_action(component, label)
        )
    return files


def _bundle(label: str, api_version: str) -> etree._Element:
    """The component's configuration: on Case record pages (App Builder) and as a
    screen quick action."""
    root = element("LightningComponentBundle")
    add(root, "apiVersion", api_version)
    add(root, "isExposed", "true")
    add(root, "masterLabel", label)
    targets = add(root, "targets", None)
    add(targets, "target", "lightning__RecordPage")
    add(targets, "target", "lightning__RecordAction")
    configs = add(root, "targetConfigs", None)
    page = add(configs, "targetConfig", None)
    page.set("targets", "lightning__RecordPage")
    add(add(page, "objects", None), "object", "Case")
    action = add(configs, "targetConfig", None)
    action.set("targets", "lightning__RecordAction")
    add(action, "actionType", "ScreenAction")
    return root


def _quick_action(component: str, label: str) -> etree._Element:
    root = element("QuickAction")
    add(root, "actionSubtype", "ScreenAction")
    add(root, "label", label)
    add(root, "lightningWebComponent", component)
    add(root, "optionsCreateFeedItem", "false")
    add(root, "type", "LightningWebComponent")
    return root
