"""Render stage: the prompt pages' charts, built from manifest numbers as ``Chart`` data (generator/render/plot.py)
that site/assets/js/charts.js draws, and the per-step numbers the page prints.

* ``alpha_bar_chart`` / ``snr_chart``: the model's noise schedule, alpha-bar_t and the signal-to-noise ratio
  alpha-bar / (1 - alpha-bar) (log scale) against the training timestep t, with the steps the sampler visited
  marked (the trajectory's own timesteps), the current one ringed;
* ``beta_sum_chart``: beta-sum jumps, the cumulative sum of each jump's betas against the original schedule's
  (the source report's figure): one staircase per jump point, the current one bold and the others faint, the one
  under the pointer named;
* ``guidance_chart``: how large the prompt's part of the noise estimate is at each step.

Every number is written by this module; nothing from a prompt file reaches a chart.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

from markupsafe import Markup

from generator.render.plot import Axis, Chart, Series, Table, plot_html

MAX_CURVE_POINTS = 250  # a schedule curve is smooth: this many vertices draw it


def cumulative_alpha_bars(betas: Sequence[float]) -> list[float]:
    """alpha-bar_t = prod_{s <= t} (1 - beta_s) (DDPM Eq. 4's notation)."""
    out, product = [], 1.0
    for beta in betas:
        product *= 1 - beta
        out.append(product)
    return out


def cumulative_betas(betas: Sequence[float]) -> list[float]:
    """sum_{s <= t} beta_s for every t."""
    out, total = [], 0.0
    for beta in betas:
        total += beta
        out.append(total)
    return out


def log_snr(alpha_bar: float) -> float:
    """log10 of the signal-to-noise ratio alpha-bar / (1 - alpha-bar) (Kingma et al. 2021, Eq. 2)."""
    alpha_bar = min(max(alpha_bar, 1e-12), 1 - 1e-12)
    return math.log10(alpha_bar / (1 - alpha_bar))


def thin(count: int, limit: int = MAX_CURVE_POINTS) -> list[int]:
    """Indices 0..count-1, every k-th so that at most about ``limit`` remain, the last one always kept."""
    stride = max(1, math.ceil(count / limit))
    indices = list(range(0, count, stride))
    return indices if indices[-1] == count - 1 else indices + [count - 1]


def fmt(value: float, digits: int = 4) -> str:
    """A number as the pages print it: ``digits`` significant digits, no exponent for ordinary sizes."""
    if value is None:
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}·10{superscript(int(exponent))}"
    return text


def superscript(number: int) -> str:
    """-4 -> '⁻⁴'."""
    return str(number).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def step_series(values: Iterable[float | None], digits: int = 4) -> str:
    """Per-step numbers for a ``data-step-values`` attribute (site/assets/js/follow.js shows the current one), the
    last repeated for the final frame (the page's step ``steps`` shows the last step's numbers)."""
    texts = [fmt(v, digits) for v in values]
    return "|".join(texts + texts[-1:])


def _step_rows(timesteps: Sequence[float], values: Sequence[str]) -> list[list[str]]:
    return [[str(step), fmt(t), value] for step, (t, value) in enumerate(zip(timesteps, values))]


def _snr(alpha_bar: float) -> float:
    """alpha-bar / (1 - alpha-bar), clamped as ``log_snr`` clamps (a log axis has no 0 or infinity)."""
    return 10 ** log_snr(alpha_bar)


def alpha_bar_chart(betas: Sequence[float], timesteps: Sequence[float], alpha_bars: Sequence[float]) -> Markup:
    """alpha-bar_t of the training schedule against t, the sampler's steps (``timesteps``) marked on it."""
    curve = cumulative_alpha_bars(betas)
    last = len(curve) - 1
    shown = thin(len(curve))
    label = (f"Noise schedule: alpha-bar from {fmt(curve[0])} at t = 0 to {fmt(curve[-1])} at t = {last}; "
             f"the sampler visits {len(timesteps)} steps, t = " + ", ".join(fmt(t) for t in timesteps))
    marks = sorted(zip(timesteps, alpha_bars, range(len(timesteps))))
    return plot_html(Chart(
        "schedule", label, Axis("training timestep t", min=0, max=last, short="t ="),
        Axis("ᾱₜ (signal kept)", min=0, max=1),
        [Series("ᾱₜ", shown, [curve[t] for t in shown]),
         Series("step", [t for t, _, _ in marks], [a for _, a, _ in marks], kind="points", color=1,
                marks=[step for _, _, step in marks])],
        Table("The sampler's steps on the noise schedule", ["step", "t", "ᾱₜ"],
              _step_rows(timesteps, [fmt(a) for a in alpha_bars])),
        height=230, follow="marks"))


def snr_chart(betas: Sequence[float], timesteps: Sequence[float], alpha_bars: Sequence[float]) -> Markup:
    """SNR_t = alpha-bar / (1 - alpha-bar) against t on a log axis, the sampler's steps marked."""
    curve = [_snr(a) for a in cumulative_alpha_bars(betas)]
    last = len(curve) - 1
    shown = thin(len(curve))
    label = (f"Signal-to-noise ratio (log scale) from {fmt(curve[0], 3)} at t = 0 to {fmt(curve[-1], 3)} "
             f"at t = {last}, the sampler's {len(timesteps)} steps marked")
    marks = sorted(zip(timesteps, alpha_bars, range(len(timesteps))))
    return plot_html(Chart(
        "snr", label, Axis("training timestep t", min=0, max=last, short="t ="), Axis("SNR = ᾱ / (1 − ᾱ)", log=True),
        [Series("SNR", shown, [curve[t] for t in shown]),
         Series("step", [t for t, _, _ in marks], [_snr(a) for _, a, _ in marks], kind="points", color=1,
                marks=[step for _, _, step in marks])],
        Table("The signal-to-noise ratio at the sampler's steps", ["step", "t", "SNR"],
              _step_rows(timesteps, [fmt(s) for s in snrs(alpha_bars)])),
        height=230, follow="marks"))


def staircase(timesteps: Sequence[float], betas: Sequence[float]) -> list[tuple[float, float]]:
    """A jump's cumulative beta sum against t as stair points: from (0, 0), at each jump timestep tau_k (ascending)
    the sum of the jump betas at or below it, held until the next one (drawn as steps).

    Betas are listed from the noisiest jump down; beta-sum makes each point's height equal to the original
    schedule's sum of betas up to tau_k.
    """
    points, level = [(0.0, 0.0)], 0.0
    for t, beta in zip(reversed(timesteps), reversed(betas)):
        level += beta
        if float(t) == points[-1][0]:
            points[-1] = (float(t), level)
        else:
            points.append((float(t), level))
    return points


def beta_sum_chart(betas: Sequence[float], row: dict, points: Sequence[int]) -> Markup:
    """One jump length's beta-sum jumps: each jump point's cumulative betas against the original schedule's."""
    original = cumulative_betas(betas)
    # up to the noisiest jump start: beyond it the schedule's last betas (near 1) would flatten everything else
    last = min(len(original) - 1, math.ceil(max(max(t) for t in row["timesteps"])))
    shown = thin(last + 1)
    label = (f"{row['steps']}-step beta-sum jumps: the cumulative sum of each jump's betas (steps) against the "
             f"original schedule's (curve), from steps " + ", ".join(str(p) for p in points))
    series, table = [Series("original Σβ", shown, [original[t] for t in shown])], []
    for column, (point, timesteps, jump_betas) in enumerate(zip(points, row["timesteps"], row["betas"])):
        stairs = staircase(timesteps, jump_betas)
        note = f"{len(jump_betas)} betas" + (f", raised from {row['steps']}" if len(jump_betas) != row["steps"] else "")
        name = f"jump from step {point} (t = {fmt(timesteps[0])})"
        series.append(Series(name, [x for x, _ in stairs], [y for _, y in stairs], kind="steps", color=1, width=1.5,
                             column=column, step=point, text=f"{name}: {note}, Σβ {fmt(sum(jump_betas))}"))
        table.append([str(point), fmt(timesteps[0]), note, ", ".join(fmt(t) for t in timesteps),
                      fmt(sum(jump_betas)), fmt(original[min(round(float(timesteps[0])), len(original) - 1)])])
    return plot_html(Chart(
        "betasum", label, Axis("training timestep t", min=0, max=last, short="t ="),
        Axis("Σ β up to t", min=0, max=original[last] * 1.04 or 1.0), series,
        Table(f"{row['steps']}-step beta-sum jumps", ["from step", "t", "betas", "jump timesteps", "Σβ of the jump",
                                                      "original Σβ up to t"], table),
        height=250, follow="column", attributes={"jump-steps": str(row["steps"])}))


def guidance_chart(difference_rms: Sequence[float], timesteps: Sequence[float]) -> Markup:
    """RMS of eps_cond - eps_uncond at every step (what the prompt adds to the noise estimate), current step marked."""
    steps = list(range(len(difference_rms)))
    label = ("Size of the prompt's part of the noise estimate, RMS of ε_cond − ε_uncond, at each step: "
             + ", ".join(fmt(v, 3) for v in difference_rms))
    return plot_html(Chart(
        "guidance", label, Axis("step", min=0, max=max(len(steps) - 1, 1), short="step"),
        Axis("RMS(ε_cond − ε_uncond)", min=0, digits=3),
        [Series("RMS", steps, difference_rms),
         Series("step", steps, difference_rms, kind="points", color=1, marks=steps)],
        Table("RMS of ε_cond − ε_uncond at each step", ["step", "t", "RMS"],
              _step_rows(timesteps, [fmt(v, 3) for v in difference_rms])),
        height=170, follow="marks"))


def update_series(updates: Sequence[dict], key: str, digits: int = 4, missing: str = "–") -> str:
    """``step_series`` of one number of the scheduler's per-step update (``schedule.updates``); a step without it
    (or with null) shows ``missing``, a list (LMS coefficients) is written 'a / b / c'."""
    values = []
    for entry in updates:
        value = entry.get(key)
        if value is None:
            values.append(missing)
        else:
            values.append(" / ".join(fmt(v, digits) for v in value) if isinstance(value, list) else fmt(value, digits))
    return "|".join(values + values[-1:]) if values else ""


def snrs(alpha_bars: Sequence[float]) -> list[float]:
    """The signal-to-noise ratio alpha-bar / (1 - alpha-bar) of each alpha-bar (infinite at alpha-bar 1)."""
    return [a / (1 - a) if a < 1 else math.inf for a in alpha_bars]
