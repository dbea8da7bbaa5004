"""Server-rendered SVG charts for the console: numbers in, accessible markup out.

No script and no inline style (the console's CSP forbids both): shapes carry classes that
``static/admin.css`` colours. Every chart has a ``<title>`` and a ``<desc>`` (read by
screen readers, named by ``aria-labelledby``) and text labels on its axes; the view box is
small (360 units wide) and scales to the page, so the labels stay readable on a 375 px
phone screen. All text is escaped: a label is data, never markup.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["Series", "bar_chart", "hbar_chart", "line_chart", "nice_max"]

WIDTH = 360
HEIGHT = 180
LEFT = 58  # room for the y-axis labels ("500 ms", "1.5 min")
RIGHT = 8
TOP = 12
BOTTOM = 34  # room for the x-axis labels and the legend
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Series:
    """One line (or row of bars) of a chart: its name (the legend) and its values
    (None: no data for that slot); ``kind`` picks its colour class."""

    name: str
    values: Sequence[float | None]
    kind: str = "a"


def nice_max(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^n at or above ``value`` (an axis top); 1 for nothing."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _number(value: float, unit: str) -> str:
    if unit == "s":
        return _seconds(value)
    text = f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
    return f"{text} {unit}".strip()


def _seconds(value: float) -> str:
    if value == 0:
        return "0"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def _frame(title: str, desc: str, body: list[str], css: str, height: int = HEIGHT) -> Markup:
    ident = f"chart{next(_ids)}"
    head = (
        f'<svg class="chart {css}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every text escaped above


def _axes(top: float, unit: str, labels: Sequence[str]) -> list[str]:
    """The y axis (0, the middle, the top), the baseline and up to three x labels."""
    bottom = HEIGHT - BOTTOM
    plot = bottom - TOP
    out = [f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}"/>']
    for fraction in (0.0, 0.5, 1.0):
        y = bottom - plot * fraction
        if fraction:
            out.append(
                f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
            )
        out.append(
            f'<text class="label" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_number(top * fraction, unit))}</text>"
        )
    if labels:
        slot = (WIDTH - LEFT - RIGHT) / len(labels)
        picks = sorted({0, len(labels) // 2, len(labels) - 1})
        for index in picks:
            x = LEFT + slot * (index + 0.5)
            anchor = "start" if index == 0 else "end" if index == len(labels) - 1 else "middle"
            if anchor == "start":
                x = LEFT
            elif anchor == "end":
                x = WIDTH - RIGHT
            out.append(
                f'<text class="label" x="{x:.1f}" y="{bottom + 14}" text-anchor="{anchor}">'
                f"{escape(labels[index])}</text>"
            )
    return out


def _legend(series: Sequence[Series]) -> list[str]:
    out = []
    x = float(LEFT)
    y = HEIGHT - 6
    for s in series:
        out.append(
            f'<rect class="key s-{escape(s.kind)}" x="{x:.1f}" y="{y - 9}" width="10" height="10"/>'
        )
        out.append(f'<text class="label" x="{x + 14:.1f}" y="{y}">{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    return out


def bar_chart(
    title: str, labels: Sequence[str], series: Series, *, unit: str = "", desc: str = ""
) -> Markup:
    """Vertical bars, one per label (a time bucket), heights proportional to the values."""
    values = [v or 0.0 for v in series.values]
    top = nice_max(max(values, default=0.0))
    bottom = HEIGHT - BOTTOM
    plot = bottom - TOP
    slot = (WIDTH - LEFT - RIGHT) / max(len(values), 1)
    body = _axes(top, unit, labels)
    for index, value in enumerate(values):
        height = plot * value / top
        x = LEFT + slot * index + slot * 0.15
        body.append(
            f'<rect class="bar s-{escape(series.kind)}" x="{x:.2f}" y="{bottom - height:.2f}" '
            f'width="{slot * 0.7:.2f}" height="{height:.2f}">'
            f"<title>{escape(labels[index] if index < len(labels) else '')}: "
            f"{escape(_number(value, unit))}</title></rect>"
        )
    total = sum(values)
    summary = desc or (
        f"{series.name}: {_number(total, unit)} in all, at most "
        f"{_number(max(values, default=0.0), unit)} per interval."
    )
    return _frame(title, summary, body, "bars")


def line_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], *, unit: str = "", desc: str = ""
) -> Markup:
    """Lines with a dot per value; a None value breaks the line (no data there)."""
    known = [v for s in series for v in s.values if v is not None]
    top = nice_max(max(known, default=0.0))
    bottom = HEIGHT - BOTTOM
    plot = bottom - TOP
    count = max((len(s.values) for s in series), default=0)
    slot = (WIDTH - LEFT - RIGHT) / max(count, 1)
    body = _axes(top, unit, labels)
    for s in series:
        run: list[str] = []
        runs: list[list[str]] = []
        for index, value in enumerate(s.values):
            if value is None:
                if run:
                    runs.append(run)
                run = []
                continue
            x = LEFT + slot * (index + 0.5)
            y = bottom - plot * min(value, top) / top
            run.append(f"{x:.2f},{y:.2f}")
            label = labels[index] if index < len(labels) else ""
            body.append(
                f'<circle class="dot s-{escape(s.kind)}" cx="{x:.2f}" cy="{y:.2f}" r="2.5">'
                f"<title>{escape(s.name)} {escape(label)}: {escape(_number(value, unit))}</title>"
                "</circle>"
            )
        if run:
            runs.append(run)
        for points in runs:
            body.append(f'<polyline class="line s-{escape(s.kind)}" points="{" ".join(points)}"/>')
    body.extend(_legend(series))
    summary = desc or (
        "No data in this period."
        if not known
        else "; ".join(f"{s.name} at most {_number(_peak(s), unit)}" for s in series) + "."
    )
    return _frame(title, summary, body, "lines")


def _peak(series: Series) -> float:
    return max((v for v in series.values if v is not None), default=0.0)


def hbar_chart(
    title: str, items: Sequence[tuple[str, float]], *, unit: str = "", desc: str = ""
) -> Markup:
    """Horizontal bars, one per named item, lengths proportional to the values; the
    value is written next to each bar."""
    row = 22
    height = TOP + row * max(len(items), 1) + 8
    top = nice_max(max((v for _, v in items), default=0.0))
    left = 120
    span = WIDTH - left - 70
    body = []
    for index, (name, value) in enumerate(items):
        y = TOP + row * index
        length = span * value / top
        body.append(
            f'<text class="label" x="{left - 4}" y="{y + 14}" text-anchor="end">'
            f"{escape(name[:18])}</text>"
        )
        body.append(
            f'<rect class="bar s-c" x="{left}" y="{y + 3}" width="{length:.2f}" height="14">'
            f"<title>{escape(name)}: {escape(_number(value, unit))}</title></rect>"
        )
        body.append(
            f'<text class="label" x="{left + length + 4:.2f}" y="{y + 14}">'
            f"{escape(_number(value, unit))}</text>"
        )
    if not items:
        body.append(f'<text class="label" x="{left}" y="{TOP + 14}">nothing queued</text>')
    summary = desc or (
        "; ".join(f"{name}: {_number(value, unit)}" for name, value in items) or "Nothing queued."
    )
    return _frame(title, summary, body, "hbars", height)
