"""The SOQL subset the simulator answers: parser and evaluator.

Supported: ``SELECT`` field list (dotted parent-relationship paths such as
``Contact.Email`` or ``Case__r.CaseNumber``, parent-to-child sub-queries such as
``(SELECT CommentBody FROM CaseComments WHERE IsPublished = true)``, and ``COUNT()``),
``FROM`` one object, ``WHERE`` with ``AND`` / ``OR`` / ``NOT`` / parentheses,
``= != <> < <= > >=``, ``IN`` and ``NOT IN`` lists, ``LIKE`` (``%`` and ``_``), literals
(quoted strings with backslash escapes, numbers, ``true`` / ``false`` / ``null``, date and
date-time literals), ``ORDER BY`` (``ASC`` / ``DESC``, ``NULLS FIRST`` / ``LAST``),
``LIMIT`` and ``OFFSET``.
Keywords, object and field names are case-insensitive; text comparisons too, as on the
platform. Not supported (answered with ``MALFORMED_QUERY``): semi-joins, aggregates other
than ``COUNT()``, ``GROUP BY``, date functions, and relative date literals other than
``TODAY``, ``YESTERDAY``, ``TOMORROW``, ``LAST_N_DAYS:n`` and ``NEXT_N_DAYS:n``.

Error texts follow the platform's layout (the query, a caret, ``ERROR at Row:1:Column:N``
and the reason), as seen in simple-salesforce issue reports and the SOQL guide.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rsbridge.sim.salesforce.errors import SalesforceError, malformed_query
from rsbridge.sim.salesforce.ids import to18

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<range>[A-Za-z]+_N_DAYS:\d+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>|,|\(|\))
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
_COMPARE_OPS = ("=", "!=", "<>", "<", "<=", ">", ">=")


@dataclass
class Token:
    """A lexical token: kind (``string``, ``number``, ``ident``, ``op``...), text, position."""

    kind: str
    text: str
    pos: int
    value: Any = None

    def word(self) -> str:
        """The upper-cased text of an identifier (for keywords)."""
        return self.text.upper() if self.kind == "ident" else ""


@dataclass
class FieldRef:
    """A field path as written (``Contact.Account.Name``) and where it stands."""

    path: list[str]
    pos: int

    @property
    def text(self) -> str:
        """The path joined with dots, as written."""
        return ".".join(self.path)


@dataclass
class Compare:
    """``field op value``."""

    field: FieldRef
    op: str
    value: Any


@dataclass
class InList:
    """``field [NOT] IN (values)``."""

    field: FieldRef
    values: list[Any]
    negate: bool = False


@dataclass
class Like:
    """``field [NOT] LIKE 'pattern'`` (``NOT field LIKE`` goes through :class:`Not`)."""

    field: FieldRef
    pattern: str


@dataclass
class BoolOp:
    """``AND`` / ``OR`` of conditions."""

    op: str
    items: list[Condition]


@dataclass
class Not:
    """``NOT condition``."""

    item: Condition


Condition = Compare | InList | Like | BoolOp | Not


@dataclass
class OrderItem:
    """One ``ORDER BY`` key."""

    field: FieldRef
    descending: bool = False
    nulls_last: bool | None = None


@dataclass
class Query:
    """A parsed query."""

    text: str
    object_name: str
    object_pos: int
    fields: list[FieldRef] = field(default_factory=list)
    count_only: bool = False
    where: Condition | None = None
    order: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    #: Parent-to-child sub-queries (``FROM`` names a child relationship).
    children: list[Query] = field(default_factory=list)


@dataclass
class DateLiteral:
    """A ``YYYY-MM-DD`` literal (compared with date and date-time fields)."""

    value: date


@dataclass
class DateRange:
    """A relative date literal resolved against today (UTC): ``start`` inclusive, ``end``
    exclusive. ``=`` means within it, ``<`` before it, ``>`` after it."""

    start: date
    end: date


def date_range(word: str, today: date) -> DateRange | None:
    """``TODAY``, ``YESTERDAY``, ``TOMORROW``, ``LAST_N_DAYS:n`` (today and the n days
    before), ``NEXT_N_DAYS:n`` (the n days after today), as the SOQL date-literal table
    defines them; ``None`` for other words."""
    day = timedelta(days=1)
    fixed = {"TODAY": today, "YESTERDAY": today - day, "TOMORROW": today + day}
    if word in fixed:
        return DateRange(fixed[word], fixed[word] + day)
    name, _, count = word.partition(":")
    if not count.isdigit():
        return None
    if name == "LAST_N_DAYS":
        return DateRange(today - int(count) * day, today + day)
    if name == "NEXT_N_DAYS":
        return DateRange(today + day, today + (int(count) + 1) * day)
    return None


def located(text: str, pos: int, reason: str) -> str:
    """The platform's error layout: query line, caret, ``ERROR at Row:1:Column:N``, reason."""
    line = " ".join(text.split("\n"))
    return f"\n{line}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n{reason}"


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; unknown characters are a ``MALFORMED_QUERY``."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise malformed_query(located(text, pos, f"unexpected token: '{text[pos]}'"))
        kind = match.lastgroup or ""
        raw = match.group()
        if kind != "ws":
            tokens.append(Token(kind, raw, pos, _literal(kind, raw)))
        pos = match.end()
    return tokens


def _literal(kind: str, raw: str) -> Any:
    if kind == "string":
        body = raw[1:-1]
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)
    if kind == "number":
        return float(raw) if "." in raw else int(raw)
    if kind == "date":
        return DateLiteral(date.fromisoformat(raw))
    if kind == "datetime":
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return None


class _Parser:
    def __init__(self, text: str, today: date) -> None:
        self.text = text
        self.today = today
        self.tokens = tokenize(text)
        self.index = 0

    def peek(self, offset: int = 0) -> Token | None:
        at = self.index + offset
        return self.tokens[at] if at < len(self.tokens) else None

    def fail(self, token: Token | None, reason: str | None = None) -> SalesforceError:
        if token is None:
            return malformed_query(
                located(self.text, len(self.text), reason or "unexpected token: '<EOF>'")
            )
        return malformed_query(
            located(self.text, token.pos, reason or f"unexpected token: '{token.text}'")
        )

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise self.fail(None)
        self.index += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.word() in words:
            self.index += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            raise self.fail(self.peek())

    def expect_op(self, op: str) -> None:
        token = self.peek()
        if token is None or token.kind != "op" or token.text != op:
            raise self.fail(token)
        self.index += 1

    def field_ref(self) -> FieldRef:
        token = self.take()
        if token.kind != "ident":
            raise self.fail(token)
        return FieldRef(token.text.split("."), token.pos)

    def parse(self, nested: bool = False) -> Query:
        """A query; ``nested``: a parent-to-child sub-query, which ends at ``)``."""
        self.expect_keyword("SELECT")
        fields: list[FieldRef] = []
        children: list[Query] = []
        count_only = False
        token = self.peek()
        if token is not None and token.word() == "COUNT" and self._is_op(1, "(") and not nested:
            self.index += 1
            self.expect_op("(")
            self.expect_op(")")
            count_only = True
        else:
            while True:
                if self._is_op(0, "(") and not nested:
                    self.index += 1
                    children.append(self.parse(nested=True))
                else:
                    ref = self.field_ref()
                    if self._is_op(0, "("):
                        raise self.fail(
                            self.peek(-1), "functions are not supported by the simulator"
                        )
                    fields.append(ref)
                if not self._is_op(0, ","):
                    break
                self.index += 1
        self.expect_keyword("FROM")
        name = self.take()
        if name.kind != "ident" or "." in name.text:
            raise self.fail(name)
        query = Query(self.text, name.text, name.pos, fields, count_only, children=children)
        if self.keyword("WHERE"):
            query.where = self.condition()
        if self.keyword("ORDER"):
            self.expect_keyword("BY")
            while True:
                item = OrderItem(self.field_ref())
                if self.keyword("DESC"):
                    item.descending = True
                else:
                    self.keyword("ASC")
                if self.keyword("NULLS"):
                    if self.keyword("LAST"):
                        item.nulls_last = True
                    else:
                        self.expect_keyword("FIRST")
                        item.nulls_last = False
                query.order.append(item)
                if not self._is_op(0, ","):
                    break
                self.index += 1
        if self.keyword("LIMIT"):
            query.limit = self._count()
        if self.keyword("OFFSET") and not nested:
            query.offset = self._count()
        if nested:
            self.expect_op(")")
        elif self.peek() is not None:
            raise self.fail(self.peek())
        return query

    def _count(self) -> int:
        token = self.take()
        if token.kind != "number" or not isinstance(token.value, int) or token.value < 0:
            raise self.fail(token)
        return int(token.value)

    def _is_op(self, offset: int, op: str) -> bool:
        token = self.peek(offset)
        return token is not None and token.kind == "op" and token.text == op

    def condition(self) -> Condition:
        items = [self.conjunction()]
        while self.keyword("OR"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else BoolOp("OR", items)

    def conjunction(self) -> Condition:
        items = [self.negation()]
        while self.keyword("AND"):
            items.append(self.negation())
        return items[0] if len(items) == 1 else BoolOp("AND", items)

    def negation(self) -> Condition:
        if self.keyword("NOT"):
            return Not(self.negation())
        if self._is_op(0, "("):
            self.index += 1
            inner = self.condition()
            self.expect_op(")")
            return inner
        return self.predicate()

    def predicate(self) -> Condition:
        ref = self.field_ref()
        token = self.peek()
        if token is None:
            raise self.fail(None)
        if token.kind == "op" and token.text in _COMPARE_OPS:
            self.index += 1
            return Compare(ref, "!=" if token.text == "<>" else token.text, self.value())
        negate = self.keyword("NOT")
        if self.keyword("IN"):
            self.expect_op("(")
            values = [self.value()]
            while self._is_op(0, ","):
                self.index += 1
                values.append(self.value())
            self.expect_op(")")
            return InList(ref, values, negate)
        if self.keyword("LIKE"):
            pattern = self.take()
            if pattern.kind != "string":
                raise self.fail(pattern)
            like = Like(ref, str(pattern.value))
            return Not(like) if negate else like
        raise self.fail(token)

    def value(self) -> Any:
        token = self.take()
        if token.kind in ("string", "number", "date", "datetime"):
            return token.value
        word = token.text.upper() if token.kind in ("ident", "range") else ""
        relative = date_range(word, self.today)
        if relative is not None:
            return relative
        if word in ("TRUE", "FALSE"):
            return word == "TRUE"
        if word == "NULL":
            return None
        if token.kind == "op" and token.text == "(":
            raise self.fail(token, "semi-join sub-queries are not supported by the simulator")
        raise self.fail(token)


def parse(text: str, today: date | None = None) -> Query:
    """Parse a SOQL query; ``MALFORMED_QUERY`` when it is not in the supported subset.
    ``today`` (default: the UTC date) anchors relative date literals."""
    return _Parser(text.strip(), today or datetime.now(UTC).date()).parse()


# --- evaluation -------------------------------------------------------------------------

#: Reads the value of a field path on a record: ``getter(record, path)``; values are JSON
#: values as the API returns them. The second function gives the field's type.
Getter = Callable[[Any, FieldRef], Any]
TypeOf = Callable[[FieldRef], str]


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, DateLiteral):
        return datetime(value.value.year, value.value.month, value.value.day, tzinfo=UTC)
    if isinstance(value, str):
        text = value.replace("Z", "+00:00")
        if re.fullmatch(r".*[+-]\d{4}", text):
            text = text[:-2] + ":" + text[-2:]
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def comparable(value: Any, kind: str) -> Any:
    """A comparable form: case-folded text, 18-character ids, aware date-times."""
    if value is None:
        return None
    if kind in ("datetime", "date"):
        moment = _as_datetime(value)
        if moment is not None and kind == "date":
            return moment.date()
        return moment
    if kind in ("id", "reference") and isinstance(value, str):
        return (to18(value) or value).lower()
    if isinstance(value, str):
        return value.casefold()
    if isinstance(value, DateLiteral):
        return value.value
    return value


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        if op == "<":
            return bool(left < right)
        if op == "<=":
            return bool(left <= right)
        if op == ">":
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        return False


def like_regex(pattern: str) -> re.Pattern[str]:
    """``%`` any run, ``_`` one character, ``\\%`` and ``\\_`` literal; case-insensitive."""
    out = ""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            out += re.escape(pattern[index + 1])
            index += 2
            continue
        out += ".*" if char == "%" else "." if char == "_" else re.escape(char)
        index += 1
    return re.compile(out, re.IGNORECASE | re.DOTALL)


def _within(value: Any, op: str, span: DateRange, kind: str) -> bool:
    if value is None:
        return False
    start: Any = span.start
    end: Any = span.end
    if kind != "date":
        start = datetime(start.year, start.month, start.day, tzinfo=UTC)
        end = datetime(end.year, end.month, end.day, tzinfo=UTC)
    try:
        inside = bool(start <= value < end)
        results = {
            "=": inside,
            "!=": not inside,
            "<": bool(value < start),
            "<=": bool(value < end),
            ">": bool(value >= end),
            ">=": bool(value >= start),
        }
    except TypeError:
        return False
    return results[op]


def matches(condition: Condition | None, record: Any, get: Getter, type_of: TypeOf) -> bool:
    """Whether ``record`` satisfies ``condition``."""
    if condition is None:
        return True
    if isinstance(condition, BoolOp):
        results = (matches(item, record, get, type_of) for item in condition.items)
        return all(results) if condition.op == "AND" else any(results)
    if isinstance(condition, Not):
        return not matches(condition.item, record, get, type_of)
    kind = type_of(condition.field)
    value = comparable(get(record, condition.field), kind)
    if isinstance(condition, Compare):
        if isinstance(condition.value, DateRange):
            return _within(value, condition.op, condition.value, kind)
        return _compare(value, condition.op, comparable(condition.value, kind))
    if isinstance(condition, InList):
        found = value in {comparable(v, kind) for v in condition.values if v is not None}
        if value is None:
            found = any(v is None for v in condition.values)
        return found != condition.negate
    raw = get(record, condition.field)
    return isinstance(raw, str) and like_regex(condition.pattern).fullmatch(raw) is not None


def sort_records(records: list[Any], order: list[OrderItem], get: Getter, type_of: TypeOf) -> None:
    """Sort in place by the ``ORDER BY`` keys (nulls first ascending, last descending)."""
    for item in reversed(order):
        kind = type_of(item.field)
        nulls_last = item.descending if item.nulls_last is None else item.nulls_last

        def key(record: Any, item: OrderItem = item, kind: str = kind) -> Any:
            return comparable(get(record, item.field), kind)

        present = [r for r in records if key(r) is not None]
        missing = [r for r in records if key(r) is None]
        present.sort(key=key, reverse=item.descending)
        records[:] = present + missing if nulls_last else missing + present
