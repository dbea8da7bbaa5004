"""Fast JSON for session reports: orjson, with the structure of :func:`to_jsonable`.

``rsbridge report parse --json`` writes thousands of sessions; the recursive
:func:`~rsbridge.appliance.report_model.to_jsonable` plus the standard library's
indenting encoder cost more than parsing them. orjson serialises the model's
dataclasses, datetimes and enums natively; only what it would write differently from
:func:`to_jsonable` is handled here:

* durations (:class:`~datetime.timedelta`) become seconds, through ``default``;
* endpoints (:class:`~rsbridge.appliance.report_model.Endpoint`, a dataclass that orjson
  would write as an object) become their string form. They occur only in
  :class:`Customer` and :class:`Representative` (a test walks the model's types to keep
  it so), so those two are turned into dicts and everything else stays native.

A session orjson refuses falls back to the standard library, so the output is always valid
JSON of the same structure: an integer past 64 bits (a report can hold one in a count or a
size; the parser keeps it exact) gives what the standard library always wrote, and text with
a lone surrogate (only a model made by other code has one) is written ASCII-escaped.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any, final

import orjson

from rsbridge.appliance.report_model import (
    Customer,
    Representative,
    SupportSession,
    to_jsonable,
)

#: Model classes with :class:`Endpoint` fields, and those fields.
ENDPOINT_HOLDERS: dict[type, tuple[str, ...]] = {
    Customer: ("public_ip", "private_ip"),
    Representative: ("public_ip", "private_ip"),
}

_SESSION_FIELDS = tuple(f.name for f in dataclasses.fields(SupportSession))
_FIELDS = {cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in ENDPOINT_HOLDERS}
_OPTIONS = orjson.OPT_INDENT_2


@final
class WrittenSession:
    """A session's JSON written ahead (:func:`compact_json` of :func:`session_data`, in a
    render process), standing where :func:`session_data` would in the data of
    :func:`compact_json`, which copies it in as it is."""

    __slots__ = ("json",)

    def __init__(self, json: bytes) -> None:
        self.json = json


def _default(obj: Any) -> Any:
    if isinstance(obj, timedelta):
        return obj.total_seconds()
    if type(obj) is WrittenSession:
        return orjson.Fragment(obj.json)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _written(obj: Any) -> Any:
    """The standard library's fallback for a :class:`WrittenSession`: its data again."""
    if type(obj) is WrittenSession:
        return json.loads(obj.json)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _with_endpoints(person: Customer | Representative) -> dict[str, Any]:
    cls = type(person)
    data = {name: getattr(person, name) for name in _FIELDS[cls]}
    for name in ENDPOINT_HOLDERS[cls]:
        if data[name] is not None:
            data[name] = str(data[name])
    return data


def session_data(session: SupportSession) -> dict[str, Any]:
    """``session`` as a dict that orjson writes with :func:`to_jsonable`'s structure (with
    :func:`compact_json`): its other model objects stay dataclasses, endpoints are text."""
    data = {name: getattr(session, name) for name in _SESSION_FIELDS}
    data["customers"] = [_with_endpoints(c) for c in session.customers]
    data["representatives"] = [_with_endpoints(r) for r in session.representatives]
    return data


def compact_json(data: Any) -> bytes:
    """``data`` as compact UTF-8 JSON: the JSON of ``json.dumps(to_jsonable(data),
    ensure_ascii=False)``, written by orjson.

    ``data`` is JSON-compatible data that may hold :func:`session_data` values, or their
    JSON written ahead (:class:`WrittenSession`). Whatever
    orjson refuses (an integer past 64 bits, a key that is not text, a lone surrogate) takes
    the standard library's path, which raises what it always raised
    (``UnicodeEncodeError`` for a lone surrogate). A float that is not finite, which no
    record holds, would be written as ``null``.
    """
    try:
        return orjson.dumps(data, default=_default)
    except orjson.JSONEncodeError:
        text = json.dumps(
            to_jsonable(data), ensure_ascii=False, separators=(",", ":"), default=_written
        )
    return text.encode("utf-8")


def session_json(session: SupportSession) -> bytes:
    """``session`` as indented UTF-8 JSON, the structure :func:`to_jsonable` gives."""
    data = session_data(session)
    try:
        return orjson.dumps(data, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        data = to_jsonable(session)
    try:
        return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: UTF-8 cannot carry it, a JSON escape can
        return json.dumps(data, indent=2).encode("ascii")
