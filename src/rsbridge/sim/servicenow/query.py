"""Encoded queries (``sysparm_query``): parsing and evaluation.

Grammar, as the platform reads it::

    query     := group ("^NQ" group)*            # NQ: OR of whole queries
    group     := clause ("^" clause)*            # ^: AND
    clause    := condition ("^OR" condition)*    # ^OR binds tighter than ^
    condition := field operator value | "ORDERBY" field | "ORDERBYDESC" field | "EQ"

Field names are lower case (``caller_id``, ``u_lsid``), dot-walks included
(``caller_id.user_name``), so an upper-case ``OR``/``NQ`` prefix or an upper-case
operator (``LIKE``, ``IN``, ``ISEMPTY`` ...) is never part of a name. ``^^`` stands for
a literal ``^`` in a value.

Semantics copied from the platform (a MySQL-backed instance):

* text comparisons (``=``, ``LIKE``, ``STARTSWITH``, ``IN`` ...) ignore case;
* negative operators (``!=``, ``NOT LIKE``, ``NOT IN``) never match an empty value,
  because empty fields are SQL NULLs (``state!=7`` skips records without a state);
* on a reference field, ``=``/``IN`` compare the sys_id while ``LIKE``, ``STARTSWITH``
  and ``ENDSWITH`` look at the display value, as the list filter does;
* a condition naming an unknown field is *dropped* (the classic behaviour when the
  property ``glide.invalid_query.returns_no_rows`` is false); the parse result lists
  such conditions so the caller can apply the stricter behaviour instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from rsbridge.sim.servicenow.tables import NUMERIC_TYPES, Column

# Longest operators first where one is a prefix of another (INSTANCEOF before IN).
_OPERATORS = (
    "!=",
    ">=",
    "<=",
    "=",
    ">",
    "<",
    "NOT LIKE",
    "NOT IN",
    "NSAMEAS",
    "LIKE",
    "INSTANCEOF",
    "IN",
    "STARTSWITH",
    "ENDSWITH",
    "ISNOTEMPTY",
    "ISEMPTY",
    "EMPTYSTRING",
    "ANYTHING",
    "BETWEEN",
    "SAMEAS",
    "DOES NOT CONTAIN",
)
_CONDITION = re.compile(
    r"(?P<field>[a-z0-9_][a-z0-9_.]*?)(?P<op>"
    + "|".join(re.escape(op) for op in _OPERATORS)
    + r")(?P<value>.*)",
    re.DOTALL,
)
_NEGATIVE = frozenset({"!=", "NOT LIKE", "NOT IN", "DOES NOT CONTAIN", "NSAMEAS"})
_TEXT_OPERATORS = frozenset({"LIKE", "NOT LIKE", "STARTSWITH", "ENDSWITH", "DOES NOT CONTAIN"})


#: A stored record: column name -> string value.
Record = Mapping[str, str]
R = TypeVar("R", bound=Mapping[str, str])


class FieldResolver(Protocol):
    """What evaluation needs to know about the queried table and its records."""

    def column(self, path: str) -> Column | None:
        """The column a (possibly dot-walked) field path ends at, or ``None``."""

    def value(self, record: Record, path: str) -> str:
        """The stored value at ``path`` (``""`` through an empty reference)."""

    def display(self, record: Record, path: str) -> str:
        """The display value at ``path``."""

    def is_instance(self, record: Record, table: str) -> bool:
        """True when the record's class is ``table`` or extends it."""


@dataclass(frozen=True, slots=True)
class Condition:
    """``field`` ``operator`` ``value``, e.g. ``caller_id.user_name`` ``=`` ``abel.tuter``."""

    field: str
    operator: str
    value: str


@dataclass(slots=True)
class EncodedQuery:
    """A parsed ``sysparm_query``.

    ``groups`` is an OR (``^NQ``) of ANDs (``^``) of ORs (``^OR``) of conditions.
    ``order_by`` lists ``(field, descending)`` in priority order. ``invalid`` holds
    the terms that were dropped (unknown field or operator).
    """

    groups: list[list[list[Condition]]] = field(default_factory=list)
    order_by: list[tuple[str, bool]] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)

    def matches(self, record: Record, resolver: FieldResolver) -> bool:
        """True when ``record`` satisfies the query (an empty query matches everything)."""
        return self.predicate(resolver)(record)

    def predicate(self, resolver: FieldResolver) -> Callable[[Record], bool]:
        """:meth:`matches` compiled once for a scan over many records."""
        groups = [
            [[_compile(c, resolver) for c in clause] for clause in group]
            for group in self.groups
            if group
        ]
        if not groups:
            return lambda record: True

        def match(record: Record) -> bool:
            for group in groups:
                for clause in group:
                    if not any(test(record) for test in clause):
                        break
                else:
                    return True
            return False

        return match

    def sort(self, records: list[R], resolver: FieldResolver) -> None:
        """Sort ``records`` in place by the ORDERBY terms (stable; empty values first)."""
        for name, descending in reversed(self.order_by):
            column = resolver.column(name)
            if column is None:
                continue
            records.sort(key=_sort_key(name, column, resolver), reverse=descending)


def parse(text: str, is_field: Callable[[str], bool]) -> EncodedQuery:
    """Parse an encoded query; ``is_field(path)`` says whether a field path exists."""
    query = EncodedQuery()
    group: list[list[Condition]] = []
    query.groups.append(group)
    for term in _split(text):
        if not term or term == "EQ":
            continue
        if term.startswith("NQ"):
            group = []
            query.groups.append(group)
            term = term[2:]
        if term.startswith("ORDERBYDESC"):
            query.order_by.append((term[len("ORDERBYDESC") :], True))
            continue
        if term.startswith("ORDERBY"):
            query.order_by.append((term[len("ORDERBY") :], False))
            continue
        if term.startswith("GROUPBY"):
            continue
        is_or = term.startswith("OR") and bool(group)
        condition = _condition(term[2:] if is_or else term)
        if condition is None or not is_field(condition.field):
            query.invalid.append(term)
            continue
        if is_or:
            group[-1].append(condition)
        else:
            group.append([condition])
    return query


def _split(text: str) -> list[str]:
    """Split on ``^``, reading ``^^`` as a literal caret."""
    terms: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "^":
            if text.startswith("^^", i):
                current.append("^")
                i += 2
                continue
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    terms.append("".join(current))
    return terms


def _condition(term: str) -> Condition | None:
    match = _CONDITION.fullmatch(term)
    if match is None:
        return None
    return Condition(match["field"], match["op"], match["value"])


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _truthy(text: str) -> str:
    lowered = text.strip().lower()
    return {"1": "true", "true": "true", "0": "false", "false": "false"}.get(lowered, lowered)


def _equal(stored: str, wanted: str, column: Column) -> bool:
    if column.internal_type in NUMERIC_TYPES:
        a, b = _number(stored), _number(wanted)
        if a is not None and b is not None:
            return a == b
    if column.internal_type == "boolean":
        return _truthy(stored) == _truthy(wanted)
    if column.is_reference or column.internal_type == "GUID":
        return stored == wanted.strip()
    return stored.lower() == wanted.lower()


def _compare(stored: str, wanted: str, column: Column) -> int | None:
    """-1/0/1 comparing ``stored`` to ``wanted``; ``None`` when not comparable."""
    if stored == "":
        return None
    if column.internal_type in NUMERIC_TYPES:
        a, b = _number(stored), _number(wanted)
        if a is None or b is None:
            return None
        return (a > b) - (a < b)
    x, y = stored.lower(), wanted.lower()
    return (x > y) - (x < y)


def _test(condition: Condition, record: Record, resolver: FieldResolver) -> bool:
    column = resolver.column(condition.field)
    if column is None:
        return True  # unreachable: parse() drops unknown fields
    op, wanted = condition.operator, condition.value
    if op == "ANYTHING":
        return True
    if column.is_reference and op in _TEXT_OPERATORS:
        stored = resolver.display(record, condition.field)
    else:
        stored = resolver.value(record, condition.field)
    if op in _NEGATIVE and stored == "":
        return False
    result: bool
    if op in ("ISEMPTY", "EMPTYSTRING"):
        result = stored == ""
    elif op == "ISNOTEMPTY":
        result = stored != ""
    elif op == "=":
        result = _equal(stored, wanted, column)
    elif op == "!=":
        result = not _equal(stored, wanted, column)
    elif op == "LIKE":
        result = wanted.lower() in stored.lower()
    elif op in ("NOT LIKE", "DOES NOT CONTAIN"):
        result = wanted.lower() not in stored.lower()
    elif op == "STARTSWITH":
        result = stored.lower().startswith(wanted.lower())
    elif op == "ENDSWITH":
        result = stored.lower().endswith(wanted.lower())
    elif op in ("IN", "NOT IN"):
        found = any(_equal(stored, item, column) for item in wanted.split(","))
        result = found if op == "IN" else not found
    elif op in (">", ">=", "<", "<="):
        order = _compare(stored, wanted, column)
        result = (
            order is not None
            and {
                ">": order > 0,
                ">=": order >= 0,
                "<": order < 0,
                "<=": order <= 0,
            }[op]
        )
    elif op == "BETWEEN":
        low, _, high = wanted.partition("@")
        above, below = _compare(stored, low, column), _compare(stored, high, column)
        result = above is not None and below is not None and above >= 0 and below <= 0
    elif op in ("SAMEAS", "NSAMEAS"):
        other = resolver.value(record, wanted) if resolver.column(wanted) else ""
        result = (stored == other) == (op == "SAMEAS")
    else:  # INSTANCEOF
        result = resolver.is_instance(record, wanted)
    return result


def _plain_equality(condition: Condition, resolver: FieldResolver) -> bool:
    """True for ``field=value`` on a text column of the queried table itself."""
    column = resolver.column(condition.field)
    return (
        condition.operator == "="
        and column is not None
        and "." not in condition.field
        and column.internal_type not in NUMERIC_TYPES
        and column.internal_type != "boolean"
        and not column.is_reference
        and not column.is_journal
    )


def equality_lookup(query: EncodedQuery, resolver: FieldResolver) -> tuple[str, str] | None:
    """``(field, value)`` of a plain equality every match must satisfy, so that an index
    can narrow the scan; ``None`` when the query has no such condition."""
    groups = [g for g in query.groups if g]
    if len(groups) != 1:
        return None
    for clause in groups[0]:
        if len(clause) == 1 and _plain_equality(clause[0], resolver):
            return clause[0].field, clause[0].value
    return None


def _compile(condition: Condition, resolver: FieldResolver) -> Callable[[Record], bool]:
    """A test for one condition; plain text equality (``correlation_id=...``, ``number=...``)
    gets a fast path because integrations look records up that way in large tables."""
    column = resolver.column(condition.field)
    if _plain_equality(condition, resolver):
        name, wanted = condition.field, condition.value.lower()
        if column is not None and column.internal_type == "GUID":
            wanted = condition.value.strip()
            return lambda record: record.get(name, "") == wanted
        return lambda record: record.get(name, "").lower() == wanted
    return lambda record: _test(condition, record, resolver)


def _sort_key(
    name: str, column: Column, resolver: FieldResolver
) -> Callable[[Record], tuple[int, float, str]]:
    def key(record: Record) -> tuple[int, float, str]:
        if column.is_reference:
            text = resolver.display(record, name)
        else:
            text = resolver.value(record, name)
        if text == "":
            return (0, 0.0, "")
        if column.internal_type in NUMERIC_TYPES:
            number = _number(text)
            if number is not None:
                return (1, number, "")
        return (1, 0.0, text.lower())

    return key


def split_fields(text: str | None) -> Sequence[str] | None:
    """``sysparm_fields`` as a list of names (``None`` when absent or empty)."""
    if not text:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    return names or None
