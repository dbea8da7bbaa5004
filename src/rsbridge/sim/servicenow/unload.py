"""Reading ``<unload>`` documents: the XML ServiceNow exports ("Export XML") and imports.

::

    <?xml version="1.0" encoding="UTF-8"?>
    <unload unload_date="2024-05-01 10:00:00">
      <sys_db_object action="INSERT_OR_UPDATE">
        <name>u_rs_session</name><label>Remote Session</label>
        <super_class display_value="">...</super_class>
        <sys_id>...</sys_id>
      </sys_db_object>
      <sys_dictionary action="INSERT_OR_UPDATE">
        <name>u_rs_session</name><element>u_lsid</element>
        <internal_type display_value="String">string</internal_type>
        <max_length>40</max_length><column_label>LSID</column_label>
      </sys_dictionary>
    </unload>

Each child of ``<unload>`` is one record: the element name is the table, its
``action`` attribute is ``INSERT_OR_UPDATE`` (the default), ``INSERT`` or ``DELETE``,
and each grandchild is a field whose text is the stored value (a reference holds the
sys_id, or for ``super_class`` / ``reference`` possibly the table name; the
``display_value`` attribute is kept for resolving labels).

Hardening: a document declaring a DTD is refused, entities are never resolved and
nothing is fetched from the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree


class UnloadError(ValueError):
    """The document is not a readable ``<unload>`` (malformed XML, DTD, wrong root)."""


@dataclass(slots=True)
class UnloadRow:
    """One record of an unload document."""

    table: str
    action: str
    values: dict[str, str]
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    """Attributes of field elements that carry any (``display_value`` ...)."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_unload(text: str | bytes) -> list[UnloadRow]:
    """The records of an unload document, in document order."""
    return parse_records(text, "unload")


#: Elements of a ``<record_update>`` that group records instead of being one: a form's
#: related lists travel as ``<sys_ui_related>`` holding the list and its entries.
_GROUPS = frozenset({"sys_ui_related"})


def _record_elements(root: etree._Element) -> list[etree._Element]:
    found = []
    for element in root:
        if not isinstance(element.tag, str):
            continue
        if root.tag == "record_update" and element.tag in _GROUPS:
            found += [child for child in element if isinstance(child.tag, str)]
        else:
            found.append(element)
    return found


def parse_records(text: str | bytes, root_tag: str) -> list[UnloadRow]:
    """The records (children of the root ``root_tag``) of an unload document or of an
    update's ``<record_update>`` payload (see :mod:`.update_set`; a ``<sys_ui_related>``
    group stands for the records it holds), in document order."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise UnloadError(f"malformed {root_tag} XML: {exc}") from None
    docinfo = root.getroottree().docinfo
    if getattr(docinfo, "doctype", "") or docinfo.internalDTD is not None:
        # Exports never carry one; a DTD can only be a mistake or an entity attack.
        raise UnloadError("the document declares a DTD; unload XML never does, so it is refused")
    if root.tag != root_tag:
        raise UnloadError(f"expected an <{root_tag}> document, found <{root.tag}>")
    rows = []
    for element in _record_elements(root):
        values: dict[str, str] = {}
        attributes: dict[str, dict[str, str]] = {}
        for child in element:
            if not isinstance(child.tag, str):
                continue
            values[child.tag] = child.text or ""
            if child.attrib:
                attributes[child.tag] = {str(k): str(v) for k, v in child.attrib.items()}
        action = (element.get("action") or "INSERT_OR_UPDATE").upper()
        rows.append(UnloadRow(element.tag, action, values, attributes))
    return rows
