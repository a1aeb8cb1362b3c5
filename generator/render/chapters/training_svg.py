"""Render stage: the training chapter's two drawn figures as inline SVG: the loss curves and the UNet diagram.

* ``loss_svg``: one chart of one or more models' training losses (log scale) against the epoch, each model's
  per-step losses binned into a line and each epoch's mean a dot. The time- and class-conditioned DDPMs share a
  chart (both predict the noise), the single-step denoiser has its own (it predicts the image). The axis mapping
  is written on the element (data-x-max in epochs, data-log-min, data-log-max, data-plot) and each series carries
  its stage and steps per epoch, so a reader (or a test) can turn every point back into (step, loss).
* ``diagram_svg``: the UNet figure from the geometry the bake stage laid out (generator/bake/chapters/diagrams.py:
  boxes, paths, the ``+`` / ``×`` nodes where time and class enter), the same figure as its PNG download.

Colours are SVG presentation attributes (no style element, nothing inline the Content-Security-Policy would
refuse); every text comes from the manifest's numbers and the model's own block names, escaped.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from markupsafe import Markup, escape

STAGE_NAMES = {"denoiser": "single-step denoiser", "time": "time-conditioned DDPM", "class": "class-conditioned DDPM"}
SERIES_INK = {"denoiser": ("#4051b5", "#e8590c"), "time": ("#4051b5", "#1c2e8c"), "class": ("#c2185b", "#8e0e3f")}
MAX_CURVE_POINTS = 400  # per-step losses are averaged in bins down to at most this many points per series

# loss chart geometry (SVG user units)
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 26, 40

# diagram colours (the same as the PNG's, generator/bake/chapters/diagrams.py)
ROLE_FILL = {"io": "#ececec", "encoder": "#dbe4ff", "bottleneck": "#ffeccc", "decoder": "#d6f0de",
             "condition": "#fae0ec"}
PATH_INK = {"main": "#3c3c3c", "skip": "#4051b5", "condition": "#c83c78"}


def binned(values: list[float], most: int = MAX_CURVE_POINTS) -> list[tuple[float, float]]:
    """(x, mean) per bin of ``ceil(n / most)`` consecutive values; x is the bin's mean index."""
    size = max(1, math.ceil(len(values) / most))
    points = []
    for start in range(0, len(values), size):
        chunk = values[start:start + size]
        points.append((start + (len(chunk) - 1) / 2, sum(chunk) / len(chunk)))
    return points


def _nice_ticks(low: float, high: float) -> list[float]:
    """Loss values for y-axis labels on a log scale: 1, 2, 5 x 10^k inside [low, high]."""
    ticks = []
    for exponent in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0 ** exponent
            if low <= value <= high:
                ticks.append(value)
    return ticks or [low, high]


def _series(stage: str, losses: dict[str, Any]) -> tuple[list[float], list[float], int]:
    """(step losses, epoch means, steps per epoch) of one model."""
    steps = [float(v) for v in losses.get("step_losses", [])]
    epochs = [float(v) for v in losses.get("epoch_losses", [])]
    per_epoch = int(losses.get("steps_per_epoch") or max(1, len(steps) // max(1, len(epochs))))
    return steps, epochs, per_epoch


def loss_svg(series: Sequence[tuple[str, dict[str, Any]]]) -> Markup:
    """Inline SVG of the training losses of ``series`` ((stage, losses.json content), ...) on one log-scale chart."""
    data = [(stage, *_series(stage, losses)) for stage, losses in series]
    data = [d for d in data if d[1] and min(d[1] + d[2]) > 0]
    if not data:
        return Markup("")
    values = [v for _, steps, epochs, _ in data for v in steps + epochs]
    x_max = max(len(steps) / per_epoch for _, steps, _, per_epoch in data)  # in epochs
    low, high = min(values), max(values)
    log_min, log_max = math.log10(low) - 0.02, math.log10(high) + 0.02
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(epoch: float) -> float:
        return LEFT + epoch / x_max * plot_w

    def y_of(loss: float) -> float:
        return TOP + (log_max - math.log10(loss)) / (log_max - log_min) * plot_h

    label = "Training loss of the " + " and the ".join(
        f"{STAGE_NAMES.get(stage, stage)} ({len(epochs)} epochs, {len(steps)} steps, from {steps[0]:.4g} to "
        f"{epochs[-1] if epochs else steps[-1]:.4g} epoch mean)" for stage, steps, epochs, _ in data)
    stages = " ".join(stage for stage, *_ in data)
    parts = [f'<svg class="atlas-loss" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}" '
             f'data-stages="{stages}" data-x-max="{x_max:.6f}" data-log-min="{log_min:.6f}" '
             f'data-log-max="{log_max:.6f}" data-plot="{LEFT} {TOP} {plot_w} {plot_h}" '
             'xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(label)}</title>"]
    for value in _nice_ticks(low, high):
        y = y_of(value)
        parts.append(f'<line class="atlas-loss-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.2f}" y2="{y:.2f}"/>'
                     f'<text class="atlas-loss-tick" x="{LEFT - 6}" y="{y + 4:.2f}" text-anchor="end">{value:g}</text>')
    whole = math.ceil(x_max - 1e-9)
    every = max(1, math.ceil(whole / 20))
    for epoch in range(whole + 1):
        x = x_of(min(epoch, x_max))
        parts.append(f'<line class="atlas-loss-grid" x1="{x:.2f}" x2="{x:.2f}" y1="{TOP}" y2="{TOP + plot_h}"/>')
        if epoch < whole and ((epoch + 1) % every == 0 or epoch == 0):
            middle = x_of(min(epoch + 0.5, x_max))
            parts.append(f'<text class="atlas-loss-tick" x="{middle:.2f}" y="{TOP + plot_h + 17}" '
                         f'text-anchor="middle">{epoch + 1}</text>')
    parts.append(f'<text class="atlas-loss-axis" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 3}" '
                 f'text-anchor="middle">epoch</text>')
    for index, (stage, steps, epochs, per_epoch) in enumerate(data):
        line, dot = SERIES_INK.get(stage, ("#4051b5", "#e8590c"))
        points = " ".join(f"{x_of(x / per_epoch):.2f},{y_of(v):.2f}" for x, v in binned(steps))
        bin_size = max(1, math.ceil(len(steps) / MAX_CURVE_POINTS))
        parts.append(f'<polyline class="atlas-loss-series" data-stage="{stage}" data-bin="{bin_size}" '
                     f'data-steps-per-epoch="{per_epoch}" fill="none" stroke="{line}" stroke-width="1.2" '
                     f'stroke-opacity="0.8" points="{points}"/>')
        for epoch, value in enumerate(epochs):
            parts.append(f'<circle class="atlas-loss-mean" data-stage="{stage}" data-epoch="{epoch + 1}" '
                         f'cx="{x_of(min(epoch + 0.5, x_max)):.2f}" cy="{y_of(value):.2f}" r="4" fill="{dot}" '
                         f'stroke="white" stroke-width="1"><title>{escape(STAGE_NAMES.get(stage, stage))}, epoch '
                         f"{epoch + 1}: mean loss {value:.5g}</title></circle>")
        if len(data) > 1:  # a legend entry per series
            x = LEFT + 8 + index * 250
            parts.append(f'<line x1="{x}" x2="{x + 22}" y1="12" y2="12" stroke="{line}" stroke-width="2"/>'
                         f'<circle cx="{x + 11}" cy="12" r="4" fill="{dot}" stroke="white" stroke-width="1"/>'
                         f'<text class="atlas-loss-tick" x="{x + 28}" y="16">'
                         f"{escape(STAGE_NAMES.get(stage, stage))}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _arrowhead(points: Sequence[Sequence[float]], size: float = 8.0) -> str:
    """The SVG points of an arrowhead at the end of a path."""
    (x0, y0), (x1, y1) = points[-2], points[-1]
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    corners = [(x1, y1), (x1 - size * ux + size * 0.5 * uy, y1 - size * uy - size * 0.5 * ux),
               (x1 - size * ux - size * 0.5 * uy, y1 - size * uy + size * 0.5 * ux)]
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in corners)


def diagram_svg(unet: dict[str, Any], label: str) -> Markup:
    """Inline SVG of the UNet figure from its baked geometry (``unet["geometry"]``)."""
    g = unet["geometry"]
    parts = [f'<svg class="atlas-unet" viewBox="0 0 {g["width"]} {g["height"]}" role="img" '
             f'aria-label="{escape(label)}" data-hidden="{int(unet["hidden"])}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(label)}</title>"]
    for path in g["paths"]:
        ink = PATH_INK.get(path["role"], "#333")
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in path["points"])
        width = 2 if path["role"] == "main" else 1.2
        parts.append(f'<polyline data-role="{escape(path["role"])}" points="{points}" fill="none" stroke="{ink}" '
                     f'stroke-width="{width}"/><polygon points="{_arrowhead(path["points"])}" fill="{ink}"/>')
        if path["role"] == "skip":
            (x0, y0), (x1, _) = path["points"][0], path["points"][-1]
            parts.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{y0 - 5:.1f}" text-anchor="middle" font-size="10" '
                         f'fill="{ink}">concat</text>')
    for box in g["boxes"]:
        parts.append(f'<g data-block="{escape(box["name"])}" data-role="{escape(box["role"])}">'
                     f'<rect x="{box["x"]:.1f}" y="{box["y"]:.1f}" width="{box["w"]}" height="{box["h"]}" rx="6" '
                     f'fill="{ROLE_FILL.get(box["role"], "#fff")}" stroke="#333"/>')
        for k, line in enumerate(box["lines"]):
            size, weight = (13, "600") if k == 0 else (11, "400")
            parts.append(f'<text x="{box["x"] + box["w"] / 2:.1f}" y="{box["y"] + 17 + 16 * k:.1f}" '
                         f'text-anchor="middle" font-size="{size}" font-weight="{weight}" fill="#1e1e1e">'
                         f"{escape(line)}</text>")
        parts.append("</g>")
    for node in g["nodes"]:
        parts.append(f'<g data-node="{escape(node["name"])}"><circle cx="{node["x"]:.1f}" cy="{node["y"]:.1f}" r="9" '
                     f'fill="white" stroke="{PATH_INK["condition"]}" stroke-width="2"/>'
                     f'<text x="{node["x"]:.1f}" y="{node["y"] + 5:.1f}" text-anchor="middle" font-size="14" '
                     f'fill="{PATH_INK["condition"]}">{escape(node["symbol"])}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))
