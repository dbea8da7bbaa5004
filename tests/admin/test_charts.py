"""The console's SVG charts: shapes proportional to the numbers, accessible, inert text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from rsbridge.web.admin.charts import Series, bar_chart, hbar_chart, line_chart, nice_max

SVG = "{http://www.w3.org/2000/svg}"


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # noqa: S314 - our own output


def _bars(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if "bar" in r.get("class", "").split()]


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (0.3, 0.5), (1, 1), (7, 10), (10, 10), (11, 20), (420, 500)]
)
def test_axis_tops_are_round_numbers_at_or_above_the_data(value: float, top: float) -> None:
    assert nice_max(value) == pytest.approx(top)


def test_bar_heights_are_proportional_to_the_values() -> None:
    values = [0.0, 5.0, 10.0, 2.5]
    root = _parse(bar_chart("Delivered", ["a", "b", "c", "d"], Series("delivered", values)))
    heights = [float(b.get("height", "")) for b in _bars(root)]
    assert len(heights) == 4
    assert heights[0] == 0
    assert heights[2] == pytest.approx(2 * heights[1])
    assert heights[1] == pytest.approx(2 * heights[3])
    # The bars stand on one baseline.
    bottoms = {round(float(b.get("y", "")) + float(b.get("height", "")), 2) for b in _bars(root)}
    assert len(bottoms) == 1


def test_a_chart_is_labelled_for_screen_readers_and_eyes() -> None:
    root = _parse(
        bar_chart("Sessions delivered", ["09:00", "10:00", "11:00"], Series("d", [1, 4, 2]))
    )
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.text == "Sessions delivered"
    assert desc is not None and "7 in all" in (desc.text or "")
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "09:00" in texts and "11:00" in texts  # x axis: first and last bucket
    assert "5" in texts  # y axis top (nice_max(4) = 5)
    # Scales to its container: a view box, no fixed pixel size.
    assert root.get("viewBox") == "0 0 360 180" and root.get("width") is None


def test_line_chart_breaks_where_there_is_no_data_and_reads_seconds() -> None:
    chart = line_chart(
        "Latency",
        ["a", "b", "c", "d"],
        [Series("median", [0.2, None, 0.4, 0.5], "a"), Series("p95", [1.5, None, 3, 4], "b")],
        unit="s",
    )
    root = _parse(chart)
    lines = list(root.iter(f"{SVG}polyline"))
    # Each series: one point before the gap, a run of two after it.
    assert sorted(len(p.get("points", "").split()) for p in lines) == [1, 1, 2, 2]
    dots = list(root.iter(f"{SVG}circle"))
    assert len(dots) == 6
    y_of = {d.find(f"{SVG}title").text: float(d.get("cy", "")) for d in dots}  # type: ignore[union-attr]
    # Higher values sit higher (smaller y).
    assert y_of["p95 d: 4.0 s"] < y_of["p95 c: 3.0 s"] < y_of["median d: 500 ms"]
    assert "5.0 s" in [t.text for t in root.iter(f"{SVG}text")]


def test_hbar_lengths_are_proportional_and_names_are_text_not_markup() -> None:
    hostile = '<script>alert("x")</script>'
    chart = hbar_chart("Oldest queued job", [("a1/sn", 120.0), (hostile, 30.0)], unit="s")
    assert "<script>" not in chart
    root = _parse(chart)
    widths = [float(b.get("width", "")) for b in _bars(root)]
    assert widths[0] == pytest.approx(4 * widths[1])
    assert any(hostile[:18] == t.text for t in root.iter(f"{SVG}text"))


def test_an_empty_chart_says_so() -> None:
    root = _parse(line_chart("Latency", ["a", "b"], [Series("median", [None, None])], unit="s"))
    assert (root.find(f"{SVG}desc").text or "") == "No data in this period."  # type: ignore[union-attr]
    assert not list(root.iter(f"{SVG}polyline"))
    empty = _parse(hbar_chart("Oldest queued job", []))
    assert "nothing queued" in [t.text for t in empty.iter(f"{SVG}text")]
