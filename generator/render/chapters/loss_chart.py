"""Render stage: the training chapter's loss curves as ``Chart`` data (generator/render/plot.py), drawn in the
browser by site/assets/js/charts.js.

One chart holds one or more models' training losses (log scale) against the epoch: each model's per-step losses
averaged in bins of consecutive steps into a line, and each epoch's mean a dot at the middle of its epoch. The time-
and class-conditioned DDPMs share a chart (both predict the noise), as do their flow-matching twins (velocity),
and the single-step denoiser has its own (it predicts the image). Hovering reads the values at the pointer; the
table under it lists every epoch's mean.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from markupsafe import Markup

from generator.render.plot import Axis, Chart, Series, Table, plot_html

STAGE_NAMES = {"denoiser": "single-step denoiser", "time": "time-conditioned DDPM", "class": "class-conditioned DDPM",
               "flow-time": "time-conditioned flow-matching model",
               "flow-class": "class-conditioned flow-matching model"}
# (line, dots): charts.js palette indices
SERIES_COLOURS = {"denoiser": (0, 1), "time": (0, 5), "class": (3, 6), "flow-time": (2, 2), "flow-class": (1, 1)}
MAX_CURVE_POINTS = 400  # per-step losses are averaged in bins down to at most this many points per series


def binned(values: list[float], most: int = MAX_CURVE_POINTS) -> list[tuple[float, float]]:
    """(x, mean) per bin of ``ceil(n / most)`` consecutive values; x is the bin's mean index."""
    size = max(1, math.ceil(len(values) / most))
    points = []
    for start in range(0, len(values), size):
        chunk = values[start:start + size]
        points.append((start + (len(chunk) - 1) / 2, sum(chunk) / len(chunk)))
    return points


def _series(losses: dict[str, Any]) -> tuple[list[float], list[float], int]:
    """(step losses, epoch means, steps per epoch) of one model."""
    steps = [float(v) for v in losses.get("step_losses", [])]
    epochs = [float(v) for v in losses.get("epoch_losses", [])]
    per_epoch = int(losses.get("steps_per_epoch") or max(1, len(steps) // max(1, len(epochs))))
    return steps, epochs, per_epoch


def loss_chart(series: Sequence[tuple[str, dict[str, Any]]]) -> Markup:
    """The training losses of ``series`` ((stage, losses.json content), ...) on one log-scale chart ("" if none)."""
    data = [(stage, *_series(losses)) for stage, losses in series]
    data = [d for d in data if d[1] and min(d[1] + d[2]) > 0]
    if not data:
        return Markup("")
    x_max = max(len(steps) / per_epoch for _, steps, _, per_epoch in data)  # in epochs
    label = "Training loss of the " + " and the ".join(
        f"{STAGE_NAMES.get(stage, stage)} ({len(epochs)} epochs, {len(steps)} steps, from {steps[0]:.4g} to "
        f"{epochs[-1] if epochs else steps[-1]:.4g} epoch mean)" for stage, steps, epochs, _ in data)
    drawn, rows = [], []
    for stage, steps, epochs, per_epoch in data:
        name = STAGE_NAMES.get(stage, stage)
        line, dot = SERIES_COLOURS.get(stage, (0, 1))
        size = max(1, math.ceil(len(steps) / MAX_CURVE_POINTS))
        points = binned(steps)
        drawn.append(Series(f"{name}, per step" + (f" (mean of {size})" if size > 1 else ""),
                            [x / per_epoch for x, _ in points], [v for _, v in points], color=line, width=1.2))
        middles = [min(epoch + 0.5, x_max) for epoch in range(len(epochs))]
        drawn.append(Series(f"{name}, epoch mean", middles, epochs, kind="points", color=dot))
        rows += [[name, str(epoch + 1), f"{value:.5g}"] for epoch, value in enumerate(epochs)]
    table = Table("Mean training loss of each epoch", ["model", "epoch", "mean loss"], rows)
    return plot_html(Chart("loss", label, Axis("epoch", min=0, max=x_max, digits=3, short="epoch"),
                           Axis("loss", log=True, digits=4), drawn, table, height=240,
                           attributes={"stages": " ".join(stage for stage, *_ in data)}))
