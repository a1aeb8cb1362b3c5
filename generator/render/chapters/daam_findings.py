"""Render stage: the page "What DAAM's maps tell us" (``generated/daam-findings.md``) and one embed per chart.

A chapter render module (generator/render/chapters/pages.py reads and checks the manifests
``<generated>/daam_findings/*.json`` written by ``generator/bake/chapters/daam_findings.py`` and writes the files):
every chart of the manifest is drawn as an interval chart (generator/render/interval_chart.py, drawn in the
browser by site/assets/js/charts.js) by the ``chart`` macro of ``templates/daam-findings.html.j2``, on the page
and on its embed page ``<embed>/daam-findings-<id>-<chart>.html``. The page's text
(``templates/daam-findings.md.j2``) quotes the manifest's numbers; without a manifest, or without a report, it shows
the command that writes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from markupsafe import Markup

from generator.render.chapters.context import Figure, PageContext
from generator.render.errors import RenderError
from generator.render.interval_chart import interval_chart


def views(cid: str, ctx: PageContext, from_dir: Path) -> dict[str, Any]:
    """URL helpers for the file being written (``embed``, ``page``) and ``interval_chart``."""
    return {**ctx.views(cid, from_dir), "interval_chart": interval_chart}


def drawn(chapter: dict) -> list[dict]:
    """The charts that have something to draw, in the manifest's order."""
    return [c for c in chapter.get("charts") or [] if c.get("rows")]


def figures(chapter: dict, ctx: PageContext) -> Iterator[Figure]:
    """One embeddable figure per chart."""
    for c in drawn(chapter):
        body = Markup(ctx.macros.chart(chapter, c, views(chapter["id"], ctx, ctx.embed_dir)))
        yield Figure(c["name"], f"{chapter['title']}: {c['title']}", body)


def check(path: Path, manifest: dict) -> None:
    """Chart names are unique (each names an embed page)."""
    names = [c["name"] for c in manifest.get("charts") or []]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RenderError(f"{path}: charts: {', '.join(duplicates)} named twice (each names an embed page)")


def page_chapter(chapter: dict, ctx: PageContext) -> dict[str, Any]:
    """The chapter as templates/daam-findings.md.j2 sees it: its views and its charts by name."""
    return {**chapter, "_views": views(chapter["id"], ctx, ctx.generated_dir),
            "_charts": {c["name"]: c for c in drawn(chapter)}}
