"""Render stage: the one way a page carries a chart: its numbers as JSON, drawn in the browser, and a table.

Every chart of the site (schedules, beta-sum jumps, guidance sizes, loss curves, the tau plot, the DAAM findings'
interval charts) is a ``Chart``: axes, series of (x, y) points and what follows the step. ``plot_html`` writes

* ``<div class="atlas-plot" data-plot='{json}'>``: the chart's data, which site/assets/js/charts.js draws with the
  vendored uPlot (site/assets/vendor/uplot/; hover values, the light and dark schemes, resizing). The library is
  loaded only on a page that has such an element; nothing is fetched from elsewhere;
* inside it a ``role="img"`` box with a summary for ``aria-label`` (what a screen reader says) and a table of the
  numbers behind a "Numbers" disclosure (the text alternative, also what a reader without script sees).

Series kinds: ``line``, ``steps`` (a staircase: each value holds until the next x), ``points``, ``ring`` (an open
circle, e.g. the best tau), ``dash`` (a reference line), ``hidden`` (only in the hover values, e.g. an interval's
ends; ``own_scale`` keeps one off the value axis, e.g. a count). A key under the chart names the drawn series. A
``rows`` chart is horizontal: x is the row index, each row named, as in a forest plot; ``intervals`` names the two
series whose values are drawn as a bar between them. ``follow`` ties a chart to its figure's step group
(``data-follow-group``, mapped through ``data-column-map``): ``"marks"`` rings the point whose ``marks`` entry is
the current column, ``"column"`` draws the series whose ``column`` is current bold and the others faint; a click on
a series with a ``step`` moves the figure there. Numbers are rounded to 6 significant digits; every string reaches
the page escaped (``html_json``, markupsafe).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from markupsafe import Markup, escape

from generator.render.escape import html_json

KINDS = ("line", "steps", "points", "ring", "dash", "hidden")
FOLLOW = (None, "marks", "column")
SIGNIFICANT = 6  # digits kept of every number in the chart's JSON


@dataclass(frozen=True)
class Axis:
    """An axis: its title, a log scale or not, fixed ends (None: from the data), the digits hover values show and
    the short name the hover line gives its values (the title when empty)."""

    label: str
    log: bool = False
    min: float | None = None
    max: float | None = None
    digits: int = 4
    short: str = ""


@dataclass(frozen=True)
class Series:
    """One series: (x, y) points (ascending x), how it is drawn and, for a following chart, what it follows."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    kind: str = "line"
    color: int = 0  # index into charts.js's palette (its light and dark variants)
    width: float = 2.0
    marks: Sequence[int] = ()  # points: the figure's step each point stands for (the current one is ringed)
    column: int | None = None  # follow "column": drawn bold when the figure's current column is this one
    step: int | None = None  # the step a click on this series moves the figure to
    own_scale: bool = False  # hidden numbers of another kind (a count): kept off the value axis
    text: str = ""  # a longer name for the hover line (e.g. a jump's betas and their sum)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"series kind {self.kind!r} is not one of {KINDS}")
        if len(self.x) != len(self.y) or (self.marks and len(self.marks) != len(self.x)):
            raise ValueError(f"series {self.label!r}: {len(self.x)} x, {len(self.y)} y and {len(self.marks)} marks")


@dataclass(frozen=True)
class Table:
    """The text alternative: a caption, column heads and rows of text."""

    caption: str
    head: Sequence[str]
    rows: Sequence[Sequence[str]]


@dataclass(frozen=True)
class Chart:
    """A chart as a page carries it (see the module docstring)."""

    name: str  # a CSS hook: class "atlas-plot-<name>"
    label: str  # the summary a screen reader says
    x: Axis
    y: Axis
    series: Sequence[Series]
    table: Table
    height: int = 240  # of the plot area and its axes, in CSS pixels (the hover line comes below)
    rows: Sequence[str] = ()
    intervals: tuple[int, int] | None = None  # (low series, high series) drawn as a bar at every x
    follow: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)  # extra data-* attributes on the element

    def __post_init__(self) -> None:
        if self.follow not in FOLLOW:
            raise ValueError(f"follow {self.follow!r} is not one of {FOLLOW}")


def rounded(value: float | None) -> float | None:
    """A number with SIGNIFICANT digits (None and non-finite numbers become None: JSON has no infinity)."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{SIGNIFICANT}g}")


def _axis(axis: Axis) -> dict[str, Any]:
    out: dict[str, Any] = {"label": axis.label, "digits": axis.digits}
    if axis.short:
        out["short"] = axis.short
    if axis.log:
        out["log"] = True
    for key in ("min", "max"):
        if getattr(axis, key) is not None:
            out[key] = rounded(getattr(axis, key))
    return out


def _series(series: Series) -> dict[str, Any]:
    out: dict[str, Any] = {"label": series.label, "kind": series.kind, "color": series.color, "width": series.width,
                           "x": [rounded(v) for v in series.x], "y": [rounded(v) for v in series.y]}
    for key in ("marks", "column", "step"):
        value = getattr(series, key)
        if value is not None and value != ():
            out[key] = list(value) if key == "marks" else value
    if series.text:
        out["text"] = series.text
    if series.own_scale:
        out["own_scale"] = True
    return out


def spec(chart: Chart) -> dict[str, Any]:
    """The JSON charts.js reads from ``data-plot``."""
    out: dict[str, Any] = {"x": _axis(chart.x), "y": _axis(chart.y), "height": chart.height,
                           "series": [_series(s) for s in chart.series]}
    if chart.rows:
        out["rows"] = list(chart.rows)
    if chart.intervals is not None:
        out["intervals"] = list(chart.intervals)
    if chart.follow:
        out["follow"] = chart.follow
    return out


def table_html(table: Table) -> Markup:
    """The numbers as an HTML table inside a closed disclosure (no blank line: Markdown passes it through)."""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in table.head)
    body = "".join("<tr>" + "".join(f'<th scope="row">{escape(c)}</th>' if i == 0 else f"<td>{escape(c)}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in table.rows)
    return Markup(f'<details class="atlas-plot-numbers"><summary>Numbers</summary><table>'
                  f"<caption>{escape(table.caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                  "</table></details>")


def plot_html(chart: Chart) -> Markup:
    """The chart's element: its data for charts.js, a labelled drawing box and the table of its numbers."""
    extra = "".join(f' data-{escape(k)}="{escape(v)}"' for k, v in sorted(chart.attributes.items()))
    return Markup(f'<div class="atlas-plot atlas-plot-{escape(chart.name)}" data-plot=\'{html_json(spec(chart))}\''
                  f'{extra}><div class="atlas-plot-box" role="img" aria-label="{escape(chart.label)}" '
                  f'style="height: {int(chart.height)}px"></div>{table_html(chart.table)}</div>')
