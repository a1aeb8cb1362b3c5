"""Render stage: what a page needs to point at files: relative URLs, asset URLs, embed URLs and sprite geometry.

Every URL a page or embed holds is relative to the file that holds it (`relurl`), so the built site also works
from file://. Embed pages are named in one place (`embed_file`: ``<embed>/<owner>-<widget>.html``, the owner a
prompt id or ``<page>-<chapter id>``), and sprite sheets are laid out in one place (`sprite_view`: the CSS
background size and the position of a frame, which the templates print and site/assets/js/atlas-core.js's
``drawSprite`` recomputes when a script moves to another frame).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import quote

from generator.render.load import Sprite, asset_path


def relurl(target: Path, from_dir: Path) -> str:
    """URL of `target` relative to a page that lives in `from_dir`."""
    return quote(Path(os.path.relpath(target.resolve(), from_dir.resolve())).as_posix(), safe="/")


def asset_resolver(generated_dir: Path, from_dir: Path, where: str) -> Callable[[str], str]:
    """`asset(src)` for section templates: the URL of a generated asset, which must exist (RenderError)."""

    def asset(src: str) -> str:
        """The URL of ``src``."""
        return relurl(asset_path(generated_dir, src, where), from_dir)

    return asset


def embed_file(embed_dir: Path, owner: str, widget: str) -> Path:
    """Where the embed page of one of ``owner``'s widgets goes: ``<embed>/<owner>-<widget>.html``."""
    return embed_dir / f"{owner}-{widget}.html"


def embed_links(embed_dir: Path, owner: str, from_dir: Path) -> Callable[[str], str]:
    """`embed(widget)` for templates: the URL of one of ``owner``'s embed pages, relative to `from_dir`."""

    def embed(widget: str) -> str:
        """The URL of the embed page of ``widget``."""
        return relurl(embed_file(embed_dir, owner, widget), from_dir)

    return embed


def sprite_view(entry: Sprite | Mapping[str, Any], url: str, frame: int | None = None) -> dict[str, Any]:
    """A sprite sheet as the templates draw it, showing ``frame`` (None: frame 0, until a script moves it).

    ``entry`` is a measured `Sprite`, a view this function made, or a manifest's sprite entry, whose sheet is
    taken to be ``columns`` wide and as many rows high as its ``count`` frames need. Frame i sits at column
    i % columns, row i // columns; percent offsets scale with the element, so the frame fills it at any size.
    """
    fields = asdict(entry) if isinstance(entry, Sprite) else entry
    frame_width, frame_height = int(fields["frame_width"]), int(fields["frame_height"])
    columns, count = int(fields["columns"]), int(fields["count"])
    sheet_columns = int(fields.get("sheet_columns", columns))
    sheet_rows = int(fields.get("sheet_rows", -(-count // columns)))
    if frame is None:
        position = "0% 0%"
    else:
        col, row = frame % columns, frame // columns
        x = col / (sheet_columns - 1) * 100 if sheet_columns > 1 else 0
        y = row / (sheet_rows - 1) * 100 if sheet_rows > 1 else 0
        position = f"{x:.3f}% {y:.3f}%"
    return {"url": url, "frame_width": frame_width, "frame_height": frame_height, "columns": columns, "count": count,
            "sheet_columns": sheet_columns, "sheet_rows": sheet_rows, "frame": frame,
            "size": f"{sheet_columns * 100}% {sheet_rows * 100}%", "position": position}


def sprite_context(sprite: Sprite, generated_dir: Path, from_dir: Path, frame: int | None = None) -> dict[str, Any]:
    """`sprite_view` of a measured sprite sheet, its URL relative to `from_dir`."""
    return sprite_view(sprite, relurl(generated_dir / sprite.src, from_dir), frame)
