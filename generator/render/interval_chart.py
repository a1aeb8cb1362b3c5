"""Render stage: a chart of intervals (a "forest plot") as inline SVG, one row per measured quantity.

Each row is a label, its 95% interval as a bar from low to high, its mean as a dot and the number written
beside it; reference lines (the summed map, chance, a uniform share) run across all rows. It uses the Plot and tick
helpers of generator/render/charts.py (no plotting library, nothing fetched). Colours are SVG presentation
attributes: text and axes take ``currentColor`` (the page's text colour, so light, dark and embed pages all work
without a stylesheet), the marks a blue and an orange that read on both backgrounds. Hovering a row shows its
values (an SVG ``<title>``); every row carries ``data-mean``, ``data-low``, ``data-high`` and ``data-n`` and the
element carries its mapping (``data-x-min``, ``data-x-max``, ``data-plot`` = "left top width height"), so a test
or a reader can turn each mark back into its number.
"""

from __future__ import annotations

from typing import Any, Sequence

from markupsafe import Markup, escape

from generator.render.charts import Plot, nice_ticks

WIDTH, LABEL_WIDTH, VALUE_WIDTH = 640, 250, 112  # the label column on the left, the value column on the right
ROW_HEIGHT, TOP, BOTTOM = 22, 8, 46
MARK, REFERENCE = "#4263eb", "#e8590c"  # readable on white and on Material's slate


def _value(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _count(row: dict[str, Any]) -> str:
    return "" if row.get("n") is None else f" (n {row['n']})"


def row_text(row: dict[str, Any]) -> str:
    """A row as words: "label: mean [low, high], n N" (what its hover title and the aria label say)."""
    text = f"{row['label']}: {_value(row['mean'])}"
    if row.get("low") is not None and row.get("high") is not None:
        text += f" [{_value(row['low'])}, {_value(row['high'])}]"
    if row.get("n") is not None:
        text += f", n {row['n']}"
    return text + (f" ({row['note']})" if row.get("note") else "")


def x_range(rows: Sequence[dict], references: Sequence[dict]) -> tuple[float, float]:
    """The x axis: from 0 (or the lowest value, when negative) to the first round tick past every mark."""
    values = [0.0] + [v for r in rows for v in (r["mean"], r.get("low"), r.get("high")) if v is not None]
    values += [r["value"] for r in references]
    low, high = min(values), max(values)
    ticks = nice_ticks(low, high if high > low else low + 1)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    x_min = ticks[0] if ticks[0] <= low else ticks[0] - step
    x_max = ticks[-1] if ticks[-1] >= high else ticks[-1] + step
    return x_min, x_max


def interval_svg(chart: dict[str, Any]) -> Markup:
    """The chart of a manifest entry ``{title, axis, rows, references}`` as inline SVG ("" without rows)."""
    rows, references = chart.get("rows") or [], chart.get("references") or []
    if not rows:
        return Markup("")
    x_min, x_max = x_range(rows, references)
    height = TOP + ROW_HEIGHT * len(rows) + BOTTOM + 16 * len(references)  # reference labels under the axis
    plot = Plot(x_min, x_max, 0, len(rows), width=WIDTH, height=height, left=LABEL_WIDTH, right=VALUE_WIDTH,
                top=TOP, bottom=BOTTOM)
    plot_w, bottom_y = WIDTH - LABEL_WIDTH - VALUE_WIDTH, TOP + ROW_HEIGHT * len(rows)
    label = f"{chart['title']}. " + "; ".join(row_text(r) for r in rows) + "".join(
        f"; {r['label']}: {r['value']:.3f}" for r in references)
    parts = [f'<svg class="atlas-interval-chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(label)}" '
             f'data-chart="{escape(chart["name"])}" data-x-min="{x_min:g}" data-x-max="{x_max:g}" '
             f'data-plot="{LABEL_WIDTH} {TOP} {plot_w} {bottom_y - TOP}" font-size="12" width="100%" '
             f'style="max-width: {WIDTH}px; height: auto" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(chart['title'])}</title>"]
    for tick in nice_ticks(x_min, x_max):
        x = plot.x(tick)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{bottom_y}" stroke="currentColor" '
                     f'stroke-opacity=".15"/><text x="{x:.1f}" y="{bottom_y + 14}" text-anchor="middle" '
                     f'fill="currentColor" fill-opacity=".75">{tick:g}</text>')
    parts.append(f'<text x="{LABEL_WIDTH + plot_w / 2:.1f}" y="{bottom_y + 30}" text-anchor="middle" '
                 f'fill="currentColor" fill-opacity=".75">{escape(chart["axis"])} (dot: mean; bar: 95% interval)</text>')
    for i, row in enumerate(rows):
        y = TOP + ROW_HEIGHT * (i + 0.5)
        data = " ".join(f'data-{k}="{row[k]}"' for k in ("mean", "low", "high", "n") if row.get(k) is not None)
        parts.append(f'<g class="atlas-interval-row" data-label="{escape(row["label"])}" {data}>'
                     f"<title>{escape(row_text(row))}</title>"
                     f'<rect x="0" y="{y - ROW_HEIGHT / 2:.1f}" width="{WIDTH}" height="{ROW_HEIGHT}" fill="{MARK}" '
                     f'fill-opacity="{".05" if i % 2 else "0"}"/>'
                     f'<text x="{LABEL_WIDTH - 8}" y="{y + 4:.1f}" text-anchor="end" fill="currentColor">'
                     f"{escape(row['label'])}</text>")
        if row.get("low") is not None and row.get("high") is not None:
            parts.append(f'<line x1="{plot.x(row["low"]):.1f}" x2="{plot.x(row["high"]):.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                         f'stroke="{MARK}" stroke-width="5" stroke-opacity=".35" stroke-linecap="round"/>')
        parts.append(f'<circle cx="{plot.x(row["mean"]):.1f}" cy="{y:.1f}" r="4.5" fill="{MARK}"/>'
                     f'<text x="{LABEL_WIDTH + plot_w + 8}" y="{y + 4:.1f}" fill="currentColor">'
                     f"{_value(row['mean'])}{_count(row)}</text></g>")
    for j, ref in enumerate(references):
        x = plot.x(ref["value"])
        parts.append(f'<g class="atlas-interval-reference" data-label="{escape(ref["label"])}" data-value="{ref["value"]}">'
                     f"<title>{escape(ref['label'])}: {ref['value']:.3f}</title>"
                     f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{bottom_y}" stroke="{REFERENCE}" stroke-width="1.5" '
                     f'stroke-dasharray="5 4"/><text x="{LABEL_WIDTH}" y="{bottom_y + 48 + 16 * j:.0f}" '
                     f'fill="{REFERENCE}">┆ dashed: {escape(ref["label"])} {ref["value"]:.3f}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))
