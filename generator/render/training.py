"""Render stage: the MNIST training chapter (``generated/training.md``) and its embeddable figures.

Reads the chapter manifests ``<generated>/training/*.json`` written by ``generator/bake/training.py`` (never
torch), checks every asset and sprite sheet, draws the loss curves as inline SVG (no plotting library) and
renders ``templates/training.md.j2``; each figure also gets an embed page ``<embed>/training-<chapter>-<figure>.html``.
The chapter's jump previews are the ``jumps`` sections of its prompts' manifests, shown with the standard
trajectory and jumps widgets. Without a manifest the page says how to bake one, so the navigation entry resolves.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from generator.render.errors import RenderError
from generator.render.experiments import _check_assets
from generator.render.load import _sprite

PAGE = "training.md"
PAGE_HTML = "training.html"
STAGE_NAMES = {"denoiser": "single-step denoiser", "time": "time-conditioned DDPM", "class": "class-conditioned DDPM"}
MAX_CURVE_POINTS = 400  # per-step losses are averaged in bins down to at most this many points

# loss chart geometry (SVG user units)
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 10, 30


def load_training_chapters(generated_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every training manifest, checked (kind, schema, assets, sprites), sorted by file name."""
    chapters = []
    folder = Path(generated_dir) / "training"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise RenderError(f"{path}: cannot read training manifest: {error}") from None
        if not isinstance(manifest, dict) or manifest.get("schema") != 1 or manifest.get("kind") != "training":
            raise RenderError(f"{path}: not a schema-1 training manifest")
        _check_assets(generated_dir, manifest, str(path))
        for stage in ("class", "time"):
            for entry in (manifest.get(stage) or {}).get("epochs", []):
                if entry["sprite"]["count"] != len(entry["frame_steps"]):
                    raise RenderError(f"{path}: {stage} epoch {entry['epoch']}: sprite has {entry['sprite']['count']} "
                                      f"frames but frame_steps lists {len(entry['frame_steps'])}")
        chapters.append((path, manifest))
    return chapters


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
            parts.append(f'<text class="atlas-loss-tick" x="{mid:.2f}" y="{HEIGHT - 12}" text-anchor="middle">{epoch + 1}</text>')
    parts.append(f'<text class="atlas-loss-axis" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 1}" text-anchor="middle">epoch</text>')
    points = " ".join(f"{x_of(x):.2f},{y_of(v):.2f}" for x, v in binned(steps))
    parts.append(f'<polyline class="atlas-loss-steps" data-bin="{max(1, math.ceil(len(steps) / MAX_CURVE_POINTS))}" points="{points}"/>')
    for epoch, value in enumerate(epochs):
        x = x_of(min((epoch + 0.5) * per_epoch, x_max))
        parts.append(f'<circle class="atlas-loss-epoch" data-epoch="{epoch + 1}" cx="{x:.2f}" cy="{y_of(value):.2f}" r="4">'
                     f"<title>epoch {epoch + 1}: mean loss {value:.5g}</title></circle>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _last_frame_position(sprite: Any) -> str:
    """CSS background-position of a sprite's last frame (what shows before any script runs)."""
    i = sprite.count - 1
    col, row = i % sprite.columns, i // sprite.columns
    x = col / (sprite.sheet_columns - 1) * 100 if sprite.sheet_columns > 1 else 0
    y = row / (sprite.sheet_rows - 1) * 100 if sprite.sheet_rows > 1 else 0
    return f"{x:.3f}% {y:.3f}%"


def render_training(env: Any, generated_dir: Path, site_dir: Path, embed_dir: Path, embed_common: dict[str, Any],
                    index: Any) -> tuple[dict[Path, str], list[Path]]:
    """(outputs: path -> text, embed pages) of the chapter; ``index`` is the site's checked SiteIndex."""
    from generator.render.site import _asset_resolver, relurl, sprite_context, trajectory_context

    chapters = load_training_chapters(generated_dir)
    page_file, built_page = generated_dir / PAGE, generated_dir / PAGE_HTML
    widgets = env.get_template("training.html.j2").module
    prompts = {p.id: p for p in index.prompts}
    outputs: dict[Path, str] = {}
    embeds: list[Path] = []

    def views(cid: str, from_dir: Path) -> dict[str, Any]:
        """URL helpers bound to the directory of the file being written."""

        def img(entry: dict) -> dict:
            return {"url": relurl(generated_dir / entry["src"], from_dir), "width": entry["width"], "height": entry["height"]}

        def anim(entry: dict, where: str) -> dict:
            sprite = _sprite(generated_dir, entry, where)
            return {**sprite_context(sprite, generated_dir, from_dir), "rest": _last_frame_position(sprite)}

        def embed(widget: str) -> str:
            return relurl(embed_dir / f"training-{cid}-{widget}.html", from_dir)

        return {"img": img, "anim": anim, "embed": embed, "loss_svg": loss_svg, "page": relurl(built_page, from_dir)}

    rendered = []
    for path, chapter in chapters:
        cid = chapter["id"]
        jumps = []
        for prompt_id in chapter.get("jumps", []):
            p = prompts.get(prompt_id)
            if p is None or "jumps" not in p.manifest:
                continue  # baked by another shard, or without jumps: the chapter says so below
            prompt_page = generated_dir / "pages" / f"{p.id}.html"
            traj = trajectory_context(p, generated_dir, embed_dir, generated_dir, prompt_page)
            jumps.append({"p": p, "traj": traj, "section": p.manifest["jumps"],
                          "asset": _asset_resolver(generated_dir, generated_dir, f"{prompt_id} jumps"),
                          # a Markdown link: name the source page so mkdocs resolves (and checks) it
                          "page_url": relurl(prompt_page.with_suffix(".md"), generated_dir)})
        page_views = views(cid, generated_dir)
        embed_views = views(cid, embed_dir)
        for widget, macro in (("forward", "forward"), ("denoiser", "denoiser"), ("losses", "losses"),
                              ("epochs-time", "epochs"), ("epochs-class", "epochs"), ("guidance", "guidance")):
            stage = widget.split("-")[1] if widget.startswith("epochs-") else None
            needs = {"forward": "forward", "denoiser": "denoiser", "losses": "losses", "guidance": "guidance"}.get(widget, stage)
            if not chapter.get(needs):
                continue
            args = (chapter, cid, embed_views) + ((stage,) if stage else ())
            body = Markup(getattr(widgets, macro)(*args))
            target = embed_dir / f"training-{cid}-{widget}.html"
            outputs[target] = env.get_template("embed.html.j2").render(
                p={"title": chapter["title"], "text": f"{chapter['title']}: {widget.replace('-', ' ')}"},
                traj={"page_url": relurl(built_page, embed_dir)}, body=body, widget=widget, **embed_common)
            embeds.append(target)
        rendered.append({**chapter, "_views": page_views, "_jumps": jumps})
    outputs[page_file] = env.get_template("training.md.j2").render(chapters=rendered, w=widgets)
    return outputs, embeds
