"""Writing Metadata API XML: the namespace, elements, and files as Salesforce writes them."""

from __future__ import annotations

from typing import Final

from lxml import etree

NS: Final = "http://soap.sforce.com/2006/04/metadata"
_DECLARATION: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def element(tag: str) -> etree._Element:
    """A document element ``tag`` in the Metadata API namespace (the default namespace)."""
    return etree.Element(f"{{{NS}}}{tag}", nsmap={None: NS})  # type: ignore[dict-item]


def add(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    """A child ``tag`` of ``parent``, with ``text`` if given."""
    element = etree.SubElement(parent, f"{{{NS}}}{tag}")
    if text is not None:
        element.text = text
    return element


def document(element: etree._Element) -> bytes:
    """The XML file: declared as the files Salesforce itself writes, 4-space indents."""
    etree.indent(element, space="    ")
    body: bytes = etree.tostring(element, encoding="UTF-8")
    return _DECLARATION + body + b"\n"
