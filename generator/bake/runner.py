"""Bake stage: run every experiment of a prompt set once and store assets plus one manifest per prompt.

A prompt whose cache key (spec, model fingerprint, generator version) matches its manifest, with the manifest
and every asset intact (their content hashes), is skipped. Per-prompt manifests are merged into ``index.json``
(so bakes can be sharded). ``preflight`` runs every check that needs the files the prompt file names or the
model but not its weights in memory (images, folders, sizes, token limits, scheduler names: generator/bake/preflight.py;
the weights' format and headers, device) and that the output folder can be written, so a mistake is one line
before any work starts.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from generator.bake.cache import cache_key, cache_problem
from generator.bake.chapters.runner import bake_chapters
from generator.bake.manifest import build_manifest, merge_index, versions
from generator.bake.preflight import Preflight, preflight
from generator.bake.store import AssetStore, write_json
from generator.evaluate.verdicts import judged
from generator.progress import ProgressCallback, no_progress, progress_counter
from generator.spec.prompt_set import PromptSet, PromptSpec


@dataclass(frozen=True)
class BakeOutcome:
    """What happened to one prompt."""

    prompt_id: str
    status: Literal["baked", "cached"]
    manifest: Path


def prompt_cache_key(prompt: PromptSpec, model: str, fingerprint: str) -> str:
    """Everything that decides a prompt's assets: its spec, the model's weights and the baking code."""
    return cache_key(prompt.spec_hash(model), fingerprint)


def bake(
    prompt_set: PromptSet,
    out_dir: Path,
    *,
    device: str = "auto",
    dtype: str = "auto",
    force: bool = False,
    progress: ProgressCallback = no_progress,
    on_event: Callable[[str], None] = lambda message: None,
    adapter: object | None = None,
    allow_pickle: bool = False,
    checked: Preflight | None = None,
) -> list[BakeOutcome]:
    """Bake every prompt of the set into ``out_dir`` (validated against the model before it loads).

    ``adapter`` reuses an already loaded model (its id must be the set's model); ``checked`` is the result of
    ``preflight`` when the caller ran it already; ``allow_pickle`` lets a model folder load pickled weights.
    """
    checked = checked or preflight(prompt_set, device=device, dtype=dtype, allow_pickle=allow_pickle)
    limits = checked.limits
    store = AssetStore(out_dir)
    store.check_writable()
    removed = store.clean_temporaries()
    if removed:
        on_event(f"removed {removed} temporary file(s) left by an interrupted bake")

    def get_adapter() -> object:  # loaded on first use: a fully cached bake never loads it
        nonlocal adapter
        if adapter is None:
            from generator.models.registry import load_model

            on_event(f"loading {prompt_set.model} ({checked.weights_format} weights)")
            adapter = load_model(prompt_set.model, device=device, dtype=dtype, allow_pickle=allow_pickle)
        return adapter

    outcomes = []
    for prompt in prompt_set.prompts:
        manifest_path = out_dir / "prompts" / f"{prompt.id}.json"
        key = prompt_cache_key(prompt, prompt_set.model, limits.fingerprint)
        problem = None if force else cache_problem(manifest_path, key, out_dir)
        if not force and problem is None:
            on_event(f"{prompt.id}: unchanged, cached (use --force to redo)")
            outcomes.append(BakeOutcome(prompt.id, "cached", manifest_path))
            continue
        if problem is not None and problem.startswith("damaged"):
            on_event(f"{prompt.id}: {problem}; baking it again")
        manifest = bake_prompt(get_adapter(), prompt, store, key, progress)
        write_json(manifest_path, manifest)
        on_event(f"{prompt.id}: baked")
        outcomes.append(BakeOutcome(prompt.id, "baked", manifest_path))
    bake_chapters(prompt_set, out_dir, store, limits.fingerprint, get_adapter, force=force, progress=progress,
                  on_event=on_event)
    write_json(out_dir / "index.json", merge_index(out_dir, prompt_set))
    return outcomes


def bake_prompt(adapter: object, prompt: PromptSpec, store: AssetStore, key: str, progress: ProgressCallback) -> dict:
    """Run the experiments of one prompt and return its manifest (assets already stored)."""
    from generator.bake.prompt.registry import load_sections
    from generator.bake.prompt.trajectory import bake_trajectory
    from generator.experiments.prompt.trajectory import TrajectoryRequest, run_trajectories

    prompt = prompt.with_model_defaults(adapter)
    settings = prompt.settings
    width, height = settings.width or adapter.default_width, settings.height or adapter.default_height
    adapter.check_size(width, height)
    request = TrajectoryRequest(
        prompts=(prompt.text,),
        steps=settings.steps,
        guidance=settings.guidance,
        seed=settings.seed,
        width=width,
        height=height,
        scheduler=settings.scheduler,
    )
    step_done = progress_counter(progress, request.steps, prompt.id)
    extra_sections = [s for s in load_sections() if s.applies(adapter, prompt)]
    with ExitStack() as stack:
        finishers = [stack.enter_context(section.capture(adapter, prompt, request)) for section in extra_sections]
        (trajectory,) = run_trajectories(adapter, request, on_step=lambda step: step_done(), preview=settings.preview_size)
    sections = bake_trajectory(trajectory, store, settings.preview_size)
    for finish in finishers:
        sections.update(finish(trajectory, store))
    sections["final"] = judged(sections["final"], adapter, prompt.text, trajectory.final_image, prompt.expect)
    return build_manifest(adapter, prompt, request, key, sections, versions())
