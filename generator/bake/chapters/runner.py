"""Bake stage: the chapter pages a prompt file adds beside its prompts, one manifest per chapter and file.

A chapter is declared by a section of the prompt file (``experiments:``, ``training:``, ``faithfulness:``,
``daam_findings:``: the
attribute of the same name on the loaded prompt set) and is baked by the module of the same name in this
package (listed in ``BAKES``) into ``<section>/<set id>.json`` under the generated folder. Every chapter module
provides

    chapter_cache_key(prompt_set, fingerprint) -> str      # what decides its assets
    bake_chapter(prompt_set, context) -> dict               # run it, store assets, return the manifest
    baked_note(manifest) -> str                             # appended to the "baked" message ("" if nothing)

and this module does the rest the same way for all: cache check, atomic write, messages, and removing the
manifest of a section the file no longer has (so the site does not keep a stale page).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Collection

from generator.bake.cache import is_cached
from generator.bake.chapters import daam_findings, experiments, faithfulness, training
from generator.bake.chapters.context import ChapterContext, chapter_path
from generator.bake.store import AssetStore, write_json
from generator.manifest.chapters import CHAPTERS
from generator.progress import ProgressCallback, no_progress

BAKES = {"experiments": experiments, "training": training, "faithfulness": faithfulness,  # chapter id -> module
         "daam_findings": daam_findings}


def bake_chapters(prompt_set: Any, out_dir: Path, store: AssetStore, fingerprint: str, get_adapter: Callable[[], Any],
                  *, force: bool = False, progress: ProgressCallback = no_progress,
                  on_event: Callable[[str], None] = lambda message: None,
                  sections: Collection[str] | None = None) -> list[Path]:
    """Bake every chapter the prompt set declares (unless cached); returns the manifest paths written or kept.

    ``sections`` limits the work to those chapter ids (a sharded bake gives each process its own; a section the
    file no longer has is removed only when listed), None: all.
    """
    paths = []
    for section in CHAPTERS:
        if sections is not None and section not in sections:
            continue
        path = chapter_path(out_dir, section, prompt_set)
        if getattr(prompt_set, section, None) is None:
            if path.exists():
                path.unlink()
                on_event(f"{section} {path.stem}: section gone from the prompt file, manifest removed")
            continue
        module = BAKES[section]
        key = module.chapter_cache_key(prompt_set, fingerprint)
        paths.append(path)
        if not force and is_cached(path, key, out_dir):
            on_event(f"{section} {path.stem}: unchanged, cached (use --force to redo)")
            continue
        manifest = module.bake_chapter(prompt_set, ChapterContext(store, key, get_adapter, progress))
        write_json(path, manifest)
        on_event(f"{section} {path.stem}: baked{module.baked_note(manifest)}")
    return paths
