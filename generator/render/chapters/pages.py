"""Render stage: the chapter pages of the bake stage's chapters (experiments, training, faithfulness), one loop for all.

A chapter section baked by generator/bake/chapters/runner.py leaves manifests ``<generated>/<section>/<set id>.json``.
For every section in ``CHAPTERS`` this module reads them, sorted by file name, and checks each one the same way
(its JSON Schema, ``generator/manifest/chapters.schema.json``, then every asset and sprite sheet), writes the
embeddable figures of each chapter to ``<embed>/<page>-<chapter id>-<figure>.html`` and renders the section's
page ``<generated>/<page>.md`` from ``templates/<page>.md.j2``, which sees ``chapters`` and the macros of
``templates/<page>.html.j2`` as ``w``. The page is written even without a manifest (it then says how to bake
one), so its navigation entry always resolves. The render module ``generator/render/chapters/<section>.py`` of a section
provides only what differs:

    PAGE: str                                             # the page's name: course, training, faithfulness
    figures(chapter, ctx) -> Iterable[Figure]             # the chapter's embeddable figures
    page_chapter(chapter, ctx) -> dict                    # what the page template sees of the chapter
    check(path, manifest) -> None                         # optional: what the schema cannot say (RenderError)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from generator.bake.chapters.runner import CHAPTERS
from generator.manifest.schema import chapter_schema
from generator.render.errors import RenderError
from generator.render.load import SiteIndex, _read_json, _sprite, check_schema
from generator.render.site import relurl
from generator.render.verdicts import JudgedFigure, judged_figures


@dataclass(frozen=True)
class Figure:
    """One embeddable figure of a chapter: ``<embed>/<page>-<chapter id>-<name>.html`` shows ``body``."""

    name: str  # e.g. "sdedit-scene", "epochs-time", "miou"
    caption: str  # the embed page's description of it
    body: Markup


@dataclass(frozen=True)
class PageContext:
    """What a chapter module's hooks may use: where files go, the site's prompts, the page's macros."""

    env: Environment
    generated_dir: Path
    embed_dir: Path
    page: str
    index: SiteIndex
    macros: Any  # the template module of templates/<page>.html.j2

    @property
    def built_page(self) -> Path:
        """The page as MkDocs builds it (what embeds and figures link back to)."""
        return self.generated_dir / f"{self.page}.html"

    def embed_file(self, cid: str, figure: str) -> Path:
        """Where the embed page of a chapter's figure goes."""
        return self.embed_dir / f"{self.page}-{cid}-{figure}.html"

    def views(self, cid: str, from_dir: Path, scale: int = 1) -> dict[str, Any]:
        """URL helpers for the templates, bound to the folder of the file being written.

        ``img(entry)``: a stored still, shown ``scale`` times its size; ``embed(figure)``: the URL of one of the
        chapter's embed pages; ``page``: the URL of the chapter page. Chapter modules add their own.
        """

        def img(entry: dict) -> dict:
            return {"url": relurl(self.generated_dir / entry["src"], from_dir), "width": entry["width"] * scale,
                    "height": entry["height"] * scale}

        def embed(figure: str) -> str:
            return relurl(self.embed_file(cid, figure), from_dir)

        return {"img": img, "embed": embed, "page": relurl(self.built_page, from_dir)}


def chapter_module(section: str) -> Any:
    """The render module of a chapter section (generator/render/chapters/<section>.py)."""
    return importlib.import_module(f"generator.render.chapters.{section}")


def check_assets(generated_dir: Path, value: Any, where: str) -> None:
    """Every referenced asset exists; every sprite sheet holds its grid (raises RenderError)."""
    if isinstance(value, dict):
        if {"src", "frame_width", "columns", "count"} <= set(value):
            _sprite(generated_dir, value, where)
        elif isinstance(value.get("src"), str) and not (generated_dir / value["src"]).is_file():
            raise RenderError(f"{where}: asset {value['src']} is missing from {generated_dir}")
        for item in value.values():
            check_assets(generated_dir, item, where)
    elif isinstance(value, list):
        for item in value:
            check_assets(generated_dir, item, where)


def load_chapters(generated_dir: Path, section: str) -> list[tuple[Path, dict[str, Any]]]:
    """Every manifest of a chapter section, checked (schema, assets, sprites, the module's own checks), by file name."""
    generated_dir = Path(generated_dir)
    module = chapter_module(section)
    folder = generated_dir / section
    chapters = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        manifest = _read_json(path, f"{section} manifest")
        kind = manifest.get("kind") if isinstance(manifest, dict) else None
        if kind != section and kind in CHAPTERS:  # say so before the schema lists every field the kinds differ in
            raise RenderError(f"{path}: kind: a {kind} manifest in {section}/ (the bake stage writes it to {kind}/)")
        check_schema(path, manifest, chapter_schema(section), f"{section} manifest")
        check_assets(generated_dir, manifest, str(path))
        if hasattr(module, "check"):
            module.check(path, manifest)
        chapters.append((path, manifest))
    return chapters


def chapter_verdicts(generated_dir: Path, loaded: dict[str, list[tuple[Path, dict[str, Any]]]]) -> list[JudgedFigure]:
    """Every judged image of every chapter manifest, published on its section's page."""
    figures = []
    for section, chapters in loaded.items():
        page = f"{chapter_module(section).PAGE}.html"
        for path, chapter in chapters:
            rel = path.relative_to(generated_dir).as_posix()
            figures.extend(judged_figures(page, str(chapter.get("title", page)), rel, chapter))
    return figures


def render_chapters(env: Environment, generated_dir: Path, embed_dir: Path, embed_common: dict[str, Any],
                    index: SiteIndex) -> tuple[dict[Path, str], list[Path], list[JudgedFigure]]:
    """(outputs: path -> text, embed pages, judged figures) of every chapter section; checks every manifest first."""
    loaded = {section: load_chapters(generated_dir, section) for section in CHAPTERS}
    embed_tpl = env.get_template("embed.html.j2")
    outputs: dict[Path, str] = {}
    embeds: list[Path] = []
    for section, chapters in loaded.items():
        module = chapter_module(section)
        page = module.PAGE
        ctx = PageContext(env, Path(generated_dir), Path(embed_dir), page, index,
                          env.get_template(f"{page}.html.j2").module)
        back = {"page_url": relurl(ctx.built_page, ctx.embed_dir)}
        for _, chapter in chapters:
            for figure in module.figures(chapter, ctx):
                target = ctx.embed_file(chapter["id"], figure.name)
                outputs[target] = embed_tpl.render(p={"title": chapter["title"], "text": figure.caption}, traj=back,
                                                   body=figure.body, widget=figure.name, **embed_common)
                embeds.append(target)
        rendered = [module.page_chapter(chapter, ctx) for _, chapter in chapters]
        outputs[ctx.generated_dir / f"{page}.md"] = env.get_template(f"{page}.md.j2").render(chapters=rendered, w=ctx.macros)
    return outputs, embeds, chapter_verdicts(Path(generated_dir), loaded)

