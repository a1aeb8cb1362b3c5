"""What pages point at: relative URLs, embed file names, sprite geometry (generator/render/paths.py), and the
chapter renderers registered for every chapter kind."""

from __future__ import annotations

from pathlib import Path

from generator.manifest.chapters import CHAPTERS
from generator.render.chapters.pages import RENDERERS
from generator.render.load import Sprite
from generator.render.paths import embed_file, embed_links, relurl, sprite_context, sprite_view


def test_every_chapter_kind_has_one_registered_render_module() -> None:
    assert set(RENDERERS) == set(CHAPTERS)
    for section, module in RENDERERS.items():
        assert module.__name__ == f"generator.render.chapters.{section}"
        assert callable(module.figures) and callable(module.page_chapter)


def test_embed_pages_are_named_once_and_linked_relative_to_the_page(tmp_path: Path) -> None:
    embed_dir, pages_dir = tmp_path / "embed", tmp_path / "generated" / "pages"
    assert embed_file(embed_dir, "red-cat", "daam") == embed_dir / "red-cat-daam.html"
    assert embed_links(embed_dir, "red-cat", pages_dir)("jumps") == "../../embed/red-cat-jumps.html"
    assert embed_links(embed_dir, "training-digits", embed_dir)("epochs-time") == "training-digits-epochs-time.html"
    assert relurl(tmp_path / "generated" / "a b.png", pages_dir) == "../a%20b.png"


def test_sprite_view_lays_out_frames_row_by_row() -> None:
    entry = {"src": "assets/x.webp", "frame_width": 16, "frame_height": 8, "columns": 3, "count": 5}
    idle = sprite_view(entry, "x.webp")
    assert (idle["sheet_columns"], idle["sheet_rows"], idle["size"], idle["position"]) == (3, 2, "300% 200%", "0% 0%")
    assert idle["frame"] is None
    positions = [sprite_view(entry, "x.webp", i)["position"] for i in range(5)]
    assert positions == ["0.000% 0.000%", "50.000% 0.000%", "100.000% 0.000%", "0.000% 100.000%", "50.000% 100.000%"]
    one_row = {"frame_width": 4, "frame_height": 4, "columns": 1, "count": 1}
    assert sprite_view(one_row, "y.webp", 0)["position"] == "0.000% 0.000%"


def test_a_measured_sheet_keeps_its_measured_grid(tmp_path: Path) -> None:
    sprite = Sprite("assets/s.webp", 16, 16, 3, 5, sheet_columns=4, sheet_rows=2)  # a sheet wider than its grid
    view = sprite_context(sprite, tmp_path / "generated", tmp_path / "generated" / "pages", frame=4)
    assert view["url"] == "../assets/s.webp"
    assert (view["sheet_columns"], view["sheet_rows"], view["size"]) == (4, 2, "400% 200%")
    assert view["position"] == "33.333% 100.000%"  # frame 4: column 1 of 4, row 1 of 2
    assert sprite_view(view, view["url"]) == {**view, "frame": None, "position": "0% 0%"}
