"""Render stage: the page "How faithful is DAAM?" (``generated/faithfulness.md``) and its embeddable figures.

A chapter render module (generator/render/chapters/pages.py reads and checks the manifests
``<generated>/faithfulness/*.json`` written by ``generator/bake/chapters/faithfulness.py`` and writes the files): it
draws DAAM's mIoU against tau as inline SVG (no plotting library) with the two baselines as horizontal lines and the
best tau marked; the plot and the examples grid also get embed pages ``<embed>/faithfulness-<id>-<figure>.html``.
Without a manifest the page (``templates/faithfulness.md.j2``) says how to produce one, so the navigation entry
always resolves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from markupsafe import Markup, escape

from generator.render.chapters.context import Figure, PageContext

# (figure, also the name of its macro in templates/faithfulness.html.j2; the manifest key it needs; its embed's caption)
FIGURES = (("miou", "daam", "mIoU against tau"), ("examples", "examples", "best and worst examples"))
BASELINE_NAMES = {"whole_image": "whole image", "centre_box": "centre box"}
ATTRIBUTE_ORDER = ("colour", "shape", "size", "position", "relation", "count")  # then any other, alphabetically
EXAMPLE_SCALE = 3  # examples are 32x32; the browser upscales them (pixelated) to this many times their size

# mIoU chart geometry (SVG user units); the right margin holds the baselines' labels
WIDTH, HEIGHT = 560, 250
LEFT, RIGHT, TOP, BOTTOM = 44, 132, 12, 40
LABEL_GAP = 14  # least vertical distance between two labels in the right margin


def _spread(positions: list[float], gap: float, low: float, high: float) -> list[float]:
    """Label positions (sorted input) moved apart to at least ``gap``, kept inside [low, high] where possible."""
    placed: list[float] = []
    for y in positions:
        placed.append(max(y, placed[-1] + gap) if placed else max(y, low))
    overflow = placed[-1] - high if placed else 0
    if overflow > 0:  # shift the stack up, never above ``low``
        placed = [max(low, y - overflow) for y in placed]
    return placed


def miou_svg(daam: dict[str, Any]) -> Markup:
    """Inline SVG of DAAM's mIoU against tau, the baselines as horizontal lines, the best tau ringed.

    x is tau (linear, a little past the swept range), y is IoU from 0 to 1. The mapping is written on the element
    (data-tau-min, data-tau-max, data-plot = "left top width height") so a reader or a test can turn every point
    back into (tau, mIoU).
    """
    miou = {float(k): float(v) for k, v in (daam.get("miou") or {}).items() if v is not None}
    if not miou:
        return Markup("")
    taus = sorted(miou)
    margin = max(0.05, (taus[-1] - taus[0]) * 0.1)
    tau_min, tau_max = taus[0] - margin, taus[-1] + margin
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(tau: float) -> float:
        return LEFT + (tau - tau_min) / (tau_max - tau_min) * plot_w

    def y_of(value: float) -> float:
        return TOP + (1 - value) * plot_h

    best = daam.get("best_tau")
    baselines = {k: float(v) for k, v in (daam.get("baselines") or {}).items() if v is not None}
    label = ("DAAM mIoU against the threshold tau: " + ", ".join(f"{t:g}: {miou[t]:.3f}" for t in taus)
             + "".join(f"; {BASELINE_NAMES.get(k, k)} baseline {v:.3f}" for k, v in sorted(baselines.items()))
             + (f"; best tau {best:g}" if best is not None else ""))
    parts = [f'<svg class="atlas-faith-plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}" '
             f'data-tau-min="{tau_min:.6f}" data-tau-max="{tau_max:.6f}" data-plot="{LEFT} {TOP} {plot_w} {plot_h}" '
             f'xmlns="http://www.w3.org/2000/svg">', f"<title>{escape(label)}</title>"]
    for value in (0, 0.25, 0.5, 0.75, 1):
        y = y_of(value)
        parts.append(f'<line class="atlas-faith-gridline" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.2f}" y2="{y:.2f}"/>'
                     f'<text class="atlas-faith-tick" x="{LEFT - 6}" y="{y + 4:.2f}" text-anchor="end">'
                     f'{value:g}</text>')
    for tau in taus:
        x = x_of(tau)
        parts.append(f'<line class="atlas-faith-gridline" x1="{x:.2f}" x2="{x:.2f}" y1="{TOP}" y2="{TOP + plot_h}"/>'
                     f'<text class="atlas-faith-tick" x="{x:.2f}" y="{TOP + plot_h + 16}" text-anchor="middle">'
                     f'{tau:g}</text>')
    parts.append(f'<text class="atlas-faith-axis" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 4}" text-anchor="middle">'
                 f"τ (mask = min-max scaled map ≥ τ)</text>")
    parts.append(f'<text class="atlas-faith-axis" transform="rotate(-90)" x="{-(TOP + plot_h / 2):.1f}" y="12" '
                 f'text-anchor="middle">mIoU</text>')
    labels = []  # (y of the line, text, css class)
    for name, value in sorted(baselines.items()):
        y = y_of(value)
        parts.append(f'<line class="atlas-faith-baseline atlas-faith-baseline-{name}" data-baseline="{name}" '
                     f'data-value="{value:.4f}" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.2f}" y2="{y:.2f}">'
                     f"<title>{BASELINE_NAMES.get(name, name)} baseline: mIoU {value:.3f}</title></line>")
        labels.append((y, f"{BASELINE_NAMES.get(name, name)} {value:.3f}",
                       f"atlas-faith-label atlas-faith-baseline-{name}"))
    points = " ".join(f"{x_of(t):.2f},{y_of(miou[t]):.2f}" for t in taus)
    parts.append(f'<polyline class="atlas-faith-curve" points="{points}"/>')
    for tau in taus:
        parts.append(f'<circle class="atlas-faith-point" data-tau="{tau:g}" data-miou="{miou[tau]:.4f}" '
                     f'cx="{x_of(tau):.2f}" cy="{y_of(miou[tau]):.2f}" r="4">'
                     f"<title>τ = {tau:g}: mIoU {miou[tau]:.3f}</title></circle>")
    if best is not None and float(best) in miou:
        x, y = x_of(float(best)), y_of(miou[float(best)])
        parts.append(f'<circle class="atlas-faith-best" data-tau="{float(best):g}" cx="{x:.2f}" cy="{y:.2f}" r="9">'
                     f"<title>best τ = {float(best):g}: mIoU {miou[float(best)]:.3f}</title></circle>")
        labels.append((y, f"DAAM {miou[float(best)]:.3f} (τ = {float(best):g})",
                       "atlas-faith-label atlas-faith-label-daam"))
    labels.sort()
    for (_, text, css), y in zip(labels, _spread([y for y, _, _ in labels], LABEL_GAP, TOP + 4, TOP + plot_h)):
        parts.append(f'<text class="{css}" x="{LEFT + plot_w + 8}" y="{y + 4:.2f}">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def attribute_rows(chapter: dict[str, Any]) -> list[tuple[str, float | None, float | None]]:
    """(attribute, one-object share, two-object share) in a fixed order; None where a group never states it."""
    by_attribute = (chapter.get("fidelity") or {}).get("by_attribute") or {}
    one, two = by_attribute.get("one_object", {}), by_attribute.get("two_object", {})
    order = {kind: n for n, kind in enumerate(ATTRIBUTE_ORDER)}
    kinds = sorted(set(one) | set(two), key=lambda k: (order.get(k, len(ATTRIBUTE_ORDER)), k))
    return [(kind, one.get(kind), two.get(kind)) for kind in kinds]


def views(cid: str, ctx: PageContext, from_dir: Path) -> dict[str, Any]:
    """URL helpers for the file being written: ``img`` (examples upscaled), ``embed``, ``page``, ``miou_svg``."""
    return {**ctx.views(cid, from_dir, scale=EXAMPLE_SCALE), "miou_svg": miou_svg}


def figures(chapter: dict, ctx: PageContext) -> Iterator[Figure]:
    """The mIoU plot and the examples grid, each when the report had them."""
    for figure, needs, what in FIGURES:
        if chapter.get(needs):
            body = Markup(getattr(ctx.macros, figure)(chapter, chapter["id"], views(chapter["id"], ctx, ctx.embed_dir)))
            yield Figure(figure, f"{chapter['title']}: {what}", body)


def page_chapter(chapter: dict, ctx: PageContext) -> dict[str, Any]:
    """The chapter as templates/faithfulness.md.j2 sees it: with its page views and its attribute rows."""
    return {**chapter, "_views": views(chapter["id"], ctx, ctx.generated_dir), "_attributes": attribute_rows(chapter)}
