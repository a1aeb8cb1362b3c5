"""Render stage: the prompt pages' charts as inline SVG, drawn in Python from manifest numbers (no plotting library).

* ``alpha_bar_svg`` / ``snr_svg``: the model's noise schedule, alpha-bar_t and the signal-to-noise ratio
  alpha-bar / (1 - alpha-bar) (log scale) against the training timestep t, with the steps the sampler visited
  marked (``data-t``: the trajectory's own timesteps);
* ``beta_sum_svg``: beta-sum jumps, the cumulative sum of each jump's betas against the original schedule's
  (the source report's figure);
* ``guidance_svg``: how large the prompt's part of the noise estimate is at each step.

Marks that belong to one step (or one jump point) carry ``data-column``: inside a figure whose
``data-column-map`` maps steps to columns, site/assets/js/follow.js marks the current one. Every number is
written by this module; nothing from a prompt file reaches an SVG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from markupsafe import Markup, escape

MAX_CURVE_POINTS = 250  # a schedule curve is smooth: this many vertices draw it


@dataclass(frozen=True)
class Plot:
    """An SVG plot area: data ranges mapped onto a viewBox of ``width`` x ``height`` with margins."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float
    width: int = 380
    height: int = 230
    left: int = 54
    right: int = 14
    top: int = 12
    bottom: int = 42

    def x(self, value: float) -> float:
        """The SVG x of a data x."""
        span = (self.x_max - self.x_min) or 1.0
        return self.left + (value - self.x_min) / span * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        """The SVG y of a data y (clamped into the plot)."""
        span = (self.y_max - self.y_min) or 1.0
        value = min(max(value, self.y_min), self.y_max)
        return self.top + (1 - (value - self.y_min) / span) * (self.height - self.top - self.bottom)


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


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (steps of 1, 2 or 5 times a power of ten)."""
    span = (high - low) or 1.0
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]


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


def _open(plot: Plot, css: str, label: str, extra: str = "") -> list[str]:
    return [f'<svg class="atlas-chart {css}" viewBox="0 0 {plot.width} {plot.height}" role="img" '
            f'aria-label="{escape(label)}" data-plot="{plot.left} {plot.top} {plot.width - plot.left - plot.right} '
            f'{plot.height - plot.top - plot.bottom}"{extra} xmlns="http://www.w3.org/2000/svg">',
            f"<title>{escape(label)}</title>"]


def _axes(plot: Plot, x_ticks: Sequence[float], y_ticks: Sequence[tuple[float, str]], x_title: str,
          y_title: str) -> list[str]:
    """Grid lines, tick labels and axis titles."""
    parts = []
    bottom, right = plot.height - plot.bottom, plot.width - plot.right
    for value, text in y_ticks:
        y = plot.y(value)
        parts.append(f'<line class="atlas-chart-grid" x1="{plot.left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="atlas-chart-tick" x="{plot.left - 5}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{escape(text)}</text>")
    for value in x_ticks:
        x = plot.x(value)
        parts.append(f'<line class="atlas-chart-grid" x1="{x:.1f}" x2="{x:.1f}" y1="{plot.top}" y2="{bottom}"/>'
                     f'<text class="atlas-chart-tick" x="{x:.1f}" y="{bottom + 15}" text-anchor="middle">'
                     f"{fmt(value)}</text>")
    parts.append(f'<text class="atlas-chart-axis" x="{(plot.left + right) / 2:.1f}" y="{plot.height - 5}" '
                 f'text-anchor="middle">{escape(x_title)}</text>')
    parts.append(f'<text class="atlas-chart-axis" transform="rotate(-90)" x="{-(plot.top + bottom) / 2:.1f}" '
                 f'y="13" text-anchor="middle">{escape(y_title)}</text>')
    return parts


def _polyline(plot: Plot, points: Iterable[tuple[float, float]], css: str) -> str:
    coordinates = " ".join(f"{plot.x(x):.1f},{plot.y(y):.1f}" for x, y in points)
    return f'<polyline class="{css}" points="{coordinates}"/>'


def _step_markers(plot: Plot, xs: Sequence[float], values: Sequence[float], timesteps: Sequence[float], what: str,
                  shown: Sequence[str]) -> list[str]:
    """One circle per visited step at (xs[i], values[i]) (``data-step``, its ``data-t``, and ``data-column`` for
    the current-step mark)."""
    parts = ['<g class="atlas-chart-steps">']
    for step, (x, value, t, text) in enumerate(zip(xs, values, timesteps, shown)):
        parts.append(f'<circle class="atlas-chart-step" data-step="{step}" data-column="{step}" data-t="{t:g}" '
                     f'cx="{plot.x(x):.1f}" cy="{plot.y(value):.1f}" r="3.5">'
                     f"<title>step {step}: t = {fmt(t)}, {escape(what)} = {escape(text)}</title></circle>")
    parts.append("</g>")
    return parts


def alpha_bar_svg(betas: Sequence[float], timesteps: Sequence[float], alpha_bars: Sequence[float]) -> Markup:
    """alpha-bar_t of the training schedule against t, the sampler's steps (``timesteps``) marked on it."""
    curve = cumulative_alpha_bars(betas)
    last = len(curve) - 1
    plot = Plot(0, last, 0, 1)
    label = (f"Noise schedule: alpha-bar from {fmt(curve[0])} at t = 0 to {fmt(curve[-1])} at t = {last}; "
             f"the sampler visits {len(timesteps)} steps, t = " + ", ".join(fmt(t) for t in timesteps))
    parts = _open(plot, "atlas-chart-schedule", label, f' data-x-max="{last}" data-y-max="1"')
    parts += _axes(plot, nice_ticks(0, last), [(v, fmt(v)) for v in (0, 0.25, 0.5, 0.75, 1)],
                   "training timestep t", "ᾱₜ (signal kept)")
    parts.append(_polyline(plot, ((t, curve[t]) for t in thin(len(curve))), "atlas-chart-curve"))
    parts += _step_markers(plot, timesteps, alpha_bars, timesteps, "ᾱ", [fmt(a) for a in alpha_bars])
    parts.append("</svg>")
    return Markup("".join(parts))


def snr_svg(betas: Sequence[float], timesteps: Sequence[float], alpha_bars: Sequence[float]) -> Markup:
    """log10 SNR_t = log10(alpha-bar / (1 - alpha-bar)) against t, the sampler's steps marked."""
    curve = [log_snr(a) for a in cumulative_alpha_bars(betas)]
    last = len(curve) - 1
    low, high = math.floor(min(curve)), math.ceil(max(curve))
    plot = Plot(0, last, low, high)
    decades = range(low, high + 1, max(1, math.ceil((high - low) / 6)))
    label = (f"Signal-to-noise ratio (log scale) from 10^{fmt(curve[0], 3)} at t = 0 to 10^{fmt(curve[-1], 3)} "
             f"at t = {last}, the sampler's {len(timesteps)} steps marked")
    parts = _open(plot, "atlas-chart-snr", label, f' data-x-max="{last}" data-y-min="{low}" data-y-max="{high}"')
    parts += _axes(plot, nice_ticks(0, last), [(d, f"10{superscript(d)}") for d in decades],
                   "training timestep t", "SNR = ᾱ / (1 − ᾱ)")
    parts.append(_polyline(plot, ((t, curve[t]) for t in thin(len(curve))), "atlas-chart-curve"))
    parts += _step_markers(plot, timesteps, [log_snr(a) for a in alpha_bars], timesteps, "SNR",
                           [fmt(a / (1 - a)) if a < 1 else "∞" for a in alpha_bars])
    parts.append("</svg>")
    return Markup("".join(parts))


def staircase(timesteps: Sequence[float], betas: Sequence[float]) -> list[tuple[float, float]]:
    """Corners of a jump's cumulative beta sum against t: flat between its timesteps, rising by each jump beta.

    Betas are listed from the noisiest jump down; at each jump timestep tau_k the height is the sum of the jump
    betas at or below it, which beta-sum makes equal to the original schedule's sum up to tau_k.
    """
    corners, level = [(0.0, 0.0)], 0.0
    for t, beta in zip(reversed(timesteps), reversed(betas)):
        corners.append((float(t), level))
        level += beta
        corners.append((float(t), level))
    return corners


def beta_sum_svg(betas: Sequence[float], row: dict, points: Sequence[int]) -> Markup:
    """One jump length's beta-sum jumps: each jump point's cumulative betas against the original schedule's."""
    original = cumulative_betas(betas)
    # up to the noisiest jump start: beyond it the schedule's last betas (near 1) would flatten everything else
    last = min(len(original) - 1, math.ceil(max(max(t) for t in row["timesteps"])))
    plot = Plot(0, last, 0, original[last] * 1.04 or 1.0, width=420, height=250)
    label = (f"{row['steps']}-step beta-sum jumps: the cumulative sum of each jump's betas (steps) against the "
             f"original schedule's (curve), from steps " + ", ".join(str(p) for p in points))
    parts = _open(plot, "atlas-chart-betasum", label, f' data-x-max="{last}" data-jump-steps="{row["steps"]}"')
    parts += _axes(plot, nice_ticks(0, last), [(v, fmt(v)) for v in nice_ticks(0, plot.y_max)],
                   "training timestep t", "Σ β up to t")
    parts.append(_polyline(plot, ((t, original[t]) for t in thin(last + 1)), "atlas-chart-curve"))
    for column, (point, timesteps, jump_betas) in enumerate(zip(points, row["timesteps"], row["betas"])):
        corners = staircase(timesteps, jump_betas)
        note = f"{len(jump_betas)} betas" + (f", raised from {row['steps']}" if len(jump_betas) != row["steps"] else "")
        parts.append(f'<g class="atlas-chart-jump" data-column="{column}" data-step="{point}">'
                     f"<title>jump from step {point} (t = {fmt(timesteps[0])}): {note}, sum "
                     f"{fmt(sum(jump_betas))}</title>{_polyline(plot, corners, 'atlas-chart-stairs')}")
        parts += [f'<circle class="atlas-chart-corner" cx="{plot.x(x):.1f}" cy="{plot.y(y):.1f}" r="2.5"/>'
                  for x, y in corners[2::2]]
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def guidance_svg(difference_rms: Sequence[float], timesteps: Sequence[float]) -> Markup:
    """RMS of eps_cond - eps_uncond at every step (what the prompt adds to the noise estimate), current step marked."""
    steps = len(difference_rms)
    plot = Plot(0, max(steps - 1, 1), 0, max(max(difference_rms, default=0) * 1.1, 1e-6), width=560, height=170)
    label = ("Size of the prompt's part of the noise estimate, RMS of ε_cond − ε_uncond, at each step: "
             + ", ".join(fmt(v, 3) for v in difference_rms))
    parts = _open(plot, "atlas-chart-guidance", label)
    parts += _axes(plot, nice_ticks(0, steps - 1), [(v, fmt(v)) for v in nice_ticks(0, plot.y_max, 4)],
                   "step", "RMS(ε_cond − ε_uncond)")
    parts.append(_polyline(plot, enumerate(difference_rms), "atlas-chart-curve"))
    parts += _step_markers(plot, range(steps), difference_rms, timesteps, "RMS", [fmt(v, 3) for v in difference_rms])
    parts.append("</svg>")
    return Markup("".join(parts))


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
