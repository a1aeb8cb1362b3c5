"""Render stage: the page "How faithful is DAAM?" (``generated/faithfulness.md``) and its embeddable figures.

A chapter render module (generator/render/chapters/pages.py reads and checks the manifests
``<generated>/faithfulness/*.json`` written by ``generator/bake/chapters/faithfulness.py`` and writes the files): it
charts DAAM's mIoU against tau (generator/render/plot.py, drawn by site/assets/js/charts.js) with the two baselines
as dashed lines and the best tau ringed; the plot and the examples grid also get embed pages
``<embed>/faithfulness-<id>-<figure>.html``.
Without a manifest the page (``templates/faithfulness.md.j2``) says how to produce one, so the navigation entry
always resolves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from markupsafe import Markup

from generator.render.chapters.context import Figure, PageContext
from generator.render.plot import Axis, Chart, Series, Table, plot_html

# (figure, also the name of its macro in templates/faithfulness.html.j2; the manifest key it needs; its embed's caption)
FIGURES = (("miou", "daam", "mIoU against tau"), ("examples", "examples", "best and worst examples"))
BASELINE_NAMES = {"whole_image": "whole image", "centre_box": "centre box"}
ATTRIBUTE_ORDER = ("colour", "shape", "size", "position", "relation", "count")  # then any other, alphabetically
EXAMPLE_SCALE = 3  # examples are 32x32; the browser upscales them (pixelated) to this many times their size
BASELINE_COLOURS = {"whole_image": 4, "centre_box": 2}  # palette indices of charts.js: grey, green

def miou_chart(daam: dict[str, Any]) -> Markup:
    """DAAM's mIoU against tau (generator/render/plot.py), the baselines as dashed lines, the best tau ringed.

    x is tau (a little past the swept range), y is IoU from 0 to 1 ("" without a swept tau).
    """
    miou = {float(k): float(v) for k, v in (daam.get("miou") or {}).items() if v is not None}
    if not miou:
        return Markup("")
    taus = sorted(miou)
    margin = max(0.05, (taus[-1] - taus[0]) * 0.1)
    tau_min, tau_max = taus[0] - margin, taus[-1] + margin
    best = daam.get("best_tau")
    baselines = {k: float(v) for k, v in (daam.get("baselines") or {}).items() if v is not None}
    label = ("DAAM mIoU against the threshold tau: " + ", ".join(f"{t:g}: {miou[t]:.3f}" for t in taus)
             + "".join(f"; {BASELINE_NAMES.get(k, k)} baseline {v:.3f}" for k, v in sorted(baselines.items()))
             + (f"; best tau {best:g}" if best is not None else ""))
    series = [Series("DAAM mIoU", taus, [miou[t] for t in taus])]
    series += [Series(f"{BASELINE_NAMES.get(name, name)} baseline", [tau_min, tau_max], [value, value], kind="dash",
                      color=BASELINE_COLOURS.get(name, 4), width=1.5) for name, value in sorted(baselines.items())]
    if best is not None and float(best) in miou:
        series.append(Series(f"best τ = {float(best):g}", [float(best)], [miou[float(best)]], kind="ring", color=1))
    table = Table("DAAM mIoU for each threshold τ", ["τ", "mIoU"],
                  [[f"{t:g}" + (" (best)" if best is not None and float(best) == t else ""), f"{miou[t]:.3f}"]
                   for t in taus]
                  + [[f"{BASELINE_NAMES.get(k, k)} baseline", f"{v:.3f}"] for k, v in sorted(baselines.items())])
    return plot_html(Chart("miou", label, Axis("τ (mask = min-max scaled map ≥ τ)", min=tau_min, max=tau_max, digits=3,
                                short="τ ="),
                           Axis("mIoU", min=0, max=1, digits=3), series, table, height=250))


def attribute_rows(chapter: dict[str, Any]) -> list[tuple[str, float | None, float | None]]:
    """(attribute, one-object share, two-object share) in a fixed order; None where a group never states it."""
    by_attribute = (chapter.get("fidelity") or {}).get("by_attribute") or {}
    one, two = by_attribute.get("one_object", {}), by_attribute.get("two_object", {})
    order = {kind: n for n, kind in enumerate(ATTRIBUTE_ORDER)}
    kinds = sorted(set(one) | set(two), key=lambda k: (order.get(k, len(ATTRIBUTE_ORDER)), k))
    return [(kind, one.get(kind), two.get(kind)) for kind in kinds]


def views(cid: str, ctx: PageContext, from_dir: Path) -> dict[str, Any]:
    """URL helpers for the file being written: ``img`` (examples upscaled), ``embed``, ``page``, ``miou_chart``."""
    return {**ctx.views(cid, from_dir, scale=EXAMPLE_SCALE), "miou_chart": miou_chart}


def figures(chapter: dict, ctx: PageContext) -> Iterator[Figure]:
    """The mIoU plot and the examples grid, each when the report had them."""
    for figure, needs, what in FIGURES:
        if chapter.get(needs):
            body = Markup(getattr(ctx.macros, figure)(chapter, chapter["id"], views(chapter["id"], ctx, ctx.embed_dir)))
            yield Figure(figure, f"{chapter['title']}: {what}", body)


def page_chapter(chapter: dict, ctx: PageContext) -> dict[str, Any]:
    """The chapter as templates/faithfulness.md.j2 sees it: with its page views and its attribute rows."""
    return {**chapter, "_views": views(chapter["id"], ctx, ctx.generated_dir), "_attributes": attribute_rows(chapter)}
