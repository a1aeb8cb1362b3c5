"""Render stage: the MNIST training chapter (``generated/training.md``) and its embeddable figures.

A chapter render module (generator/render/chapters/pages.py reads and checks the manifests
``<generated>/training/*.json`` written by ``generator/bake/chapters/training.py`` and writes the files): it draws the
loss curves as charts (generator/render/chapters/loss_chart.py) and the UNet diagram as inline SVG
(generator/render/chapters/training_svg.py) and gives each figure an embed page
``<embed>/training-<chapter>-<figure>.html``. The chapter's jump previews are the ``jumps`` sections of its
prompts' manifests, shown with the standard trajectory and jumps widgets. Without a manifest the page
(``templates/training.md.j2``) says how to bake one, so the navigation entry resolves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from markupsafe import Markup

from generator.render.chapters.context import Figure, PageContext
from generator.render.chapters.loss_chart import loss_chart
from generator.render.chapters.training_svg import diagram_svg
from generator.render.errors import RenderError
from generator.render.load import read_sprite
from generator.render.paths import asset_resolver, relurl, sprite_context
from generator.render.trajectory import trajectory_context

# (figure, its macro in templates/training.html.j2, the manifest key it needs); epochs-<stage> also passes the stage
FIGURES = (("forward", "forward", "forward"), ("denoiser", "denoiser", "denoiser"), ("unet", "unet", "unet"),
           ("losses", "losses", "losses"), ("epochs-time", "epochs", "time"), ("epochs-class", "epochs", "class"),
           ("guidance", "guidance", "guidance"), ("epochs-flow-time", "epochs", "flow-time"),
           ("epochs-flow-class", "epochs", "flow-class"))
# the stages drawn on one chart: the DDPMs share theirs (noise MSE), the flow-matching twins theirs (velocity MSE)
LOSS_CHARTS = (("denoiser",), ("time", "class"), ("flow-time", "flow-class"))


def check(path: Path, manifest: dict[str, Any]) -> None:
    """Each sampling animation has one frame per listed step (beyond the schema; raises RenderError)."""
    for stage in ("class", "time", "flow-class", "flow-time"):
        for entry in (manifest.get(stage) or {}).get("epochs", []):
            if entry["sprite"]["count"] != len(entry["frame_steps"]):
                raise RenderError(f"{path}: {stage} epoch {entry['epoch']}: sprite has {entry['sprite']['count']} "
                                  f"frames but frame_steps lists {len(entry['frame_steps'])}")


def loss_charts(losses: dict[str, Any]) -> list[dict[str, Any]]:
    """The loss charts of a chapter: per chart its stages (those shipped) and the chart."""
    charts = []
    for stages in LOSS_CHARTS:
        shipped = [(stage, losses[stage]) for stage in stages if stage in losses]
        if shipped:
            charts.append({"stages": [stage for stage, _ in shipped], "losses": dict(shipped),
                           "chart": loss_chart(shipped)})
    return charts


def views(cid: str, ctx: PageContext, from_dir: Path) -> dict[str, Any]:
    """URL helpers for the file being written: ``img``, ``file``, ``embed``, ``page``, ``anim``, ``loss_charts``,
    ``diagram_svg``."""

    def anim(entry: dict[str, Any], where: str) -> dict[str, Any]:
        """A sampling animation, showing its last frame (the samples) until it plays."""
        sprite = read_sprite(ctx.generated_dir, entry, where)
        return sprite_context(sprite, ctx.generated_dir, from_dir, frame=sprite.count - 1)

    return {**ctx.views(cid, from_dir), "anim": anim, "loss_charts": loss_charts, "diagram_svg": diagram_svg}


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
