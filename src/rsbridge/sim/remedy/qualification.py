"""The ``q`` qualification subset of the AR REST API, parsed into a predicate.

Syntax (itsm-apis.md 3.2; BMC "Operators", https://docs.bmc.com/docs/ars221/operators-1040157178.html):
field names in single quotes (or a field id), values in double quotes or bare numbers,
``$NULL$``; comparisons ``= != < <= > >=`` and ``LIKE`` (``%`` any run, ``_`` one
character, ``[...]`` a set); ``AND``/``&&``, ``OR``/``||``, ``NOT``/``!``; parentheses.
NOT binds tightest, then AND, then OR.

Values compare by the field's type: selections by enumeration code (so
``'Status' < "Resolved"`` means the states before Resolved), dates by time, integers as
numbers, characters as text. A comparison with an empty field is false except ``= $NULL$``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rsbridge.sim.remedy.errors import ARError, bad_qualification, no_such_field
from rsbridge.sim.remedy.forms import FieldDef, FormDef
from rsbridge.sim.remedy.values import parse_date

Predicate = Callable[[Mapping[int, Any]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<field>'(?:[^']|'')*')
    | (?P<string>"(?:[^"]|"")*")
    | (?P<null>\$NULL\$)
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<op><=|>=|!=|=|<|>|&&|\|\||!|\(|\))
    | (?P<word>[A-Za-z]+)
    )""",
    re.VERBOSE,
)
_COMPARE = ("=", "!=", "<", "<=", ">", ">=", "LIKE")


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise bad_qualification(f"unexpected text at position {pos}")
        kind = match.lastgroup or ""
        raw = match.group(kind)
        if kind == "field":
            raw = raw[1:-1].replace("''", "'")
        elif kind == "string":
            raw = raw[1:-1].replace('""', '"')
        elif kind == "word":
            raw = raw.upper()
            if raw not in ("AND", "OR", "NOT", "LIKE"):
                raise bad_qualification(f"unknown word {match.group(kind)!r}")
        out.append(_Tok(kind, raw))
        pos = match.end()
    return out


def _like(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "%":
            if not out or out[-1] != ".*":  # runs of % collapse: no needless backtracking
                out.append(".*")
        elif ch == "_":
            out.append(".")
        elif ch == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            out.append("[" + re.escape(pattern[i + 1 : end]).replace("\\-", "-") + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


class _Parser:
    def __init__(self, form: FormDef, text: str) -> None:
        self.form = form
        self.toks = _tokens(text)
        self.pos = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise bad_qualification("the qualification ends too early")
        self.pos += 1
        return tok

    def parse(self) -> Predicate:
        pred = self.or_()
        if self.peek() is not None:
            raise bad_qualification(f"unexpected {self.take().text!r}")
        return pred

    def or_(self) -> Predicate:
        parts = [self.and_()]
        while (tok := self.peek()) is not None and tok.text in ("OR", "||"):
            self.pos += 1
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else lambda v: any(p(v) for p in parts)

    def and_(self) -> Predicate:
        parts = [self.not_()]
        while (tok := self.peek()) is not None and tok.text in ("AND", "&&"):
            self.pos += 1
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else lambda v: all(p(v) for p in parts)

    def not_(self) -> Predicate:
        tok = self.peek()
        if tok is not None and tok.text in ("NOT", "!"):
            self.pos += 1
            inner = self.not_()
            return lambda v: not inner(v)
        if tok is not None and tok.text == "(":
            self.pos += 1
            inner = self.or_()
            if self.take().text != ")":
                raise bad_qualification("missing ')'")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        left = self.take()
        if left.kind != "field":
            raise bad_qualification(f"expected a quoted field name, got {left.text!r}")
        fdef = self.form.lookup(left.text)
        if fdef is None:
            raise no_such_field(self.form.name, left.text)
        op = self.take().text
        if op not in _COMPARE:
            raise bad_qualification(f"expected an operator after '{left.text}'")
        right = self.take()
        if right.kind == "null":
            if op not in ("=", "!="):
                raise bad_qualification(f"$NULL$ with {op}")
            return (
                (lambda v: v.get(fdef.id) is None)
                if op == "="
                else (lambda v: v.get(fdef.id) is not None)
            )
        if right.kind not in ("string", "number"):
            raise bad_qualification(f"expected a value after {op}, got {right.text!r}")
        if op == "LIKE":
            regex = _like(right.text)
            return lambda v: (
                (x := v.get(fdef.id)) is not None and bool(regex.fullmatch(_text(fdef, x)))
            )
        target = _operand(fdef, right.text)
        return _comparer(fdef.id, op, target)


def _text(fdef: FieldDef, value: Any) -> str:
    if fdef.type == "selection":
        return fdef.display(value) or str(value)
    return str(value)


def _operand(fdef: FieldDef, text: str) -> Any:
    """The qualification value in the field's stored form (code, epoch seconds, number)."""
    try:
        if fdef.type == "selection":
            return fdef.options[text] if text in fdef.options else int(text)
        if fdef.type == "datetime":
            return parse_date(text)
        if fdef.type == "integer":
            return float(text)
    except (ValueError, TypeError):
        raise bad_qualification(f"{text!r} is not a value of '{fdef.name}'") from None
    return text


def _comparer(field_id: int, op: str, target: Any) -> Predicate:
    def check(values: Mapping[int, Any]) -> bool:
        value = values.get(field_id)
        if value is None:
            return op == "!="
        try:
            if op == "=":
                return bool(value == target)
            if op == "!=":
                return bool(value != target)
            if op == "<":
                return bool(value < target)
            if op == "<=":
                return bool(value <= target)
            if op == ">":
                return bool(value > target)
            return bool(value >= target)
        except TypeError:
            return False

    return check


def parse_qualification(form: FormDef, text: str) -> Predicate:
    """A predicate over an entry's values (by field id); raises :class:`ARError` (1587, 314)."""
    if not text.strip():
        return lambda _values: True
    return _Parser(form, text).parse()


__all__ = ["ARError", "Predicate", "parse_qualification"]
