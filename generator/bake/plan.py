"""Bake stage: what a bake has to do, decided once by the main process before any work starts.

Every prompt and every chapter the file declares is one manifest. Those whose manifest is intact with the same
cache key (generator/bake/cache.py) are done already; the rest are work items, with their expected cost
(generator/bake/shard.py) so they can be split between processes. Deciding it in one process, after the
temporary files of a killed bake are cleaned up and before anyone writes, gives every process the same view;
a rerun after a crash plans only what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from generator.bake.cache import cache_key, cache_problem, is_cached
from generator.bake.chapters.context import chapter_path
from generator.bake.chapters.runner import BAKES
from generator.bake.shard import WorkItem, chapter_cost, prompt_cost
from generator.manifest.chapters import CHAPTERS
from generator.spec.prompt_set import PromptSet, PromptSpec


@dataclass(frozen=True)
class Plan:
    """The work items (in file order: prompts, then chapters), what is cached, and why each item is redone."""

    work: tuple[WorkItem, ...]
    cached_prompts: tuple[str, ...]
    cached_chapters: tuple[str, ...]
    gone_chapters: tuple[str, ...]  # sections the file no longer has (their old manifest is removed)
    reasons: dict[str, str] = field(default_factory=dict)  # prompt id -> 'absent', 'stale' or 'damaged: ...'


def prompt_cache_key(prompt: PromptSpec, model: str, fingerprint: str) -> str:
    """Everything that decides a prompt's assets: its spec, the model's weights and the baking code."""
    return cache_key(prompt.spec_hash(model), fingerprint)


def prompt_manifest_path(out_dir: Path, prompt_id: str) -> Path:
    """Where a prompt's manifest goes."""
    return Path(out_dir) / "prompts" / f"{prompt_id}.json"


def plan_bake(prompt_set: PromptSet, out_dir: Path, fingerprint: str, *, force: bool = False) -> Plan:
    """Check every manifest's cache and list what must be baked."""
    work: list[WorkItem] = []
    cached: list[str] = []
    reasons: dict[str, str] = {}
    for prompt in prompt_set.prompts:
        key = prompt_cache_key(prompt, prompt_set.model, fingerprint)
        problem = "forced" if force else cache_problem(prompt_manifest_path(out_dir, prompt.id), key, out_dir)
        if problem is None:
            cached.append(prompt.id)
            continue
        reasons[prompt.id] = problem
        work.append(WorkItem("prompt", prompt.id, prompt_cost(prompt)))
    cached_chapters, gone = [], []
    for section in CHAPTERS:
        if getattr(prompt_set, section, None) is None:
            gone.append(section)
            continue
        key = BAKES[section].chapter_cache_key(prompt_set, fingerprint)
        if not force and is_cached(chapter_path(out_dir, section, prompt_set), key, out_dir):
            cached_chapters.append(section)
        else:
            work.append(WorkItem("chapter", section, chapter_cost(section)))
    return Plan(tuple(work), tuple(cached), tuple(cached_chapters), tuple(gone), reasons)
