"""Render stage: turn the baked `index.json` + manifests into MkDocs pages and standalone embed pages.

Reads only JSON and image headers (never imports torch). Writes, through the Jinja templates in
`templates/`:

* `<generated>/gallery.md`: every prompt as a card;
* `<generated>/pages/<id>.md`: one page per prompt (prompt, trajectory widget, final image,
  downloads, settings and provenance);
* `<embed>/<id>-trajectory.html`: each widget alone, for iframes (no MkDocs chrome);
* the chapter pages `<generated>/course.md`, `training.md`, `faithfulness.md` and their embeds
  (generator/render/chapters/pages.py, one loop over the chapter kinds of generator/manifest/chapters.py);
* `<generated>/quality.json` and `quality.md`: every figure the judge scored, with its verdict
  (generator/render/verdicts.py), whose counts `diffatlas render` and `diffatlas build` print.

All links are relative to the file that holds them (generator/render/paths.py), so the built site also works
from file:// (mkdocs.yml uses `use_directory_urls: false`); the trajectory widget's context is
generator/render/trajectory.py's. Files are rewritten only when their content
changes, and generated pages of prompts no longer in the index are removed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from generator.render import charts
from generator.render.alongside import model_label, page_groups
from generator.render.chapters.pages import render_chapters
from generator.render.csp import EMBED_POLICY
from generator.render.escape import front_matter_string, html_block_text, html_json, md_escape
from generator.render.load import PromptView, SiteIndex, load_index
from generator.render.paths import asset_resolver, embed_file, relurl, sprite_view
from generator.render.publish import publish
from generator.render.trajectory import format_timestep, trajectory_context
from generator.render.verdicts import (
    JudgedFigure,
    QualityReport,
    judged_figures,
    quality_report,
    verdict_text,
    verdict_view,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"
CSS = "assets/css/atlas.css"  # relative to the site (docs) dir; embed pages then load every other assets/css/*.css
CORE_JS = "assets/js/atlas-core.js"  # loaded first; embed pages then load every other assets/js/*.js
GALLERY_PAGE_SIZE = 60  # cards the gallery shows before "Show more" (assets/js/gallery.js); all without script
QUALITY_JSON = "quality.json"  # every judged figure, written next to index.json
CORE_KEYS = frozenset({"schema", "id", "text", "title", "model", "settings", "provenance", "final", "trajectory"})
SECTION_ORDER = ("compare", "pipeline", "guidance", "schedule", "jumps", "daam", "variants", "map", "tokens")
# (then any other section, alphabetically)


@dataclass(frozen=True)
class RenderResult:
    """What a render wrote: every generated file, which of them changed, and what it removed."""

    gallery: Path
    pages: tuple[Path, ...]
    embeds: tuple[Path, ...]
    changed: tuple[Path, ...]
    removed: tuple[Path, ...]
    quality: QualityReport = QualityReport()  # every judged figure (also written to <generated>/quality.json)


def environment() -> Environment:
    """The Jinja environment of every template: HTML autoescape, strict undefined, the escaping filters."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_escape
    env.filters["html"] = html_block_text
    env.filters["t"] = format_timestep
    env.filters["json"] = html_json
    env.filters["front_matter"] = front_matter_string
    env.filters["verdict_view"] = verdict_view
    env.filters["verdict_text"] = verdict_text
    env.globals["embed_csp"] = EMBED_POLICY  # embeds have no inline script: script-src 'self' alone
    env.globals["sprite_view"] = sprite_view  # the one place sprite sheets are laid out (generator/render/paths.py)
    env.globals["charts"] = charts  # the prompt pages' charts and per-step numbers (generator/render/charts.py)
    return env


def section_keys(p: PromptView, templates: Path | None = None) -> list[str]:
    """Extra manifest sections (daam, jumps, ...) that have a template `sections/<key>.md.j2`."""
    folder = (templates or TEMPLATES) / "sections"
    keys = [k for k in p.manifest if k not in CORE_KEYS and (folder / f"{k}.md.j2").is_file()]
    return sorted(keys, key=lambda k: (SECTION_ORDER.index(k) if k in SECTION_ORDER else len(SECTION_ORDER), k))


def _scripts(site_dir: Path) -> list[Path]:
    """Every script an embed page loads: the core first, then the others by name."""
    core = site_dir / CORE_JS
    others = sorted(p for p in (site_dir / "assets" / "js").glob("*.js") if p != core)
    return [core, *others]


def _stylesheets(site_dir: Path) -> list[Path]:
    """Every stylesheet an embed page loads: the main one first, then the others by name."""
    main = site_dir / CSS
    others = sorted(p for p in (site_dir / "assets" / "css").glob("*.css") if p != main)
    return [main, *others]


def card_words(p: PromptView) -> str:
    """What the gallery's word filter searches in a card: its prompt text(s) and id, lower case, on one line."""
    texts = [p.id, p.title, p.text]
    if "compare" in p.manifest:
        texts.append(p.manifest["compare"]["text"])
    return " ".join(" ".join(texts).lower().split())


def render_site(generated_dir: Path, site_dir: Path, embed_dir: Path | None = None) -> RenderResult:
    """Render the gallery, one page per prompt and one embed page per widget.

    `generated_dir` holds `index.json`, `prompts/` and `assets/` (normally `<site_dir>/generated`);
    `site_dir` is the MkDocs docs dir, which holds `assets/css` and `assets/js`; embeds go to
    `embed_dir` (default `<site_dir>/embed`). Raises `RenderError` on a bad index or manifest or
    a missing asset, before writing anything.

    Extension point: a manifest section `<key>` (e.g. "daam") is rendered on the prompt page when
    `templates/sections/<key>.md.j2` exists, and gets an embed page `<id>-<key>.html` when
    `templates/sections/<key>.embed.html.j2` exists. Both see `p`, `section` (the manifest's
    value), `traj` (the trajectory context, whose `group` is the step group to follow) and
    `asset(src)` (a URL relative to the page; a missing asset is a RenderError).
    """
    generated_dir, site_dir = Path(generated_dir), Path(site_dir)
    embed_dir = Path(embed_dir) if embed_dir is not None else site_dir / "embed"
    index: SiteIndex = load_index(generated_dir)  # validates everything first
    env = environment()
    pages_dir = generated_dir / "pages"
    page_tpl, embed_tpl = env.get_template("prompt.md.j2"), env.get_template("embed.html.j2")
    trajectory_figure = env.get_template("trajectory.html.j2").module.trajectory_figure
    embed_common = {
        "site": index,
        "css_urls": [relurl(path, embed_dir) for path in _stylesheets(site_dir)],
        "script_urls": [relurl(path, embed_dir) for path in _scripts(site_dir)],
    }

    outputs: dict[Path, str] = {}
    pages, embeds = [], []
    prompt_figures: list[JudgedFigure] = []
    groups = page_groups(index.prompts)
    for n, group in enumerate(groups):
        page = pages_dir / f"{group.owner.id}.md"
        built_page = pages_dir / f"{group.owner.id}.html"
        views = []
        for p in group.views:
            mpath = str(generated_dir / "prompts" / f"{p.id}.json")
            prompt_figures.extend(judged_figures(f"pages/{group.owner.id}.html", group.owner.title,
                                                 f"prompts/{p.id}.json", p.manifest))
            page_traj = trajectory_context(p, generated_dir, embed_dir, pages_dir, built_page)
            embed_traj = trajectory_context(p, generated_dir, embed_dir, embed_dir, built_page)
            sections = []
            for key in section_keys(p):
                ctx = {"p": p, "section": p.manifest[key], "traj": page_traj,
                       "asset": asset_resolver(generated_dir, pages_dir, f"{mpath} {key}")}
                sections.append(Markup(env.get_template(f"sections/{key}.md.j2").render(ctx)))
                if (TEMPLATES / "sections" / f"{key}.embed.html.j2").is_file():
                    ectx = {**ctx, "traj": embed_traj,
                            "asset": asset_resolver(generated_dir, embed_dir, f"{mpath} {key}")}
                    body = Markup(env.get_template(f"sections/{key}.embed.html.j2").render(ectx))
                    embed = embed_file(embed_dir, p.id, key)
                    outputs[embed] = embed_tpl.render(p=p, traj=embed_traj, body=body, widget=key, **embed_common)
                    embeds.append(embed)
            embed = embed_file(embed_dir, p.id, "trajectory")
            outputs[embed] = embed_tpl.render(
                p=p, traj=embed_traj, body=trajectory_figure(embed_traj), widget="denoising trajectory",
                verdict=p.final.verdict, **embed_common
            )
            embeds.append(embed)
            views.append({
                "p": p,
                "label": model_label(p),
                "traj": page_traj,
                "sections": sections,
                "final_url": relurl(generated_dir / p.final.src, pages_dir),
                "downloads": {k: relurl(generated_dir / v, pages_dir) for k, v in p.downloads.items()},
            })
        outputs[page] = page_tpl.render(
            p=group.owner,
            site=index,
            views=views,
            prev=groups[n - 1].owner if n > 0 else None,
            next=groups[n + 1].owner if n + 1 < len(groups) else None,
        )
        pages.append(page)
    # the chapter pages (course, training, faithfulness)
    chapter_outputs, chapter_embeds, chapter_figures = render_chapters(
        env, generated_dir, embed_dir, embed_common, index
    )
    outputs.update(chapter_outputs)
    embeds.extend(chapter_embeds)
    quality = quality_report(prompt_figures + chapter_figures)
    quality_json = json.dumps(quality.to_json(), sort_keys=True, indent=1, ensure_ascii=False)
    outputs[generated_dir / QUALITY_JSON] = quality_json + "\n"
    outputs[generated_dir / "quality.md"] = env.get_template("quality.md.j2").render(quality=quality, site=index)
    gallery = generated_dir / "gallery.md"
    outputs[gallery] = env.get_template("gallery.md.j2").render(
        site=index,
        page_size=GALLERY_PAGE_SIZE,
        cards=[
            {"p": p, "href": f"pages/{quote(p.id)}.html",
             "thumb": relurl(generated_dir / p.thumbnail.src, generated_dir),
             "judged": p.final.verdict is not None,
             "words": card_words(p),
             "models": [model_label(view) for view in group.views],
             # a prompt pair is one card: both final images (the pair's second prompt has no page of its own)
             "pair_thumb": asset_resolver(generated_dir, generated_dir, f"prompts/{p.id}.json compare")(
                 p.manifest["compare"]["final"]["src"]) if "compare" in p.manifest else None}
            for group in groups for p in (group.owner,)
        ],
    )

    # all-or-nothing: an error or Ctrl-C while writing leaves the previous pages as they were (publish.py)
    changed, removed = publish(outputs, [(pages_dir, "*.md", set(pages)), (embed_dir, "*.html", set(embeds))])
    return RenderResult(gallery, tuple(pages), tuple(embeds), tuple(changed), tuple(removed), quality)
