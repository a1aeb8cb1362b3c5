"""Render stage: the page "How faithful is DAAM?" (``generated/faithfulness.md``) and its embeddable figures.

Reads the manifests ``<generated>/faithfulness/*.json`` written by ``generator/bake/faithfulness.py`` (never
torch), checks every asset, draws DAAM's mIoU against tau as inline SVG (no plotting library) with the two
baselines as horizontal lines and the best tau marked, and renders ``templates/faithfulness.md.j2``; the plot and
the examples grid also get embed pages ``<embed>/faithfulness-<id>-<figure>.html``. Without a manifest the page
says how to produce one, so the navigation entry always resolves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from generator.render.errors import RenderError
from generator.render.experiments import _check_assets

PAGE = "faithfulness.md"
PAGE_HTML = "faithfulness.html"
BASELINE_NAMES = {"whole_image": "whole image", "centre_box": "centre box"}
ATTRIBUTE_ORDER = ("colour", "shape", "size", "position", "relation", "count")  # then any other, alphabetically
EXAMPLE_SCALE = 3  # examples are 32x32; the browser upscales them (pixelated) to this many times their size

# mIoU chart geometry (SVG user units); the right margin holds the baselines' labels
WIDTH, HEIGHT = 560, 250
LEFT, RIGHT, TOP, BOTTOM = 44, 132, 12, 40
LABEL_GAP = 14  # least vertical distance between two labels in the right margin


def load_faithfulness_chapters(generated_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every faithfulness manifest, checked (kind, schema, assets), sorted by file name."""
    chapters = []
    folder = Path(generated_dir) / "faithfulness"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise RenderError(f"{path}: cannot read faithfulness manifest: {error}") from None
        if not isinstance(manifest, dict) or manifest.get("schema") != 1 or manifest.get("kind") != "faithfulness":
            raise RenderError(f"{path}: not a schema-1 faithfulness manifest")
        _check_assets(generated_dir, manifest, str(path))
        chapters.append((path, manifest))
    return chapters


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
                     f'<text class="atlas-faith-tick" x="{LEFT - 6}" y="{y + 4:.2f}" text-anchor="end">{value:g}</text>')
    for tau in taus:
        x = x_of(tau)
        parts.append(f'<line class="atlas-faith-gridline" x1="{x:.2f}" x2="{x:.2f}" y1="{TOP}" y2="{TOP + plot_h}"/>'
                     f'<text class="atlas-faith-tick" x="{x:.2f}" y="{TOP + plot_h + 16}" text-anchor="middle">{tau:g}</text>')
    parts.append(f'<text class="atlas-faith-axis" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 4}" text-anchor="middle">'
                 f"τ (mask = map ≥ τ × its maximum)</text>")
    parts.append(f'<text class="atlas-faith-axis" transform="rotate(-90)" x="{-(TOP + plot_h / 2):.1f}" y="12" '
                 f'text-anchor="middle">mIoU</text>')
    labels = []  # (y of the line, text, css class)
    for name, value in sorted(baselines.items()):
        y = y_of(value)
        parts.append(f'<line class="atlas-faith-baseline atlas-faith-baseline-{name}" data-baseline="{name}" '
                     f'data-value="{value:.4f}" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.2f}" y2="{y:.2f}">'
                     f"<title>{BASELINE_NAMES.get(name, name)} baseline: mIoU {value:.3f}</title></line>")
        labels.append((y, f"{BASELINE_NAMES.get(name, name)} {value:.3f}", f"atlas-faith-label atlas-faith-baseline-{name}"))
    points = " ".join(f"{x_of(t):.2f},{y_of(miou[t]):.2f}" for t in taus)
    parts.append(f'<polyline class="atlas-faith-curve" points="{points}"/>')
    for tau in taus:
        parts.append(f'<circle class="atlas-faith-point" data-tau="{tau:g}" data-miou="{miou[tau]:.4f}" '
                     f'cx="{x_of(tau):.2f}" cy="{y_of(miou[tau]):.2f}" r="4"><title>τ = {tau:g}: mIoU {miou[tau]:.3f}</title></circle>')
    if best is not None and float(best) in miou:
        x, y = x_of(float(best)), y_of(miou[float(best)])
        parts.append(f'<circle class="atlas-faith-best" data-tau="{float(best):g}" cx="{x:.2f}" cy="{y:.2f}" r="9">'
                     f"<title>best τ = {float(best):g}: mIoU {miou[float(best)]:.3f}</title></circle>")
        labels.append((y, f"DAAM {miou[float(best)]:.3f} (τ = {float(best):g})", "atlas-faith-label atlas-faith-label-daam"))
    labels.sort()
    for (_, text, css), y in zip(labels, _spread([y for y, _, _ in labels], LABEL_GAP, TOP + 4, TOP + plot_h)):
        parts.append(f'<text class="{css}" x="{LEFT + plot_w + 8}" y="{y + 4:.2f}">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def attribute_rows(chapter: dict[str, Any]) -> list[tuple[str, float | None, float | None]]:
    """(attribute, one-object share, two-object share) in a fixed order; None where a group never states it."""
    by_attribute = (chapter.get("fidelity") or {}).get("by_attribute") or {}
    one, two = by_attribute.get("one_object", {}), by_attribute.get("two_object", {})
    kinds = sorted(set(one) | set(two), key=lambda k: (ATTRIBUTE_ORDER.index(k) if k in ATTRIBUTE_ORDER else len(ATTRIBUTE_ORDER), k))
    return [(kind, one.get(kind), two.get(kind)) for kind in kinds]


def render_faithfulness(env: Any, generated_dir: Path, embed_dir: Path,
                        embed_common: dict[str, Any]) -> tuple[dict[Path, str], list[Path]]:
    """(outputs: path -> text, embed pages) of the page "How faithful is DAAM?"."""
    from generator.render.site import relurl

    chapters = load_faithfulness_chapters(generated_dir)
    page_file, built_page = generated_dir / PAGE, generated_dir / PAGE_HTML
    figures = env.get_template("faithfulness.html.j2").module
    outputs: dict[Path, str] = {}
    embeds: list[Path] = []

    def views(cid: str, from_dir: Path) -> dict[str, Any]:
        """URL helpers bound to the directory of the file being written."""

        def img(entry: dict) -> dict:
            return {"url": relurl(generated_dir / entry["src"], from_dir), "width": entry["width"] * EXAMPLE_SCALE,
                    "height": entry["height"] * EXAMPLE_SCALE}

        def embed(figure: str) -> str:
            return relurl(embed_dir / f"faithfulness-{cid}-{figure}.html", from_dir)

        return {"img": img, "embed": embed, "miou_svg": miou_svg}

    rendered = []
    for _, chapter in chapters:
        cid = chapter["id"]
        for figure, needs in (("miou", "daam"), ("examples", "examples")):
            if not chapter.get(needs):
                continue
            body = Markup(getattr(figures, figure)(chapter, cid, views(cid, embed_dir)))
            target = embed_dir / f"faithfulness-{cid}-{figure}.html"
            outputs[target] = env.get_template("embed.html.j2").render(
                p={"title": chapter["title"], "text": f"{chapter['title']}: {'mIoU against tau' if figure == 'miou' else 'best and worst examples'}"},
                traj={"page_url": relurl(built_page, embed_dir)}, body=body, widget=figure, **embed_common)
            embeds.append(target)
        rendered.append({**chapter, "_views": views(cid, generated_dir), "_attributes": attribute_rows(chapter)})
    outputs[page_file] = env.get_template("faithfulness.md.j2").render(chapters=rendered, f=figures)
    return outputs, embeds
