"""Every chapter kind the manifest contract names is baked by exactly one module, registered in one place."""

from __future__ import annotations

from generator.bake.chapters.runner import BAKES
from generator.manifest.chapters import CHAPTERS, PAGES


def test_every_chapter_kind_has_its_bake_module_in_order() -> None:
    assert tuple(BAKES) == CHAPTERS
    for kind, module in BAKES.items():
        assert module.__name__ == f"generator.bake.chapters.{kind}"
        for hook in ("chapter_cache_key", "bake_chapter", "baked_note"):
            assert callable(getattr(module, hook)), (kind, hook)


def test_every_chapter_kind_has_a_page() -> None:
    assert set(PAGES) == set(CHAPTERS)
