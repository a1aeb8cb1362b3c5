"""Render stage: the chapter pages of the chapter kinds (experiments, training, faithfulness, daam_findings), one loop.

A chapter section baked by generator/bake/chapters/runner.py leaves manifests ``<generated>/<section>/<set id>.json``.
For every section in ``CHAPTERS`` (generator/manifest/chapters.py) this module reads them, sorted by file name, and
checks each one the same way (its JSON Schema, ``generator/manifest/chapters.schema.json``, then every asset and
sprite sheet), writes the embeddable figures of each chapter to ``<embed>/<page>-<chapter id>-<figure>.html`` and
renders the section's page ``<generated>/<page>.md`` (the page is ``PAGES[section]``) from
``templates/<page>.md.j2``, which sees ``chapters`` and the macros of ``templates/<page>.html.j2`` as ``w``. The page
is written even without a manifest (it then says how to bake one), so its navigation entry always resolves.

Each section's render module is registered in ``RENDERERS`` below and provides only what differs:

    figures(chapter, ctx) -> Iterable[Figure]             # the chapter's embeddable figures
    page_chapter(chapter, ctx) -> dict                    # what the page template sees of the chapter
    check(path, manifest) -> None                         # optional: what the schema cannot say (RenderError)

(``Figure`` and ``ctx``, a ``PageContext``, are in generator/render/chapters/context.py.)
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from jinja2 import Environment

from generator.manifest.chapters import CHAPTERS, PAGES
from generator.manifest.schema import chapter_schema
from generator.render.chapters import daam_findings, experiments, faithfulness, training
from generator.render.chapters.context import PageContext
from generator.render.errors import RenderError
from generator.render.load import SiteIndex, asset_path, check_schema, read_json, read_sprite
from generator.render.paths import relurl
from generator.render.verdicts import JudgedFigure, judged_figures

# the render module of each chapter section (every one of CHAPTERS has one)
RENDERERS: dict[str, ModuleType] = {"experiments": experiments, "training": training, "faithfulness": faithfulness,
                                    "daam_findings": daam_findings}


def check_assets(generated_dir: Path, value: Any, where: str) -> None:
    """Every referenced asset exists; every sprite sheet holds its grid (raises RenderError)."""
    if isinstance(value, dict):
        if {"src", "frame_width", "columns", "count"} <= set(value):
            read_sprite(generated_dir, value, where)
        elif isinstance(value.get("src"), str):
            asset_path(generated_dir, value["src"], where)
        for item in value.values():
            check_assets(generated_dir, item, where)
    elif isinstance(value, list):
        for item in value:
            check_assets(generated_dir, item, where)


def load_chapters(generated_dir: Path, section: str) -> list[tuple[Path, dict[str, Any]]]:
    """Every manifest of a chapter section, checked (schema, assets, sprites, the module's own checks), by file name."""
    generated_dir = Path(generated_dir)
    module = RENDERERS[section]
    folder = generated_dir / section
    chapters = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        manifest = read_json(path, f"{section} manifest")
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
        page = f"{PAGES[section]}.html"
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
        module, page = RENDERERS[section], PAGES[section]
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
        page_tpl = env.get_template(f"{page}.md.j2")
        outputs[ctx.generated_dir / f"{page}.md"] = page_tpl.render(chapters=rendered, w=ctx.macros)
    return outputs, embeds, chapter_verdicts(Path(generated_dir), loaded)
