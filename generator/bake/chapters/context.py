"""Bake stage: what every chapter's bake shares: its context, its id and where its manifest goes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from generator.bake.store import AssetStore
from generator.progress import ProgressCallback, no_progress


@dataclass(frozen=True)
class ChapterContext:
    """What a chapter's bake may use: the asset store, its cache key, the model (loaded on first use), progress."""

    store: AssetStore
    key: str
    get_adapter: Callable[[], Any]
    progress: ProgressCallback = no_progress


def chapter_id(prompt_set: Any) -> str:
    """A chapter's id: the prompt file's stem as a slug."""
    return re.sub(r"[^a-z0-9_-]+", "-", Path(prompt_set.path).stem.lower()).strip("-") or "chapter"


def chapter_path(out_dir: Path, section: str, prompt_set: Any) -> Path:
    """Where the manifest of the prompt set's chapter ``section`` goes."""
    return Path(out_dir) / section / f"{chapter_id(prompt_set)}.json"
