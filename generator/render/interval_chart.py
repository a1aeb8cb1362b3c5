"""Render stage: a chart of intervals (a "forest plot"), one row per measured quantity, as ``Chart`` data
(generator/render/plot.py) that site/assets/js/charts.js draws.

Each row is a label, its 95% interval as a bar from low to high and its mean as a dot; reference lines (the summed
map, chance, a uniform share) run across all rows, dashed. Hovering a row names it with its mean, interval and n;
the table under the chart holds the same numbers for a screen reader or a reader without script.
"""

from __future__ import annotations

from typing import Any, Sequence

from markupsafe import Markup

from generator.render.plot import Axis, Chart, Series, Table, plot_html

ROW_HEIGHT, FRAME = 24, 64  # CSS pixels per row, and for the value axis under the rows


def _value(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def row_text(row: dict[str, Any]) -> str:
    """A row as words: "label: mean [low, high], n N" (what the aria label says)."""
    text = f"{row['label']}: {_value(row['mean'])}"
    if row.get("low") is not None and row.get("high") is not None:
        text += f" [{_value(row['low'])}, {_value(row['high'])}]"
    if row.get("n") is not None:
        text += f", n {row['n']}"
    return text + (f" ({row['note']})" if row.get("note") else "")


def _counts(rows: Sequence[dict]) -> list[Series]:
    """The rows' n as a hidden series off the value axis (named when hovering); none when no row has one."""
    kept = [(i, r["n"]) for i, r in enumerate(rows) if r.get("n") is not None]
    return [Series("n", [i for i, _ in kept], [v for _, v in kept], kind="hidden", own_scale=True)] if kept else []


def interval_chart(chart: dict[str, Any]) -> Markup:
    """The chart of a manifest entry ``{name, title, axis, rows, references}`` ("" without rows)."""
    rows, references = chart.get("rows") or [], chart.get("references") or []
    if not rows:
        return Markup("")
    label = f"{chart['title']}. " + "; ".join(row_text(r) for r in rows) + "".join(
        f"; {r['label']}: {r['value']:.3f}" for r in references)
    indices = list(range(len(rows)))
    series = [Series("mean", indices, [r["mean"] for r in rows], kind="points")]
    bars = [(i, r) for i, r in enumerate(rows) if r.get("low") is not None and r.get("high") is not None]
    intervals = None
    if bars:
        series += [Series("95% low", [i for i, _ in bars], [r["low"] for _, r in bars], kind="hidden"),
                   Series("95% high", [i for i, _ in bars], [r["high"] for _, r in bars], kind="hidden")]
        intervals = (1, 2)
    series += _counts(rows)
    edge = len(rows) - 0.5
    series += [Series(r["label"], [-0.5, edge], [r["value"], r["value"]], kind="dash", color=1 + k % 3, width=1.5)
               for k, r in enumerate(references)]
    lowest = min([0.0] + [v for r in rows for v in (r["mean"], r.get("low")) if v is not None]
                 + [r["value"] for r in references])
    table = Table(chart["title"], ["row", "mean", "95% interval", "n"],
                  [[r["label"] + (f" ({r['note']})" if r.get("note") else ""), _value(r["mean"]),
                    f"{_value(r.get('low'))} – {_value(r.get('high'))}" if r.get("low") is not None else "–",
                    "" if r.get("n") is None else str(r["n"])] for r in rows]
                  + [[f"reference: {r['label']}", _value(r["value"]), "", ""] for r in references])
    return plot_html(Chart(
        "intervals", label, Axis(""), Axis(f"{chart['axis']} (dot: mean; bar: 95% interval)", min=lowest, digits=3),
        series, table, height=ROW_HEIGHT * len(rows) + FRAME, rows=[r["label"] for r in rows], intervals=intervals))
