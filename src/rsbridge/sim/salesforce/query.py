"""Running SOQL against the state: field paths, filtering, ordering, projection, upsert.

Projection follows the query resource's JSON: each record carries ``attributes``
(``type`` and ``url``), selected fields under their API names, and a parent relationship
as a nested object with its own ``attributes`` (``null`` when the reference is empty)
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_query.htm).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rsbridge.sim.salesforce import soql
from rsbridge.sim.salesforce.errors import SalesforceError, invalid_field
from rsbridge.sim.salesforce.schema import FieldDef, ObjectDef
from rsbridge.sim.salesforce.state import Record, SimSalesforceState

_NO_COLUMN = (
    "No such column '{name}' on entity '{obj}'. If you are attempting to use a custom field, "
    "be sure to append the '__c' after the custom field name. Please reference your WSDL or "
    "the describe call for the appropriate names."
)
_NO_RELATIONSHIP = (
    "Didn't understand relationship '{name}' in field path. If you are attempting to use a "
    "custom relationship, be sure to append the '__r' after the custom relationship name. "
    "Please reference your WSDL or the describe call for the appropriate names."
)
_NO_CHILD = (
    "Didn't understand relationship '{name}' in FROM part of query call. If you are "
    "attempting to use a custom relationship, be sure to append the '__r' after the custom "
    "relationship name. Please reference your WSDL or the describe call for the appropriate "
    "names."
)
_NO_TYPE = (
    "sObject type '{name}' is not supported. If you are attempting to use a custom object, be "
    "sure to append the '__c' after the entity name. Please reference your WSDL or the "
    "describe call for the appropriate names."
)


def record_url(version: str, object_name: str, record_id: str) -> str:
    """``/services/data/vXX.X/sobjects/{type}/{id}``."""
    return f"/services/data/v{version}/sobjects/{object_name}/{record_id}"


def attributes(version: str, object_name: str, record_id: str) -> dict[str, str]:
    """The ``attributes`` member of a record."""
    return {"type": object_name, "url": record_url(version, object_name, record_id)}


class _Paths:
    """Resolves dotted field paths of one query against the schema."""

    def __init__(self, state: SimSalesforceState, root: ObjectDef, text: str) -> None:
        self.state = state
        self.root = root
        self.text = text
        self.columns: dict[str, FieldDef] = {}
        self.spelt: dict[str, list[str]] = {}

    def resolve(self, ref: soql.FieldRef) -> FieldDef:
        key = ref.text.lower()
        if key in self.columns:
            return self.columns[key]
        current = self.root
        path = ref.path
        if len(path) > 1 and path[0].lower() == current.name.lower():
            path = path[1:]  # ``Case.Subject`` names the queried object itself
        for part in path[:-1]:
            link = current.relationship(part)
            target = self.state.object(link.reference_to[0]) if link else None
            if link is None or target is None:
                raise invalid_field(
                    soql.located(self.text, ref.pos, _NO_RELATIONSHIP.format(name=part))
                )
            current = target
        column = current.field(path[-1])
        if column is None:
            raise invalid_field(
                soql.located(
                    self.text, ref.pos, _NO_COLUMN.format(name=ref.text, obj=self.root.name)
                )
            )
        self.columns[key] = column
        return column

    def canonical(self, ref: soql.FieldRef) -> list[str]:
        """The path with each part spelt as defined (relationship names, field name)."""
        known = self.spelt.get(ref.text)
        if known is None:
            known = self.spelt[ref.text] = self._spell(ref)
        return known

    def _spell(self, ref: soql.FieldRef) -> list[str]:
        current = self.root
        path = ref.path
        if len(path) > 1 and path[0].lower() == current.name.lower():
            path = path[1:]
        out = []
        for part in path[:-1]:
            link = current.relationship(part)
            assert link is not None and link.relationship_name is not None  # resolved before
            out.append(link.relationship_name)
            target = self.state.object(link.reference_to[0])
            assert target is not None
            current = target
        column = current.field(path[-1])
        assert column is not None
        out.append(column.name)
        return out

    def value(self, record: Record, ref: soql.FieldRef) -> Any:
        return _walk(self.state, record, self.canonical(ref))[0]

    def type_of(self, ref: soql.FieldRef) -> str:
        return self.resolve(ref).type


def _parent(state: SimSalesforceState, record: Record, relationship: str) -> Record | None:
    definition = state.object_of_id(str(record.get("Id", "")))
    link = definition.relationship(relationship) if definition else None
    value = record.get(link.name) if link else None
    return state.find_by_id(value) if isinstance(value, str) else None


def _walk(state: SimSalesforceState, record: Record, path: list[str]) -> tuple[Any, bool]:
    current: Record | None = record
    for part in path[:-1]:
        current = _parent(state, current, part) if current is not None else None
        if current is None:
            return None, False
    return (current.get(path[-1]) if current is not None else None), True


def run(
    state: SimSalesforceState, text: str, version: str, *, include_deleted: bool = False
) -> tuple[int, list[Record]]:
    """``(totalSize, projected records)`` of a query; ``COUNT()`` gives no records."""
    with state.lock:
        query = soql.parse(text, datetime.fromtimestamp(state.clock(), UTC).date())
        root = state.object(query.object_name)
        if root is None:
            raise SalesforceError(
                400,
                "INVALID_TYPE",
                soql.located(query.text, query.object_pos, _NO_TYPE.format(name=query.object_name)),
            )
        paths = _checked_paths(state, root, query)
        children = [_child(state, root, sub) for sub in query.children]
        candidates = None if include_deleted else _equality(state, root, query.where)
        if candidates is None:
            candidates = state.all_records(root.name, deleted=include_deleted)
        rows = [r for r in candidates if soql.matches(query.where, r, paths.value, paths.type_of)]
        soql.sort_records(rows, query.order, paths.value, paths.type_of)
        rows = rows[query.offset :]
        if query.limit is not None:
            rows = rows[: query.limit]
        if query.count_only:
            return len(rows), []
        projected = []
        for row in rows:
            out = _project(state, paths, query, row, version)
            for child in children:
                out[child.name] = child.rows(row, version)
            projected.append(out)
        return len(rows), projected


def _checked_paths(state: SimSalesforceState, root: ObjectDef, query: soql.Query) -> _Paths:
    paths = _Paths(state, root, query.text)
    for ref in query.fields:
        paths.resolve(ref)
    for item in query.order:
        paths.resolve(item.field)
    _check_condition(paths, query.where)
    return paths


@dataclass
class _Child:
    """A parent-to-child sub-query: the child object, its reference field, its paths."""

    state: SimSalesforceState
    query: soql.Query
    name: str
    link: FieldDef
    paths: _Paths

    def rows(self, parent: Record, version: str) -> Record | None:
        """The children of ``parent`` as a nested query result (``None`` when none)."""
        found = self.state.find_by(self.paths.root.name, self.link.name, parent["Id"])
        rows = [
            r
            for r in found
            if soql.matches(self.query.where, r, self.paths.value, self.paths.type_of)
        ]
        soql.sort_records(rows, self.query.order, self.paths.value, self.paths.type_of)
        if self.query.limit is not None:
            rows = rows[: self.query.limit]
        if not rows:
            return None
        records = [_project(self.state, self.paths, self.query, r, version) for r in rows]
        return {"totalSize": len(records), "done": True, "records": records}


def _child(state: SimSalesforceState, root: ObjectDef, sub: soql.Query) -> _Child:
    wanted = sub.object_name.lower()
    for obj in state.objects.values():
        for column in obj.fields.values():
            relationship = column.child_relationship
            if relationship and relationship.lower() == wanted and root.name in column.reference_to:
                return _Child(state, sub, relationship, column, _checked_paths(state, obj, sub))
    raise SalesforceError(
        400,
        "INVALID_TYPE",
        soql.located(sub.text, sub.object_pos, _NO_CHILD.format(name=sub.object_name)),
    )


def _equality(
    state: SimSalesforceState, root: ObjectDef, condition: soql.Condition | None
) -> list[Record] | None:
    """The records an indexed ``field = value`` at the top of ``condition`` allows (or
    ``None``: scan them all); the whole condition is still checked on each."""
    items = (
        condition.items
        if isinstance(condition, soql.BoolOp) and condition.op == "AND"
        else [condition]
    )
    for item in items:
        if isinstance(item, soql.Compare) and item.op == "=" and item.value is not None:
            path = item.field.path
            if len(path) == 2 and path[0].lower() == root.name.lower():
                path = path[1:]
            if len(path) == 1 and not isinstance(item.value, soql.DateLiteral | soql.DateRange):
                return state.find_by(root.name, path[0], item.value)
    return None


def _check_condition(paths: _Paths, condition: soql.Condition | None) -> None:
    if isinstance(condition, soql.BoolOp):
        for item in condition.items:
            _check_condition(paths, item)
    elif isinstance(condition, soql.Not):
        _check_condition(paths, condition.item)
    elif condition is not None:
        paths.resolve(condition.field)


def _project(
    state: SimSalesforceState, paths: _Paths, query: soql.Query, record: Record, version: str
) -> Record:
    root_name = paths.root.name
    out: Record = {"attributes": attributes(version, root_name, record["Id"])}
    for ref in query.fields:
        path = paths.canonical(ref)
        target = out
        current: Record | None = record
        for part in path[:-1]:
            if part in target and target[part] is None:
                current = None
                break
            parent = _parent(state, current, part) if current is not None else None
            if parent is None:
                target[part] = None
                current = None
                break
            if part not in target:
                parent_type = state.object_of_id(parent["Id"])
                assert parent_type is not None
                target[part] = {"attributes": attributes(version, parent_type.name, parent["Id"])}
            target = target[part]
            current = parent
        if current is not None:
            target[path[-1]] = _public(state, version, current, path[-1])
    return out


def _public(state: SimSalesforceState, version: str, record: Record, name: str) -> Any:
    """A stored value as the API shows it (base64 fields read as their blob URL)."""
    definition = state.object_of_id(record["Id"])
    column = definition.field(name) if definition else None
    if column is not None and column.type == "base64" and definition is not None:
        return f"{record_url(version, definition.name, record['Id'])}/{column.name}"
    return record.get(name)


def public_record(
    state: SimSalesforceState, version: str, record: Record, fields: list[str] | None = None
) -> Record:
    """A record as ``GET /sobjects/{type}/{id}`` answers (all fields, or ``fields``)."""
    definition = state.object_of_id(record["Id"])
    assert definition is not None
    out: Record = {"attributes": attributes(version, definition.name, record["Id"])}
    names = [f.name for f in definition.fields.values()]
    if fields is not None:
        names = []
        for wanted in fields:
            column = definition.field(wanted)
            if column is None:
                raise invalid_field(
                    f"No such column '{wanted}' on sobject of type {definition.name}"
                )
            names.append(column.name)
    for name in names:
        out[name] = _public(state, version, record, name)
    return out


def upsert(
    state: SimSalesforceState,
    object_name: str,
    field_name: str,
    value: str,
    values: dict[str, Any],
    *,
    user_id: str | None,
    update_only: bool = False,
) -> tuple[Record, bool]:
    """Create or update by external id: ``(record, created)``; 300 when several match;
    ``update_only`` (``?updateOnly=true``): 404 instead of creating.

    The 300 body lists the matching records' URLs (as the docs' upsert page describes:
    "If the external ID matches multiple existing records, then a 300 error is returned").
    """
    with state.lock:
        definition = state.require_object(object_name)
        column = definition.field(field_name)
        if column is None or not (column.external_id or column.name == "Id"):
            raise SalesforceError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field_name}",
            )
        if any(k.lower() == column.name.lower() for k in values):
            values = {k: v for k, v in values.items() if k.lower() != column.name.lower()}
        matches = state.find_by(definition.name, column.name, value)
        if len(matches) > 1:
            raise MultipleMatchesError([r["Id"] for r in matches], definition.name)
        if matches:
            return state.update(definition.name, matches[0]["Id"], values, user_id=user_id), False
        if update_only:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        return state.create(definition.name, {**values, column.name: value}, user_id=user_id), True


class MultipleMatchesError(SalesforceError):
    """300: an external id value that several records carry."""

    def __init__(self, ids: list[str], object_name: str) -> None:
        super().__init__(300, "MULTIPLE_CHOICES", "The external ID matches several records")
        self.ids = ids
        self.object_name = object_name
