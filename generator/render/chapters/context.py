"""Render stage: what a chapter render module gets from the chapter loop (`PageContext`) and gives it (`Figure`).

The loop is generator/render/chapters/pages.py; the modules it calls are experiments.py, training.py and
faithfulness.py beside this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from generator.render.load import SiteIndex
from generator.render.paths import embed_file, embed_links, relurl


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
        return embed_file(self.embed_dir, f"{self.page}-{cid}", figure)

    def views(self, cid: str, from_dir: Path, scale: int = 1) -> dict[str, Any]:
        """URL helpers for the templates, bound to the folder of the file being written.

        ``img(entry)``: a stored still, shown ``scale`` times its size; ``file(entry)``: the URL of any stored file
        (a download); ``embed(figure)``: the URL of one of the chapter's embed pages; ``page``: the URL of the
        chapter page. Chapter modules add their own.
        """

        def img(entry: dict[str, Any]) -> dict[str, Any]:
            """A still's URL and its size as shown."""
            return {"url": relurl(self.generated_dir / entry["src"], from_dir), "width": entry["width"] * scale,
                    "height": entry["height"] * scale}

        def file(entry: dict[str, Any]) -> str:
            """A stored file's URL (a PNG, GIF, MP4 or caption download)."""
            return relurl(self.generated_dir / entry["src"], from_dir)

        return {"img": img, "file": file, "embed": embed_links(self.embed_dir, f"{self.page}-{cid}", from_dir),
                "page": relurl(self.built_page, from_dir)}
