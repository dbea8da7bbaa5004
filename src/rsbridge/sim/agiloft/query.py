"""The two query languages: EWSearch's ``query=`` and EWSelect's SQL ``where=``.

EWSearch (documented operators ``=``, ``!=``, ``~=`` (contains), ``<``, ``<=``, ``>``, ``>=``,
``&&``, ``||``): ``summary~='printer' && status='Open'``. Values in single quotes (``\\'`` or
``''`` for a quote), ``null`` for an empty field, a label with spaces quoted like a value;
parentheses group (inferred). Choices compare by display text.

EWSelect: a SQL where clause on column names, as the documented examples
(``summary like '%new%'``, ``limit 0,200``): ``= != <> < <= > >=``, ``[NOT] LIKE`` with ``%``
and ``_``, ``IS [NOT] NULL``, ``[NOT] IN (...)``, ``AND``, ``OR``, ``NOT``, parentheses and a
trailing ``LIMIT [offset,] count``. Choice columns hold choice line ids, as the documented
advice to use EWGetChoiceLineId says.

Text compares case-insensitively, as the KB's database does (inferred).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rsbridge.sim.agiloft import errors
from rsbridge.sim.agiloft.tables import FieldDef, Record, TableDef
from rsbridge.sim.agiloft.values import parse_datetime

Predicate = Callable[[Record], bool]

_SEARCH = re.compile(
    r"\s*(?:(?P<op>&&|\|\||!=|~=|<=|>=|=|<|>)|(?P<paren>[()])"
    r"|'(?P<str>(?:[^'\\]|\\.|'')*)'|(?P<word>[^\s=!~<>&|()']+))"
)
_SQL = re.compile(
    r"\s*(?:(?P<op><>|!=|<=|>=|=|<|>)|(?P<punct>[(),])|'(?P<str>(?:[^']|'')*)'"
    r"|(?P<num>-?\d+(?:\.\d+)?)(?![\w.])|(?P<word>[A-Za-z_][\w.$]*))"
)


class QueryError(ValueError):
    """A query that does not parse (the message says where)."""


def _ordered(fdef: FieldDef, text: str) -> Any:
    """A value in the order of its type: numbers, dates, or case-folded text."""
    if fdef.type == "integer" or fdef.name == "id":
        try:
            return (0, int(text))
        except ValueError:
            return (1, text.casefold())
    if fdef.type == "datetime":
        moment = parse_datetime(text)
        if moment is not None:
            return (0, moment.timestamp())
    return (1, text.casefold())


def _test(fdef: FieldDef, op: str, have: str, want: str) -> bool:
    if op in ("=", "!="):
        return bool(_ordered(fdef, have) == _ordered(fdef, want)) == (op == "=")
    if op == "~=":
        return want.casefold() in have.casefold()
    a, b = _ordered(fdef, have), _ordered(fdef, want)
    if a[0] != b[0]:
        return False
    return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])


def _like(pattern: str) -> re.Pattern[str]:
    out = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(out, re.IGNORECASE | re.DOTALL)


# -- EWSearch ----------------------------------------------------------------------------
def _tokens(pattern: re.Pattern[str], text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        match = pattern.match(text, pos)
        if match is None or match.end() == pos:
            raise QueryError(f"unexpected {text[pos : pos + 20].strip()!r} at {pos}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end":
            raise QueryError("the query ends too early")
        self.pos += 1
        return token

    def word(self, *words: str) -> bool:
        kind, text = self.peek()
        if kind == "word" and text.upper() in words:
            self.pos += 1
            return True
        return False


def parse_search(table: TableDef, query: str) -> Predicate:
    """The predicate of an EWSearch ``query`` (an empty query matches every record).

    Raises ``AgiloftError``: "No column <x> in table <y>" for an unknown field, "Error ...
    parsing the query ..." for a query that does not parse.
    """
    if not query.strip():
        return lambda _record: True
    try:
        parser = _Parser(_tokens(_SEARCH, query))
        predicate = _search_or(parser, table)
        if parser.peek()[0] != "end":
            raise QueryError(f"unexpected {parser.peek()[1]!r}")
    except QueryError as exc:
        raise errors.parse_error(str(exc), query) from None
    return predicate


def _search_or(p: _Parser, table: TableDef) -> Predicate:
    parts = [_search_and(p, table)]
    while p.peek() == ("op", "||"):
        p.take()
        parts.append(_search_and(p, table))
    return parts[0] if len(parts) == 1 else lambda r: any(q(r) for q in parts)


def _search_and(p: _Parser, table: TableDef) -> Predicate:
    parts = [_search_term(p, table)]
    while p.peek() == ("op", "&&"):
        p.take()
        parts.append(_search_term(p, table))
    return parts[0] if len(parts) == 1 else lambda r: all(q(r) for q in parts)


def _search_term(p: _Parser, table: TableDef) -> Predicate:
    kind, text = p.take()
    if (kind, text) == ("paren", "("):
        inner = _search_or(p, table)
        if p.take() != ("paren", ")"):
            raise QueryError("a '(' is not closed")
        return inner
    if kind not in ("word", "str"):
        raise QueryError(f"expected a field name, got {text!r}")
    name = _unquote_search(text) if kind == "str" else text
    fdef = table.lookup(name)
    if fdef is None:
        raise errors.no_column(name, table.name)
    op_kind, op = p.take()
    if op_kind != "op" or op in ("&&", "||"):
        raise QueryError(f"expected an operator after {name}, got {op!r}")
    value_kind, value = p.take()
    if value_kind not in ("word", "str"):
        raise QueryError(f"expected a value after {name}{op}, got {value!r}")
    if value_kind == "word" and value.lower() == "null":
        return _null_test(fdef, op != "!=")
    want = _unquote_search(value) if value_kind == "str" else value
    column = fdef.name

    def predicate(record: Record) -> bool:
        have = record.texts(column)
        if op == "!=":
            return not any(_test(fdef, "=", h, want) for h in have)
        return any(_test(fdef, op, h, want) for h in have)

    return predicate


def _unquote_search(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text.replace("''", "'"))


def _null_test(fdef: FieldDef, empty: bool) -> Predicate:
    column = fdef.name
    return lambda record: (not record.texts(column)) == empty


# -- EWSelect ----------------------------------------------------------------------------
@dataclass
class Selection:
    """A parsed where clause: the predicate and the ``LIMIT`` window."""

    predicate: Predicate
    offset: int = 0
    count: int | None = None


class _UnknownColumnError(Exception):
    """A column the table lacks: SQL fails when it runs, not when it parses."""


def parse_where(table: TableDef, where: str) -> Selection:
    """The selection of an EWSelect ``where`` clause (an empty clause matches all).

    Raises ``AgiloftError``: "Error ... parsing the query ..." (400) for bad syntax, and
    "Error executing query, please consult logs" (500) for an unknown column.
    """
    try:
        parser = _Parser(_tokens(_SQL, where))
        predicate: Predicate = lambda _record: True  # noqa: E731
        if parser.peek()[0] != "end" and not _at_limit(parser):
            predicate = _sql_or(parser, table)
        selection = Selection(predicate)
        if parser.word("LIMIT"):
            first = _number(parser)
            if parser.peek() == ("punct", ","):
                parser.take()
                selection.offset, selection.count = first, _number(parser)
            else:
                selection.count = first
        if parser.peek()[0] != "end":
            raise QueryError(f"unexpected {parser.peek()[1]!r}")
    except QueryError as exc:
        raise errors.parse_error(str(exc), where) from None
    except _UnknownColumnError:
        raise errors.AgiloftError(500, errors.QUERY_FAILED) from None
    return selection


def _at_limit(p: _Parser) -> bool:
    kind, text = p.peek()
    return kind == "word" and text.upper() == "LIMIT"


def _number(p: _Parser) -> int:
    kind, text = p.take()
    if kind != "num" or not text.isdigit():
        raise QueryError(f"LIMIT wants whole numbers, got {text!r}")
    return int(text)


def _sql_or(p: _Parser, table: TableDef) -> Predicate:
    parts = [_sql_and(p, table)]
    while p.word("OR"):
        parts.append(_sql_and(p, table))
    return parts[0] if len(parts) == 1 else lambda r: any(q(r) for q in parts)


def _sql_and(p: _Parser, table: TableDef) -> Predicate:
    parts = [_sql_not(p, table)]
    while p.word("AND"):
        parts.append(_sql_not(p, table))
    return parts[0] if len(parts) == 1 else lambda r: all(q(r) for q in parts)


def _sql_not(p: _Parser, table: TableDef) -> Predicate:
    if p.word("NOT"):
        inner = _sql_not(p, table)
        return lambda r: not inner(r)
    if p.peek() == ("punct", "("):
        p.take()
        inner = _sql_or(p, table)
        if p.take() != ("punct", ")"):
            raise QueryError("a '(' is not closed")
        return inner
    return _sql_compare(p, table)


def _sql_value(p: _Parser) -> str:
    kind, text = p.take()
    if kind == "str":
        return text.replace("''", "'")
    if kind == "num":
        return text
    raise QueryError(f"expected a value, got {text!r}")


def _sql_compare(p: _Parser, table: TableDef) -> Predicate:
    kind, name = p.take()
    if kind != "word":
        raise QueryError(f"expected a column, got {name!r}")
    fdef = table.by_name.get(name)
    if fdef is None:
        raise _UnknownColumnError(name)
    column = fdef.name

    def stored(record: Record) -> list[str]:
        texts = record.texts(column)
        if fdef.type in ("choice", "multichoice"):
            return [str(fdef.line_id(t)) for t in texts]
        return texts

    if p.word("IS"):
        negate = p.word("NOT")
        if not p.word("NULL"):
            raise QueryError("IS wants NULL or NOT NULL")
        return lambda r: bool(stored(r)) == negate
    negate = p.word("NOT")
    if p.word("LIKE"):
        pattern = _like(_sql_value(p))
        return lambda r: any(pattern.fullmatch(h) for h in stored(r)) != negate
    if p.word("IN"):
        if p.take() != ("punct", "("):
            raise QueryError("IN wants a list in parentheses")
        wanted = [_sql_value(p)]
        while p.peek() == ("punct", ","):
            p.take()
            wanted.append(_sql_value(p))
        if p.take() != ("punct", ")"):
            raise QueryError("the IN list is not closed")
        return lambda r: any(_test(fdef, "=", h, w) for h in stored(r) for w in wanted) != negate
    if negate:
        raise QueryError("NOT wants LIKE or IN after a column")
    op_kind, op = p.take()
    if op_kind != "op":
        raise QueryError(f"expected an operator after {name}, got {op!r}")
    want = _sql_value(p)
    op = "!=" if op == "<>" else op

    def predicate(record: Record) -> bool:
        have = stored(record)
        if op == "!=":  # SQL: an empty column is neither equal nor unequal
            return bool(have) and not any(_test(fdef, "=", h, want) for h in have)
        return any(_test(fdef, op, h, want) for h in have)

    return predicate
