"""Render stage: the course-experiments chapter (``generated/course.md``) and its embeddable widgets.

A chapter render module (generator/render/chapters/pages.py reads and checks the manifests
``<generated>/experiments/*.json`` written by ``generator/bake/chapters/experiments.py`` and writes the files):
each interactive figure (SDEdit, inpainting, anagram, hybrid) and the denoising and sampling trajectories get an
embed page ``<embed>/course-<chapter>-<widget>.html``; the page is ``templates/course.md.j2``, which says how to
bake a chapter when there is none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from markupsafe import Markup

from generator.render.chapters.context import Figure, PageContext
from generator.render.load import read_sprite
from generator.render.paths import sprite_context
from generator.render.trajectory import trajectory_view

WIDGETS = (("sdedit", "sdedit"), ("inpaint", "inpaint"), ("anagram", "anagrams"), ("hybrid", "hybrids"))  # (macro, key)


def views(chapter: dict, ctx: PageContext, from_dir: Path) -> dict[str, Any]:
    """URL helpers bound to the folder of the file being written: ``img``, ``embed`` and ``traj`` (a trajectory)."""
    cid, generated_dir = chapter["id"], ctx.generated_dir
    base = ctx.views(cid, from_dir)

    def traj(entry: dict[str, Any], group: str, title: str, embed_of: str) -> dict[str, Any]:
        """A run's trajectory widget in step group ``group``; its embed page is the chapter's ``embed_of``."""
        sprites = {k: sprite_context(read_sprite(generated_dir, entry[k], title), generated_dir, from_dir)
                   for k in ("noisy", "predicted")}
        return trajectory_view(group, group, title, entry["steps"], entry["timesteps"], sprites, base["embed"],
                               embed_of, base["page"])

    return {**base, "traj": traj}


def figures(chapter: dict, ctx: PageContext) -> Iterator[Figure]:
    """Every SDEdit, inpainting, anagram and hybrid widget, then the denoising and sampling trajectories."""
    cid = chapter["id"]
    embed_views = views(chapter, ctx, ctx.embed_dir)
    for kind, key in WIDGETS:
        for entry in chapter.get(key, []):
            yield Figure(f"{kind}-{entry['id']}", _caption(kind, entry),
                         Markup(getattr(ctx.macros, kind)(chapter, entry, cid, embed_views)))
    trajectory_figure = ctx.env.get_template("trajectory.html.j2").module.trajectory_figure
    singles = []
    if chapter.get("denoise"):
        level = chapter["denoise"]["levels"][-1]
        start = level["iterative"]["start_timestep"]
        singles.append(("denoise", level["trajectory"], f"Iterative denoising from t = {start:g}"))
    if chapter.get("samples"):
        run = chapter["samples"]["by_guidance"][-1]
        singles.append(("samples", run["trajectory"], f"Sampling with guidance {run['guidance']:g}"))
    for widget, entry, title in singles:
        traj = embed_views["traj"](entry, f"traj-{cid}-{widget}", title, widget)
        yield Figure(widget, title, Markup(trajectory_figure(traj)))


def page_chapter(chapter: dict, ctx: PageContext) -> dict[str, Any]:
    """The chapter as templates/course.md.j2 sees it: the manifest with its page views as ``_views``."""
    return {**chapter, "_views": views(chapter, ctx, ctx.generated_dir)}


def _caption(kind: str, entry: dict) -> str:
    """The embed page's caption of a widget: its prompts, or its input image and prompt."""
    if kind in ("anagram", "hybrid"):
        return " / ".join(entry["prompts"])
    return f"{entry['image']}: {entry['prompt']}"
