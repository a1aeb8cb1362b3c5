"""Render stage: the course-experiments chapter (``generated/course.md``) and its embeddable widgets.

Reads the chapter manifests ``<generated>/experiments/*.json`` written by ``generator/bake/experiments.py``
(never torch), checks that every asset exists and every sprite sheet holds its frames, and renders
``templates/course.md.j2``; each interactive figure (SDEdit, inpainting, anagram, hybrid) also gets an embed page
``<embed>/course-<chapter>-<widget>.html``. Without any chapter manifest the page says how to bake one, so the
navigation entry always resolves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from markupsafe import Markup

from generator.render.errors import RenderError
from generator.render.load import _sprite

PAGE = "course.md"
PAGE_HTML = "course.html"


def load_chapters(generated_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every chapter manifest, checked (kind, schema, assets, sprites), sorted by file name."""
    chapters = []
    folder = Path(generated_dir) / "experiments"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise RenderError(f"{path}: cannot read experiments manifest: {error}") from None
        if not isinstance(manifest, dict) or manifest.get("schema") != 1 or manifest.get("kind") != "experiments":
            raise RenderError(f"{path}: not a schema-1 experiments manifest")
        _check_assets(generated_dir, manifest, str(path))
        chapters.append((path, manifest))
    return chapters


def _check_assets(generated_dir: Path, value: Any, where: str) -> None:
    """Every referenced asset exists; every sprite sheet holds its grid (raises RenderError)."""
    if isinstance(value, dict):
        if {"src", "frame_width", "columns", "count"} <= set(value):
            _sprite(generated_dir, value, where)
        elif isinstance(value.get("src"), str) and not (generated_dir / value["src"]).is_file():
            raise RenderError(f"{where}: asset {value['src']} is missing from {generated_dir}")
        for item in value.values():
            _check_assets(generated_dir, item, where)
    elif isinstance(value, list):
        for item in value:
            _check_assets(generated_dir, item, where)


def render_course(
    env: Any, generated_dir: Path, site_dir: Path, embed_dir: Path, embed_common: dict[str, Any],
    relurl: Callable[[Path, Path], str], trajectory_sprites: Callable[[Any, Path, Path], dict],
) -> tuple[dict[Path, str], list[Path]]:
    """(outputs: path -> text, embed pages) of the chapter; ``relurl``/``trajectory_sprites`` come from site.py."""
    chapters = load_chapters(generated_dir)
    page_file = generated_dir / PAGE
    built_page = generated_dir / PAGE_HTML
    widgets = env.get_template("course.html.j2").module
    outputs: dict[Path, str] = {}
    embeds: list[Path] = []

    def views(chapter: dict, from_dir: Path, embed_name: Callable[[str], Path]) -> dict:
        """URL helpers bound to the directory of the file being written."""

        def img(entry: dict) -> dict:
            return {"url": relurl(generated_dir / entry["src"], from_dir), "width": entry["width"], "height": entry["height"]}

        def traj(entry: dict, group: str, title: str, embed_of: str) -> dict:
            sprites = {k: trajectory_sprites(_sprite(generated_dir, entry[k], title), generated_dir, from_dir)
                       for k in ("noisy", "predicted")}
            timesteps = entry["timesteps"]
            fmt = env.filters["t"]
            return {"id": group, "group": group, "title": title, "steps": entry["steps"],
                    "timesteps": ",".join(fmt(t) for t in timesteps), "first_t": fmt(timesteps[0]) if timesteps else "0",
                    "embed_url": relurl(embed_name(embed_of), from_dir), "page_url": relurl(built_page, from_dir), **sprites}

        return {"img": img, "traj": traj}

    for path, chapter in chapters:
        cid = chapter["id"]

        def embed_name(widget: str, cid: str = cid) -> Path:
            return embed_dir / f"course-{cid}-{widget}.html"

        page_views = views(chapter, generated_dir, embed_name)
        embed_views = views(chapter, embed_dir, embed_name)
        for kind, entries in (("sdedit", chapter.get("sdedit", [])), ("inpaint", chapter.get("inpaint", [])),
                              ("anagram", chapter.get("anagrams", [])), ("hybrid", chapter.get("hybrids", []))):
            for entry in entries:
                widget = f"{kind}-{entry['id']}"
                body = Markup(getattr(widgets, kind)(chapter, entry, cid, embed_views))
                target = embed_name(widget)
                outputs[target] = env.get_template("embed.html.j2").render(
                    p={"title": chapter["title"], "text": _caption(kind, entry)}, traj={"page_url": relurl(built_page, embed_dir)},
                    body=body, widget=widget, **embed_common)
                embeds.append(target)
        trajectory_figure = env.get_template("trajectory.html.j2").module.trajectory_figure
        singles = []
        if chapter.get("denoise"):
            level = chapter["denoise"]["levels"][-1]
            singles.append(("denoise", level["trajectory"], f"Iterative denoising from t = {level['iterative']['start_timestep']:g}"))
        if chapter.get("samples"):
            run = chapter["samples"]["by_guidance"][-1]
            singles.append(("samples", run["trajectory"], f"Sampling with guidance {run['guidance']:g}"))
        for widget, entry, title in singles:
            target = embed_name(widget)
            body = Markup(trajectory_figure(embed_views["traj"](entry, f"traj-{cid}-{widget}", title, widget)))
            outputs[target] = env.get_template("embed.html.j2").render(
                p={"title": chapter["title"], "text": title}, traj={"page_url": relurl(built_page, embed_dir)},
                body=body, widget=widget, **embed_common)
            embeds.append(target)
        chapter["_views"] = page_views
    outputs[page_file] = env.get_template("course.md.j2").render(chapters=[c for _, c in chapters], w=widgets)
    for _, chapter in chapters:
        chapter.pop("_views", None)
    return outputs, embeds


def _caption(kind: str, entry: dict) -> str:
    if kind in ("anagram", "hybrid"):
        return " / ".join(entry["prompts"])
    return f"{entry['image']}: {entry['prompt']}"
