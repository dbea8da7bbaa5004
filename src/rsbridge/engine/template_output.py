"""What every ``{{ ... }}`` of a report template writes, and a compiler that writes it in
one call.

Every output of a template goes through the environment's ``finalize``
(:func:`finalize`: ``None`` prints nothing, control characters show as their pictures),
then through ``escape`` in an HTML template or ``str`` in a text one. Jinja2 compiles that
to two or three calls per output (``escape(environment.finalize(value))``, and escape
builds a :class:`~markupsafe.Markup`), and a session report has hundreds of outputs: a
fifth of a render process's time went there. :class:`OutputCompiler` compiles each
output whose escaping is fixed at compile time, in an environment whose ``finalize`` is
this module's, to one call (:func:`html_output` or :func:`text_output`) that writes the
same text. Outputs inside an ``{% autoescape %}`` block that decides at run time, and
environments with another ``finalize``, keep Jinja2's own code.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import Environment
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Expr
from markupsafe import Markup, escape

try:
    # markupsafe's C escaping without the Markup object around it: an output only joins
    # the template's text, so a plain string of the escaped text writes the same.
    from markupsafe._speedups import _escape_inner
except ImportError:  # markupsafe without its C speedups (or a release that moved it)

    def _escape_inner(s: str, /) -> str:
        return str(escape(s))


# C0 controls (but tab, newline, carriage return) and DEL are invalid in XML and turn
# into terminal escapes in text; they are shown as their Unicode "control picture".
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _control_picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    return "\u2421" if code == 0x7F else chr(0x2400 + code)


def finalize(value: object) -> object:
    """Applied to every ``{{ ... }}`` output: ``None`` prints nothing, controls show."""
    if value is None:
        return ""
    if isinstance(value, str) and _CONTROL_CHARS.search(value):
        cleaned = _CONTROL_CHARS.sub(_control_picture, value)
        # Still safe markup: only control characters were replaced, by printable ones.
        return Markup(cleaned) if isinstance(value, Markup) else cleaned  # noqa: S704
    return value


def finalize_fast(value: object) -> object:
    """:func:`finalize` with one regular expression search for plain text, the most
    frequent output (the same result)."""
    if type(value) is str:
        return finalize(value) if _CONTROL_CHARS.search(value) else value
    return finalize(value)


def html_output(value: Any) -> str:
    """What an output of an autoescaping template writes: ``escape(finalize(value))``."""
    if type(value) is str:
        if _CONTROL_CHARS.search(value) is not None:
            value = _CONTROL_CHARS.sub(_control_picture, value)
        return _escape_inner(value)
    return escape(finalize(value))


def text_output(value: Any) -> str:
    """What an output of a plain-text template writes: ``str(finalize(value))``."""
    if type(value) is str:
        if _CONTROL_CHARS.search(value) is not None:
            return _CONTROL_CHARS.sub(_control_picture, value)
        return value
    return str(finalize(value))


_OURS = (finalize, finalize_fast)


class OutputCompiler(CodeGenerator):
    """Jinja2's compiler, writing each output as one call to the environment's
    ``html_output`` or ``text_output`` (see the module doc).

    It overrides the two hooks around an output expression that Jinja2's own native-types
    compiler overrides; ``tests/engine/test_render_fast.py`` renders every shipped
    template and hostile values both ways and fails if they stop writing the same.
    """

    def _one_call(self, frame: Frame) -> bool:
        """Whether this output's escaping is known now and its finalize is ours."""
        return not frame.eval_ctx.volatile and self.environment.finalize in _OURS

    def _output_child_pre(self, node: Expr, frame: Frame, finalize: Any) -> None:
        if not self._one_call(frame):
            super()._output_child_pre(node, frame, finalize)
        elif frame.eval_ctx.autoescape:
            self.write("environment.html_output(")
        else:
            self.write("environment.text_output(")

    def _output_child_post(self, node: Expr, frame: Frame, finalize: Any) -> None:
        if not self._one_call(frame):
            super()._output_child_post(node, frame, finalize)
        else:
            self.write(")")


class OneCallOutput(Environment):
    """An environment whose templates write each output in one call
    (:class:`OutputCompiler`) when its ``finalize`` is :func:`finalize` or
    :func:`finalize_fast`, which those calls apply; with any other, as Jinja2 does."""

    code_generator_class = OutputCompiler
    html_output = staticmethod(html_output)
    text_output = staticmethod(text_output)
