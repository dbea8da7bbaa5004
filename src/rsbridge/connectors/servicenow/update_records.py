"""The pieces an update set is built of: stable sys_ids, records and their updates.

Shared by :mod:`.update_set` (tables, roles, ACLs, properties, REST message) and
:mod:`.instance_ui` (UI actions, widget, pages, menus, related lists).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from lxml import etree

#: The ``type`` label of a ``sys_update_xml`` record, by the table of its main record.
UPDATE_TYPES = {
    "sys_db_object": "Table",
    "sys_dictionary": "Dictionary",
    "sys_user_role": "Role",
    "sys_security_acl": "Access Control",
    "sys_properties": "System Property",
    "sys_rest_message": "REST Message",
    "sys_rest_message_fn": "HTTP Method",
    "sys_script_include": "Script Include",
    "sys_ui_action": "UI Action",
    "sp_widget": "Widget",
    "sys_ui_page": "UI Page",
    "sys_app_application": "Application Menu",
    "sys_app_module": "Module",
    "sys_ui_related_list": "Related Lists",
}


def stable_sys_id(*parts: str) -> str:
    """A sys_id (32 lowercase hex digits) derived from ``parts``: the same parts, the same id."""
    return hashlib.sha256("\x1f".join(("rsbridge", *parts)).encode()).hexdigest()[:32]


@dataclass(slots=True)
class Update:
    """One ``sys_update_xml``: its main record's table and sys_id, the update's name, its
    target (what the platform lists it as) and the records its payload carries."""

    table: str
    sys_id: str
    update_name: str
    target: str
    records: list[etree._Element]


def record(table: str, sys_id: str, /, **values: str | tuple[str, str]) -> etree._Element:
    """A payload record of ``table`` (``INSERT_OR_UPDATE``) with its fields."""
    element = etree.Element(table, action="INSERT_OR_UPDATE")
    fields(element, **values, sys_id=sys_id, sys_update_name=f"{table}_{sys_id}")
    return element


def single(table: str, sys_id: str, target: str, /, **values: str | tuple[str, str]) -> Update:
    """An update carrying one record, named ``<table>_<sys_id>`` as the platform names it."""
    return Update(table, sys_id, f"{table}_{sys_id}", target, [record(table, sys_id, **values)])


def fields(element: etree._Element, /, **values: str | tuple[str, str]) -> None:
    """Child elements in name order (as the platform writes them); a ``(value,
    display)`` pair is a reference with its ``display_value``."""
    for tag in sorted(values):
        value = values[tag]
        if isinstance(value, tuple):
            child = etree.SubElement(element, tag, display_value=value[1])
            child.text = value[0]
        else:
            etree.SubElement(element, tag).text = value
