"""Render stage: the MNIST training chapter (``generated/training.md``) and its embeddable figures.

A chapter render module (generator/render/chapters/pages.py reads and checks the manifests
``<generated>/training/*.json`` written by ``generator/bake/chapters/training.py`` and writes the files): it draws the
loss curves as inline SVG (no plotting library) and gives each figure an embed page
``<embed>/training-<chapter>-<figure>.html``. The chapter's jump previews are the ``jumps`` sections of its
prompts' manifests, shown with the standard trajectory and jumps widgets. Without a manifest the page
(``templates/training.md.j2``) says how to bake one, so the navigation entry resolves.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator

from markupsafe import Markup, escape

from generator.render.chapters.context import Figure, PageContext
from generator.render.errors import RenderError
from generator.render.load import read_sprite
from generator.render.paths import asset_resolver, relurl, sprite_context
from generator.render.trajectory import trajectory_context

# (figure, its macro in templates/training.html.j2, the manifest key it needs); epochs-<stage> also passes the stage
FIGURES = (("forward", "forward", "forward"), ("denoiser", "denoiser", "denoiser"), ("losses", "losses", "losses"),
           ("epochs-time", "epochs", "time"), ("epochs-class", "epochs", "class"), ("guidance", "guidance", "guidance"))
STAGE_NAMES = {"denoiser": "single-step denoiser", "time": "time-conditioned DDPM", "class": "class-conditioned DDPM"}
MAX_CURVE_POINTS = 400  # per-step losses are averaged in bins down to at most this many points

# loss chart geometry (SVG user units)
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 10, 30


def check(path: Path, manifest: dict[str, Any]) -> None:
    """Each sampling animation has one frame per listed step (beyond the schema; raises RenderError)."""
    for stage in ("class", "time"):
        for entry in (manifest.get(stage) or {}).get("epochs", []):
            if entry["sprite"]["count"] != len(entry["frame_steps"]):
                raise RenderError(f"{path}: {stage} epoch {entry['epoch']}: sprite has {entry['sprite']['count']} "
                                  f"frames but frame_steps lists {len(entry['frame_steps'])}")


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


def loss_svg(stage: str, losses: dict[str, Any]) -> Markup:
    """Inline SVG of one model's training loss (log scale): binned step losses and each epoch's mean.

    The axis mapping is written on the element (data-x-max, data-log-min, data-log-max) so a reader (or a
    test) can turn every point back into (step, loss).
    """
    steps = [float(v) for v in losses.get("step_losses", [])]
    epochs = [float(v) for v in losses.get("epoch_losses", [])]
    per_epoch = int(losses.get("steps_per_epoch") or max(1, len(steps) // max(1, len(epochs))))
    if not steps or min(steps + epochs) <= 0:
        return Markup("")
    x_max = max(len(steps) - 1, 1)
    low, high = min(steps + epochs), max(steps + epochs)
    log_min, log_max = math.log10(low) - 0.02, math.log10(high) + 0.02
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(step: float) -> float:
        return LEFT + step / x_max * plot_w

    def y_of(loss: float) -> float:
        return TOP + (log_max - math.log10(loss)) / (log_max - log_min) * plot_h

    label = f"Training loss of the {STAGE_NAMES.get(stage, stage)}: {len(epochs)} epochs, {len(steps)} steps, " \
            f"from {steps[0]:.4g} to {epochs[-1] if epochs else steps[-1]:.4g} (epoch mean)"
    parts = [f'<svg class="atlas-loss" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}" '
             f'data-stage="{stage}" data-x-max="{x_max}" data-log-min="{log_min:.6f}" data-log-max="{log_max:.6f}" '
             f'data-plot="{LEFT} {TOP} {plot_w} {plot_h}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(label)}</title>"]
    for value in _nice_ticks(low, high):
        y = y_of(value)
        parts.append(f'<line class="atlas-loss-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.2f}" y2="{y:.2f}"/>'
                     f'<text class="atlas-loss-tick" x="{LEFT - 6}" y="{y + 4:.2f}" text-anchor="end">{value:g}</text>')
    for epoch in range(len(epochs) + 1):
        x = x_of(min(epoch * per_epoch, x_max))
        parts.append(f'<line class="atlas-loss-grid" x1="{x:.2f}" x2="{x:.2f}" y1="{TOP}" y2="{TOP + plot_h}"/>')
        if epoch < len(epochs):
            mid = x_of(min((epoch + 0.5) * per_epoch, x_max))
            parts.append(f'<text class="atlas-loss-tick" x="{mid:.2f}" y="{HEIGHT - 12}" text-anchor="middle">'
                         f"{epoch + 1}</text>")
    parts.append(f'<text class="atlas-loss-axis" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 1}" '
                 f'text-anchor="middle">epoch</text>')
    points = " ".join(f"{x_of(x):.2f},{y_of(v):.2f}" for x, v in binned(steps))
    bin_size = max(1, math.ceil(len(steps) / MAX_CURVE_POINTS))
    parts.append(f'<polyline class="atlas-loss-steps" data-bin="{bin_size}" points="{points}"/>')
    for epoch, value in enumerate(epochs):
        x = x_of(min((epoch + 0.5) * per_epoch, x_max))
        parts.append(f'<circle class="atlas-loss-epoch" data-epoch="{epoch + 1}" cx="{x:.2f}" '
                     f'cy="{y_of(value):.2f}" r="4">'
                     f"<title>epoch {epoch + 1}: mean loss {value:.5g}</title></circle>")
    parts.append("</svg>")
    return Markup("".join(parts))


def views(cid: str, ctx: PageContext, from_dir: Path) -> dict[str, Any]:
    """URL helpers for the file being written: ``img``, ``embed``, ``page``, ``anim``, ``loss_svg``."""

    def anim(entry: dict[str, Any], where: str) -> dict[str, Any]:
        """A sampling animation, showing its last frame (the samples) until it plays."""
        sprite = read_sprite(ctx.generated_dir, entry, where)
        return sprite_context(sprite, ctx.generated_dir, from_dir, frame=sprite.count - 1)

    return {**ctx.views(cid, from_dir), "anim": anim, "loss_svg": loss_svg}


def figures(chapter: dict, ctx: PageContext) -> Iterator[Figure]:
    """Each figure whose part of the chapter was baked (a model that is not shipped has none)."""
    cid = chapter["id"]
    embed_views = views(cid, ctx, ctx.embed_dir)
    for figure, macro, needs in FIGURES:
        if not chapter.get(needs):
            continue
        stage = (needs,) if macro == "epochs" else ()
        body = Markup(getattr(ctx.macros, macro)(chapter, cid, embed_views, *stage))
        yield Figure(figure, f"{chapter['title']}: {figure.replace('-', ' ')}", body)


def page_chapter(chapter: dict, ctx: PageContext) -> dict[str, Any]:
    """The chapter as templates/training.md.j2 sees it: with its page views and its prompts' jump previews."""
    prompts = {p.id: p for p in ctx.index.prompts}
    generated_dir = ctx.generated_dir
    jumps = []
    for prompt_id in chapter.get("jumps", []):
        p = prompts.get(prompt_id)
        if p is None or "jumps" not in p.manifest:
            continue  # baked by another shard, or without jumps: the chapter says so
        prompt_page = generated_dir / "pages" / f"{p.id}.html"
        traj = trajectory_context(p, generated_dir, ctx.embed_dir, generated_dir, prompt_page)
        jumps.append({"p": p, "traj": traj, "section": p.manifest["jumps"],
                      "asset": asset_resolver(generated_dir, generated_dir, f"{prompt_id} jumps"),
                      # a Markdown link: name the source page so mkdocs resolves (and checks) it
                      "page_url": relurl(prompt_page.with_suffix(".md"), generated_dir)})
    return {**chapter, "_views": views(chapter["id"], ctx, generated_dir), "_jumps": jumps}
