"""Load custom objects and fields from a Salesforce source-format directory.

The layout is what ``sf project retrieve`` writes and what rsbridge's package generator
produces: ``objects/<Object>/<Object>.object-meta.xml`` (``CustomObject``: ``label``,
``pluralLabel``, ``nameField``) and ``objects/<Object>/fields/<Field>.field-meta.xml``
(``CustomField``: ``fullName``, ``label``, ``type``, ``length``, ``precision``, ``scale``,
``referenceTo``, ``relationshipName``, ``externalId``, ``unique``, ``required``,
``defaultValue``, ``valueSet``), in the namespace ``http://soap.sforce.com/2006/04/metadata``
(Metadata API Developer Guide, CustomObject and CustomField). Fields under a standard object's
folder (``objects/Case/fields/...``) are added to it. The directory may be the package root,
its ``force-app/main/default`` or ``objects`` folder.

Visualforce pages (``pages/<Page>.page`` with ``<Page>.page-meta.xml``: ApexPage) and custom
buttons and links (``objects/<Object>/webLinks/<Name>.webLink-meta.xml``: WebLink) become
records of the setup objects ``ApexPage`` and ``WebLink``, which the API queries as an org's
(Object Reference). A button that opens a page must name a page of the package or the org.
The object reference lists no page field on ``WebLink``; the simulator keeps the page's name
in ``Url``.
"""

from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

from rsbridge.sim.salesforce.errors import SalesforceError
from rsbridge.sim.salesforce.ids import base62
from rsbridge.sim.salesforce.schema import FieldDef, ObjectDef, system_fields
from rsbridge.sim.salesforce.state import SimSalesforceState

NS = "http://soap.sforce.com/2006/04/metadata"
_TYPES = {
    "Text": "string",
    "TextArea": "textarea",
    "LongTextArea": "textarea",
    "Html": "textarea",
    "Number": "double",
    "Currency": "currency",
    "Percent": "percent",
    "DateTime": "datetime",
    "Date": "date",
    "Checkbox": "boolean",
    "Lookup": "reference",
    "MasterDetail": "reference",
    "Url": "url",
    "Email": "email",
    "Phone": "phone",
    "Picklist": "picklist",
    "AutoNumber": "string",
}
_LOOKUPS = frozenset({"Lookup", "MasterDetail"})
_DEFAULT_LENGTHS = {"TextArea": 255, "Url": 255, "Email": 80, "Phone": 40, "Picklist": 255}
#: Custom object key prefixes as orgs hand them out (``a0X``, ``a0Y``...).
_FIRST_CUSTOM_PREFIX = 33  # base 62 "0X"


class PackageError(Exception):
    """The directory is not a readable source-format package."""


def _parse(path: Path, root_tag: str) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        root = etree.parse(str(path), parser).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise PackageError(f"{path.name}: {exc}") from None
    if root.tag != f"{{{NS}}}{root_tag}":
        raise PackageError(f"{path.name}: expected <{root_tag}> in {NS}")
    return root


def _text(element: etree._Element, name: str) -> str | None:
    found = element.find(f"{{{NS}}}{name}")
    return found.text.strip() if found is not None and found.text else None


def _flag(element: etree._Element, name: str) -> bool:
    return (_text(element, name) or "").lower() == "true"


def _objects_dir(directory: Path) -> Path:
    for candidate in (directory / "force-app/main/default/objects", directory / "objects"):
        if candidate.is_dir():
            return candidate
    if directory.name == "objects" and directory.is_dir():
        return directory
    raise PackageError("no objects/ folder found")


def parse_field(path: Path) -> FieldDef:
    """A :class:`FieldDef` from a ``.field-meta.xml`` file."""
    root = _parse(path, "CustomField")
    name = _text(root, "fullName") or path.name.removesuffix(".field-meta.xml")
    kind = _text(root, "type") or ""
    if kind not in _TYPES:
        raise PackageError(f"{path.name}: unsupported field type {kind!r}")
    length = int(_text(root, "length") or _DEFAULT_LENGTHS.get(kind, 0))
    relationship = _text(root, "relationshipName")
    values = tuple(
        v.findtext(f"{{{NS}}}fullName") or ""
        for v in root.iterfind(f"{{{NS}}}valueSet/{{{NS}}}valueSetDefinition/{{{NS}}}value")
    )
    default = _text(root, "defaultValue")
    definition = FieldDef(
        name,
        _TYPES[kind],
        _text(root, "label") or "",
        length,
        required=_flag(root, "required") or kind == "MasterDetail",
        createable=kind != "AutoNumber",
        updateable=kind != "AutoNumber",
        external_id=_flag(root, "externalId"),
        unique=_flag(root, "unique"),
        reference_to=tuple(r.text or "" for r in root.iterfind(f"{{{NS}}}referenceTo")),
        # The parent relationship is the field's name with ``__r``; the file's
        # ``relationshipName`` names the children from the parent's side.
        relationship_name=name.removesuffix("__c") + "__r" if kind in _LOOKUPS else None,
        child_relationship=f"{relationship}__r" if relationship else None,
        picklist_values=values,
        restricted=(root.findtext(f"{{{NS}}}valueSet/{{{NS}}}restricted") or "") == "true",
        auto_number=kind == "AutoNumber",
        custom=True,
        precision=int(_text(root, "precision") or 0),
        scale=int(_text(root, "scale") or 0),
    )
    if kind == "Checkbox":
        definition.default = (default or "false").lower() == "true"
    elif default and default.startswith('"') and default.endswith('"'):
        definition.default = default[1:-1]  # a formula string literal
    return definition


def load_package(state: SimSalesforceState, directory: Path) -> list[str]:
    """Define the package's objects and fields in ``state``; returns the object names
    touched (custom ones created, standard ones extended)."""
    objects = _objects_dir(directory)
    touched: list[str] = []
    with state.lock:
        pages = _load_pages(state, objects.parent / "pages")
        for folder in sorted(p for p in objects.iterdir() if p.is_dir()):
            name = folder.name
            meta = folder / f"{name}.object-meta.xml"
            definition = state.object(name)
            if definition is None:
                if not meta.is_file():
                    raise PackageError(f"{name}: no {meta.name} and no such standard object")
                definition = _custom_object(state, name, meta)
            fields_dir = folder / "fields"
            if fields_dir.is_dir():
                for path in sorted(fields_dir.glob("*.field-meta.xml")):
                    definition.add(parse_field(path))
            state.define_object(definition)
            touched.append(definition.name)
            links_dir = folder / "webLinks"
            if links_dir.is_dir():
                for path in sorted(links_dir.glob("*.webLink-meta.xml")):
                    _load_link(state, definition.name, path, pages)
        for name in touched:
            for column in state.objects[name.lower()].fields.values():
                for target in column.reference_to:
                    if state.object(target) is None:
                        raise PackageError(f"{name}.{column.name}: unknown object {target}")
    return touched


def _custom_object(state: SimSalesforceState, name: str, meta: Path) -> ObjectDef:
    root = _parse(meta, "CustomObject")
    customs = sum(1 for o in state.objects.values() if o.custom)
    prefix = "a" + base62(_FIRST_CUSTOM_PREFIX + customs, 2)
    definition = ObjectDef(
        name,
        prefix,
        _text(root, "label") or "",
        _text(root, "pluralLabel") or "",
        custom=True,
    )
    # Detail objects of a master-detail relationship have no owner of their own.
    definition.add(*system_fields(owner=_text(root, "sharingModel") != "ControlledByParent"))
    name_field = root.find(f"{{{NS}}}nameField")
    auto = name_field is not None and _text(name_field, "type") == "AutoNumber"
    definition.add(
        FieldDef(
            "Name",
            "string",
            (_text(name_field, "label") if name_field is not None else None) or "Name",
            80,
            createable=not auto,
            updateable=not auto,
            auto_number=auto,
        )
    )
    if auto and name_field is not None:
        definition.auto_number_format = _text(name_field, "displayFormat") or "{0}"
    return definition


_PAGE_TAG = re.compile(r"<apex:page\b([^>]*)>")
_ATTRIBUTE = re.compile(r'(\w+)\s*=\s*"([^"]*)"')


def _save(
    state: SimSalesforceState, object_name: str, key: dict[str, str], values: dict[str, object]
) -> None:
    """Create the setup record, or update it when a deploy names it again."""
    (field, value), *rest = key.items()
    found = [r for r in state.find_by(object_name, field, value) if all(r[k] == v for k, v in rest)]
    try:
        if found:
            state.update(object_name, str(found[0]["Id"]), values, user_id=None)
        else:
            state.create(object_name, {**key, **values}, user_id=None)
    except SalesforceError as exc:
        raise PackageError(f"{object_name} {value}: {exc.message}") from None


def _load_pages(state: SimSalesforceState, pages_dir: Path) -> set[str]:
    """Visualforce pages as ``ApexPage`` records; returns their names."""
    names: set[str] = set()
    if not pages_dir.is_dir():
        return names
    for path in sorted(pages_dir.glob("*.page")):
        meta = _parse(path.with_name(path.name + "-meta.xml"), "ApexPage")
        try:
            markup = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PackageError(f"{path.name}: {exc}") from None
        tag = _PAGE_TAG.search(markup)
        if tag is None or markup[: tag.start()].strip():
            raise PackageError(f"{path.name}: a Visualforce page starts with <apex:page>")
        attributes = dict(_ATTRIBUTE.findall(tag.group(1)))
        if "controller" in attributes:
            kind, key = "Custom", attributes["controller"]
        elif "standardController" in attributes:
            kind = "StandardSet" if "recordSetVar" in attributes else "Standard"
            key = attributes["standardController"]
        else:
            kind, key = "Not Specified", ""
        name = path.name.removesuffix(".page")
        _save(
            state,
            "ApexPage",
            {"Name": name},
            {
                "MasterLabel": _text(meta, "label") or name,
                "ApiVersion": float(_text(meta, "apiVersion") or 0),
                "ControllerType": kind,
                "ControllerKey": key or None,
                "Description": _text(meta, "description"),
                "Markup": markup,
                "IsConfirmationTokenRequired": _flag(meta, "confirmationTokenRequired"),
            },
        )
        names.add(name)
    return names


def _load_link(state: SimSalesforceState, object_name: str, path: Path, pages: set[str]) -> None:
    """A custom button or link of ``object_name`` as a ``WebLink`` record."""
    root = _parse(path, "WebLink")
    name = path.name.removesuffix(".webLink-meta.xml")
    if (_text(root, "fullName") or name) != name:
        raise PackageError(f"{path.name}: fullName {_text(root, 'fullName')!r} is not {name!r}")
    link_type = _text(root, "linkType") or ""
    target = _text(root, "url")
    if link_type == "page":
        target = _text(root, "page") or ""
        if target not in pages and not state.find_by("ApexPage", "Name", target):
            raise PackageError(f"{path.name}: no Visualforce page {target!r} in the package or org")
    _save(
        state,
        "WebLink",
        {"Name": name, "PageOrSobjectType": object_name},
        {
            "MasterLabel": _text(root, "masterLabel"),
            "DisplayType": _text(root, "displayType"),
            "LinkType": link_type,
            "OpenType": _text(root, "openType"),
            "Url": target,
            "Description": _text(root, "description"),
        },
    )
