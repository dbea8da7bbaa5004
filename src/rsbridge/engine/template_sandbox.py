"""The Jinja2 sandbox that report templates run in, with a fast lane for plain data.

Templates are user-editable, so they run in Jinja2's immutable sandbox: every attribute a
template reads is checked (no ``_`` names, no internals of functions, frames or types, no
method that changes a list, dict or set) and every call too. Those checks cost more than
the rest of rendering a session report together: a report reads its model objects'
fields hundreds of thousands of times in a backlog.

The checks protect against methods and internals, not against data. The report model's
dataclasses (``rsbridge.appliance.report_model``) hold data only, so
:class:`ReportSandbox` reads a *field* of an object whose type is exactly one of them
directly, when the value is itself plain data (text, numbers, times, lists, dicts, model
objects); likewise the read-only ``get``/``items``/``keys``/``values`` of a plain ``dict``
and the data a template put in its own ``namespace()``.
For those reads the sandbox's own checks would let the value through unchanged, so
templates see the same values and produce the same output. Everything else (methods and
properties of model objects, any other type, subclasses, ``_`` names, every call but the
dict reads) goes through the unchanged checks.

Both fast environments (this sandbox and :class:`TrustedEnvironment`, for the shipped
templates) give each template its globals as one plain dict taken when it is loaded, not as
Jinja2's chain of the template's and the environment's: every render copies them into its
context, and walking the chain cost about 5% of rendering a report. The renderer
sets its globals before it loads a template and never after, so the values are the same.
Both also write each ``{{ ... }}`` in one call (:mod:`rsbridge.engine.template_output`).
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping, MutableMapping
from datetime import date, datetime, time, timedelta
from typing import Any

from jinja2 import Environment
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from markupsafe import Markup

from rsbridge.appliance import report_model
from rsbridge.engine.template_output import OneCallOutput

_MODEL_TYPES: tuple[type, ...] = tuple(
    cls
    for cls in vars(report_model).values()
    if isinstance(cls, type)
    and dataclasses.is_dataclass(cls)
    and cls.__module__ == report_model.__name__
)

PLAIN_FIELDS: Mapping[type, frozenset[str]] = {
    cls: frozenset(f.name for f in dataclasses.fields(cls) if not f.name.startswith("_"))
    for cls in _MODEL_TYPES
}
"""The data fields templates read without checks, by the exact type that holds them."""

PLAIN_VALUES: frozenset[type] = frozenset(
    {
        str,
        Markup,
        int,
        float,
        bool,
        type(None),
        datetime,
        date,
        time,
        timedelta,
        list,
        tuple,
        dict,
        *_MODEL_TYPES,
    }
)
"""Types of values that are data: a field holding anything else is read with checks."""

_MISSING = object()

_DICT_READS = frozenset({"get", "items", "keys", "values"})
"""The methods of a plain dict a template may read and call without checks: none of
them changes the dict or reaches beyond its items."""


class SnapshotGlobals(Environment):
    """An environment whose templates get their globals as one plain dict (see the
    module doc): set the environment's globals before loading a template."""

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """The environment's globals, then ``d``'s, as they are now."""
        return {**self.globals, **(d or {})}


class TrustedEnvironment(OneCallOutput, SnapshotGlobals):
    """The plain environment of the shipped templates (the package's own code)."""


class ReportSandbox(OneCallOutput, SnapshotGlobals, ImmutableSandboxedEnvironment):
    """:class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` with a fast lane for the
    report model's data fields and a plain dict's read methods (see the module doc)."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``obj.attribute`` for a template: a plain data field at once, else checked."""
        fields = PLAIN_FIELDS.get(type(obj))
        if fields is not None and attribute in fields:
            value = getattr(obj, attribute)
            if type(value) in PLAIN_VALUES:
                return value
        elif type(obj) is dict and attribute in _DICT_READS:
            return getattr(obj, attribute)
        elif type(obj) is Namespace and not attribute.startswith("_"):
            # A template's own ``namespace()``: its attributes are what the template set.
            value = getattr(obj, attribute, _MISSING)
            if type(value) in PLAIN_VALUES:
                return value
        return super().getattr(obj, attribute)

    def call(
        __self,  # noqa: N805 (the sandbox's own signature: keyword arguments pass through)
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """A call from a template: a plain dict's read method at once, else checked."""
        if (
            type(__obj) is types.BuiltinMethodType
            and type(__obj.__self__) is dict
            and __obj.__name__ in _DICT_READS
        ):
            kwargs.pop("_loop_vars", None)
            kwargs.pop("_block_vars", None)
            return __obj(*args, **kwargs)
        return super().call(__context, __obj, *args, **kwargs)
