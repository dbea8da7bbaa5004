"""The Salesforce Classic Case buttons: Visualforce pages behind Case detail-page buttons.

The vendor guide's Classic buttons (Generate Session Key, BeyondTrust Session Key, Web
Session Key, Show Case ID; its Jump forms) become two buttons on the Case, each a
``WebLink`` of type ``page`` that opens a Visualforce page on the Case's standard
controller, extended by the Apex class ``RSBridgeCaseButtons``:

* **Remote Support Session Key** (``RSBridgeSessionKey``): the Case ID, then a session key
  with its URL and expiry, or the representative console URL, and an e-mail button;
* **Remote Support Jump** (``RSBridgeJump``): the Jump form.

The extension calls ``RSBridgeActions``, the class the Lightning components use, so both
experiences send the same requests through the same Named Credential. Files in source
format: ``pages/<Page>.page`` and ``.page-meta.xml`` (Metadata API: ApexPage),
``objects/Case/webLinks/<Button>.webLink-meta.xml`` (WebLink, a CustomObject's
``webLinks`` decomposed into a file each).
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from lxml import etree

from rsbridge.connectors.salesforce.mdxml import add, document, element

CONTROLLER: Final = "RSBridgeCaseButtons"
CONTROLLER_TEST: Final = "RSBridgeCaseButtonsTest"
PAGES: Final = {
    "RSBridgeSessionKey": ("RS_Session_Key_Button", "Remote Support Session Key"),
    "RSBridgeJump": ("RS_Jump_Button", "Remote Support Jump"),
}
"""Visualforce page name: (its Case button's name, label)."""


def classic_files(*, source_dir: str, api_version: str) -> dict[str, bytes]:
    """The controller extension and its tests, the pages and the Case buttons, by path."""
    sources = resources.files("rsbridge.connectors.salesforce") / "metadata"
    files: dict[str, bytes] = {}
    for name in (CONTROLLER, CONTROLLER_TEST):
        files[f"{source_dir}/classes/{name}.cls"] = (
            sources / "classes" / f"{name}.cls"
        ).read_bytes()
        meta = element("ApexClass")
        add(meta, "apiVersion", api_version)
        add(meta, "status", "Active")
        files[f"{source_dir}/classes/{name}.cls-meta.xml"] = document(meta)
    for page, (button, label) in PAGES.items():
        files[f"{source_dir}/pages/{page}.page"] = (sources / "pages" / f"{page}.page").read_bytes()
        files[f"{source_dir}/pages/{page}.page-meta.xml"] = document(_page(label, api_version))
        files[f"{source_dir}/objects/Case/webLinks/{button}.webLink-meta.xml"] = document(
            _button(button, label, page)
        )
    return files


def _page(label: str, api_version: str) -> etree._Element:
    root = element("ApexPage")
    add(root, "apiVersion", api_version)
    add(root, "availableInTouch", "false")
    # The pages do nothing on GET; their actions are form posts, which Visualforce
    # protects against cross-site requests itself.
    add(root, "confirmationTokenRequired", "false")
    add(root, "description", f"rsbridge: {label}, for the Case button of Salesforce Classic.")
    add(root, "label", label)
    return root


def _button(name: str, label: str, page: str) -> etree._Element:
    """A Case detail-page button that opens ``page`` in the window, with the sidebar."""
    root = element("WebLink")
    add(root, "fullName", name)
    add(root, "availability", "online")
    add(root, "description", f"rsbridge: opens the Visualforce page {page}.")
    add(root, "displayType", "button")
    add(root, "height", "600")
    add(root, "linkType", "page")
    add(root, "masterLabel", label)
    add(root, "openType", "sidebar")
    add(root, "page", page)
    add(root, "protected", "false")
    return root
