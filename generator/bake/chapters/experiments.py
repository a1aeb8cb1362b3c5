"""Bake stage: the course-experiments chapter of a prompt set, run once and stored as one manifest.

``experiments/<set id>.json`` under the generated folder holds every experiment of the file's
``experiments:`` section (forward process, denoising baselines, the sample grid of steps and guidance per seed,
SDEdit, inpainting, anagrams and hybrids tried at each of their seeds: generator/bake/chapters/course_views.py)
with its images and scrubbable trajectories in the content-addressed store, and each figure's slide files
(``downloads``: generator/bake/chapters/course_slides.py). A chapter module
(generator/bake/chapters/runner.py): rebaked when its cache key (section + input bytes, model fingerprint, baking
code) or an asset changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from generator.bake.cache import cache_key
from generator.bake.chapters import course_slides
from generator.bake.chapters.context import ChapterContext, chapter_id
from generator.bake.chapters.course_views import bake_views
from generator.bake.encoders import preview_size
from generator.bake.manifest import provenance
from generator.bake.prompt.trajectory import image_entry, sprite_entry
from generator.bake.store import AssetStore
from generator.errors import UserError
from generator.evaluate.verdicts import judged
from generator.models.base import ModelAdapter, to_pil
from generator.progress import progress_counter
from generator.spec.experiments import ExperimentsSpec
from generator.spec.prompt_set import Expectation


def _still(store: AssetStore, image: torch.Tensor, size: tuple[int, int]) -> dict:
    """A result image, upscaled (nearest) to the display size so small pixel-space images stay crisp."""
    (pil,) = to_pil(image[None])
    if pil.width < size[0]:
        from PIL import Image

        pil = pil.resize(size, Image.NEAREST)
    return image_entry(store, pil)


class CourseBaker:
    """What every part of the chapter bake shares: the model, the section, the store, the display size."""

    def __init__(self, adapter: ModelAdapter, spec: ExperimentsSpec, store: AssetStore, preview: int, chapter: str):
        self.adapter, self.spec, self.store, self.chapter_id = adapter, spec, store, chapter
        self.width, self.height = adapter.default_width, adapter.default_height
        self.frame = preview_size(self.width, self.height, preview)
        self.scheduler = spec.scheduler or adapter.default_scheduler

    def image(self, tensor: torch.Tensor) -> dict:
        """A result image (3, H, W) in [0, 1], stored."""
        return _still(self.store, tensor, self.frame)

    def judged_image(self, tensor: torch.Tensor, asked: str, expect: Expectation | None) -> dict:
        """A result image with the judge's verdict against ``asked`` (when the model has a judge)."""
        return judged(self.image(tensor), self.adapter, asked, tensor, expect)

    def trajectory(self, run: Any) -> dict:
        """A run's scrubbable trajectory (sprites of x_t and predicted x0, the result as the last frame)."""
        trajectory = run.trajectory
        return {
            "start_index": run.start_index,
            "steps": len(trajectory.timesteps),
            "timesteps": [float(t) for t in trajectory.timesteps],
            "noisy": sprite_entry(self.store, to_pil(trajectory.noisy), self.frame),
            "predicted": sprite_entry(self.store, to_pil(trajectory.predicted), self.frame),
        }

    def sample_trajectory(self, sample_run: Any) -> dict:
        """A sample's trajectory as a run from index 0."""
        from generator.experiments.course.editing import EditRun

        run = EditRun(0, sample_run.trajectory.timesteps[0], sample_run.trajectory)
        return self.trajectory(run)


def bake_chapter(prompt_set: Any, context: ChapterContext) -> dict:
    """Run every experiment of ``prompt_set.experiments`` and return the chapter manifest (assets stored)."""
    adapter = context.get_adapter()
    threads = torch.get_num_threads()
    if adapter.capabilities.pixel_space and torch.device(adapter.device).type == "cpu":
        # a 32x32 model at batch 2: a second thread only contends (the same sample grid measured 14 s of CPU with
        # one thread, 150 s with two, on 2 cores shared with other jobs), as in the training chapter's bake
        torch.set_num_threads(1)
    try:
        return _bake(prompt_set, context, adapter)
    finally:
        torch.set_num_threads(threads)


def _bake(prompt_set: Any, context: ChapterContext, adapter: ModelAdapter) -> dict:
    """The chapter bake proper (``bake_chapter`` sets the threads)."""
    from generator.experiments.course.baselines import denoising_baselines
    from generator.experiments.course.editing import require_pixel_space
    from generator.experiments.course.forward import forward_process
    from generator.experiments.course.inpaint import inpaint
    from generator.experiments.course.inputs import fit_image, mask_tensor
    from generator.experiments.course.sdedit import sdedit
    from generator.experiments.course.views import hybrid_images, visual_anagrams

    store, progress = context.store, context.progress
    spec: ExperimentsSpec = with_model_defaults(prompt_set.experiments, adapter)
    # refuse before any work: anagrams/hybrids on a latent model need allow_latent
    for entry in spec.anagrams:
        if not entry.allow_latent:
            require_pixel_space(adapter, "visual anagrams")
    for entry in spec.hybrids:
        if not entry.allow_latent:
            require_pixel_space(adapter, "hybrid images")
    b = CourseBaker(adapter, spec, store, prompt_set.defaults.preview_size, chapter_id(prompt_set))
    width, height = b.width, b.height
    images = {name: fit_image(path, width, height) for name, path in spec.inputs.items()}
    total = 1 + bool(spec.forward) + bool(spec.denoise) + bool(spec.samples) + len(spec.sdedit) + len(spec.inpaint) + len(spec.anagrams) + len(spec.hybrids)
    tick = progress_counter(progress, total, "experiments")
    manifest: dict[str, Any] = {
        "schema": 1,
        "kind": "experiments",
        "id": chapter_id(prompt_set),
        "title": spec.title,
        "model": {"id": adapter.id, "weight_hash": adapter.weight_hash, "prediction_type": adapter.prediction_type,
                  "pixel_space": adapter.capabilities.pixel_space},
        "settings": {"scheduler": b.scheduler, "width": width, "height": height},
        "provenance": provenance(section_hash(spec, adapter.id), context.key),
        "inputs": {name: b.image(image) for name, image in images.items()},
    }
    tick("inputs")
    if spec.forward:
        f = spec.forward
        levels = forward_process(adapter, images[f.image], f.timesteps, seed=f.seed)
        manifest["forward"] = {"image": f.image, "levels": [
            {"timestep": level.timestep, "alpha_bar": level.alpha_bar, "image": b.image(level.image)}
            for level in levels], "downloads": course_slides.forward_download(b, images[f.image], levels)}
        tick("forward process")
    if spec.denoise:
        d = spec.denoise
        levels = denoising_baselines(adapter, images[d.image], d.prompt, d.timesteps, blur_sigmas=d.blur_sigmas,
                                     steps=d.run.steps, start_index=d.start_index, guidance=d.run.guidance,
                                     scheduler=b.scheduler, seed=d.run.seed)
        manifest["denoise"] = {"image": d.image, "prompt": d.prompt, "steps": d.run.steps, "guidance": d.run.guidance,
                               "levels": [_baseline_level(b, level) for level in levels],
                               "downloads": course_slides.denoise_download(b, d, levels)}
        tick("denoising baselines")
    if spec.samples:
        manifest["samples"] = _samples(b, spec.samples)
        tick("samples")
    manifest["sdedit"] = []
    for e in spec.sdedit:
        runs = sdedit(adapter, images[e.image], e.prompt, e.start_indices, steps=e.run.steps, guidance=e.run.guidance,
                      scheduler=b.scheduler, seed=e.run.seed)
        shown = runs[len(runs) // 2]
        manifest["sdedit"].append({"id": e.id, "image": e.image, "prompt": e.prompt, "steps": e.run.steps,
                                   "guidance": e.run.guidance, "runs": [
            {"start_index": r.start_index, "timestep": r.start_timestep, "image": b.judged_image(r.image, e.prompt, e.expect),
             "trajectory": b.trajectory(r)}
            for r in runs], "downloads": course_slides.edit_download(
                b, f"sdedit-{e.id}", f"SDEdit of the input \"{e.image}\" with the prompt \"{e.prompt}\"",
                "The input noised to step i of the schedule and denoised from there: small i, much noise, a new image; "
                "large i, little noise, nearly the input.",
                [(images[e.image], "input")] + [(r.image, f"i = {r.start_index}") for r in runs], shown,
                e.run.steps, e.run.guidance, [f"The animation: the run from i = {shown.start_index}."])})
        tick(f"sdedit {e.id}")
    manifest["inpaint"] = []
    for e in spec.inpaint:
        mask = mask_tensor(e.mask, width, height)
        result = inpaint(adapter, images[e.image], mask, e.prompt, steps=e.run.steps, guidance=e.run.guidance,
                         scheduler=b.scheduler, seed=e.run.seed)
        manifest["inpaint"].append({"id": e.id, "image": e.image, "prompt": e.prompt, "steps": e.run.steps,
                                    "guidance": e.run.guidance, "mask": b.image(mask.repeat(3, 1, 1)),
                                    "result": b.judged_image(result.image, e.prompt, e.expect),
                                    "trajectory": b.trajectory(result.run), "downloads": course_slides.edit_download(
                                        b, f"inpaint-{e.id}", f"Inpainting \"{e.image}\" with \"{e.prompt}\"",
                                        "After every step the region outside the mask (black) is overwritten by the "
                                        "original noised to the next timestep, so only the white region is generated.",
                                        [(images[e.image], "input"), (mask.repeat(3, 1, 1), "mask"),
                                         (result.image, "result")], result.run, e.run.steps, e.run.guidance)})
        tick(f"inpaint {e.id}")
    for section, run_views in (("anagrams", visual_anagrams), ("hybrids", hybrid_images)):
        manifest[section] = []
        for e in getattr(spec, section):
            manifest[section].append(bake_views(b, e, section, run_views))
            tick(f"{section} {e.id}")
    return manifest


def _baseline_level(b: CourseBaker, level: Any) -> dict:
    def scored(s: Any, **extra: Any) -> dict:
        return {"image": b.image(s.image), "mse": s.mse, "psnr": s.psnr, **extra}

    best = level.best_blur
    return {
        "timestep": level.timestep,
        "alpha_bar": level.alpha_bar,
        "noisy": b.image(level.noisy),
        "blur": scored(best, sigma=best.sigma),
        "blurs": [{"sigma": s.sigma, "mse": s.mse, "psnr": s.psnr} for s in level.blurs],
        "one_step": scored(level.one_step),
        "iterative": scored(level.iterative, start_index=level.iterative_run.start_index,
                            start_timestep=level.iterative_run.start_timestep),
        "trajectory": b.trajectory(level.iterative_run),
    }


UNCONDITIONAL = Expectation("fail", "guidance 0 is the unconditional branch alone: it never reads the prompt")


def _samples(b: CourseBaker, s: Any) -> dict:
    """The grid of every step count and guidance scale (columns) from each seed's noise (rows).

    A column is one cell of ``by_steps`` or ``by_guidance``: the first seed's image and scrubbable trajectory, the
    other seeds' images under ``others``; every image judged (at guidance 0 the prompt is ignored by design, so
    it may disagree).
    """
    from generator.experiments.course.samples import sample_sweep

    seeds = s.all_seeds()
    sweeps = [sample_sweep(b.adapter, s.prompt, step_counts=s.step_counts, guidance_scales=s.guidance_scales,
                           steps=s.run.steps, guidance=s.run.guidance, seed=seed, scheduler=b.scheduler)
              for seed in seeds]
    columns: dict[str, list] = {"by_steps": [], "by_guidance": []}
    grid = []
    for key, part in (("by_steps", 0), ("by_guidance", 1)):
        for index, first in enumerate(sweeps[0][part]):
            runs = [sweep[part][index] for sweep in sweeps]
            expect = UNCONDITIONAL if first.guidance == 0 else s.expect
            judged = [b.judged_image(run.trajectory.final_image, s.prompt, expect) for run in runs]
            columns[key].append({"steps": first.steps, "guidance": first.guidance, "image": judged[0],
                                 "trajectory": b.sample_trajectory(first),
                                 "others": [{"seed": seed, "image": image}
                                            for seed, image in zip(seeds[1:], judged[1:])]})
            grid.append({"steps": first.steps, "guidance": first.guidance,
                         "images": [run.trajectory.final_image for run in runs],
                         "verdicts": [image["verdict"]["agrees"] if "verdict" in image else None for image in judged]})
    shown = sweeps[0][1][-1] if sweeps[0][1] else sweeps[0][0][-1]
    return {"prompt": s.prompt, "seed": seeds[0], "seeds": list(seeds), "steps": s.run.steps,
            "guidance": s.run.guidance, **columns, "downloads": course_slides.samples_download(b, s, grid, shown)}


def with_model_defaults(spec: ExperimentsSpec, adapter: ModelAdapter) -> ExperimentsSpec:
    """Every experiment's run with the steps and guidance the prompt file left to the model filled in."""

    def resolved(entry: Any) -> Any:
        return entry if entry is None else replace(entry, run=entry.run.with_model_defaults(adapter))

    spec = replace(spec, denoise=resolved(spec.denoise), samples=resolved(spec.samples),
                   sdedit=tuple(map(resolved, spec.sdedit)), inpaint=tuple(map(resolved, spec.inpaint)),
                   anagrams=tuple(map(resolved, spec.anagrams)), hybrids=tuple(map(resolved, spec.hybrids)))
    # start indices the file could not check against steps it left to the model
    starts = [(f"sdedit {e.id}", max(e.start_indices), e.run.steps) for e in spec.sdedit]
    if spec.denoise is not None and spec.denoise.start_index is not None:
        starts.append(("denoise", spec.denoise.start_index, spec.denoise.run.steps))
    for what, start, steps in starts:
        if start >= steps:
            raise UserError(f"experiments {what}: start index {start} is past the last of {adapter.id}'s {steps} default "
                            "steps; set steps: or lower the index")
    return spec


def section_hash(spec: ExperimentsSpec, model: str) -> str:
    """Hash of the section and of the bytes of every input image and mask file (the spec part of the cache key)."""
    digest = hashlib.sha256(json.dumps([model, asdict(spec)], sort_keys=True, default=str).encode())
    files = list(spec.inputs.values()) + [m.mask.file for m in spec.inpaint if m.mask.file]
    for path in sorted(files):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def chapter_cache_key(prompt_set: Any, fingerprint: str) -> str:
    """The section with its input bytes, the model's weights and the baking code."""
    return cache_key(section_hash(prompt_set.experiments, prompt_set.model), prompt_set.defaults.preview_size,
                     fingerprint)


def baked_note(manifest: dict) -> str:
    """Nothing to add to the "baked" message."""
    return ""
