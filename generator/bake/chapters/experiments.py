"""Bake stage: the course-experiments chapter of a prompt set, run once and stored as one manifest.

``experiments/<set id>.json`` under the generated folder holds every experiment of the file's
``experiments:`` section (forward process, denoising baselines, sweeps, SDEdit, inpainting, anagrams,
hybrids) with its images and scrubbable trajectories in the content-addressed store. A chapter module
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
from generator.bake.chapters.context import ChapterContext, chapter_id
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


class _Baker:
    def __init__(self, adapter: ModelAdapter, spec: ExperimentsSpec, store: AssetStore, preview: int):
        self.adapter, self.spec, self.store = adapter, spec, store
        self.width, self.height = adapter.default_width, adapter.default_height
        self.frame = preview_size(self.width, self.height, preview)
        self.scheduler = spec.scheduler or adapter.default_scheduler

    def image(self, tensor: torch.Tensor) -> dict:
        return _still(self.store, tensor, self.frame)

    def judged_image(self, tensor: torch.Tensor, asked: str, expect: Expectation | None) -> dict:
        """A result image with the judge's verdict against ``asked`` (when the model has a judge)."""
        return judged(self.image(tensor), self.adapter, asked, tensor, expect)

    def views(self, image: torch.Tensor, entry: Any, section: str) -> list[dict]:
        """Each view of an anagram or hybrid, judged against its own prompt.

        Anagram: the image upright (prompt 1) and turned 180 degrees (prompt 2). Hybrid: seen from afar, i.e.
        its low frequencies (the same Gaussian low-pass the sampler used; prompt 1), and up close (prompt 2).
        """
        from generator.experiments.course.filters import low_pass
        from generator.experiments.course.views import flip180

        if section == "anagrams":
            shown = [("upright", image), ("turned 180°", flip180(image))]
        else:
            far = low_pass(image[None], entry.kernel_size, entry.sigma)[0]  # (3, H, W) in [0, 1]: a blur stays in range
            shown = [("from afar", far), ("up close", image)]
        return [{"view": name, "prompt": prompt, "image": self.judged_image(view, prompt, entry.expect)}
                for (name, view), prompt in zip(shown, entry.prompts)]

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
        from generator.experiments.course.editing import EditRun

        run = EditRun(0, sample_run.trajectory.timesteps[0], sample_run.trajectory)
        return self.trajectory(run)


def bake_chapter(prompt_set: Any, context: ChapterContext) -> dict:
    """Run every experiment of ``prompt_set.experiments`` and return the chapter manifest (assets stored)."""
    from generator.experiments.course.baselines import denoising_baselines
    from generator.experiments.course.editing import require_pixel_space
    from generator.experiments.course.forward import forward_process
    from generator.experiments.course.inpaint import inpaint
    from generator.experiments.course.inputs import fit_image, mask_tensor
    from generator.experiments.course.samples import sample_sweep
    from generator.experiments.course.sdedit import sdedit
    from generator.experiments.course.views import hybrid_image, visual_anagram

    adapter, store, progress = context.get_adapter(), context.store, context.progress
    spec: ExperimentsSpec = with_model_defaults(prompt_set.experiments, adapter)
    # refuse before any work: anagrams/hybrids on a latent model need allow_latent
    for entry in spec.anagrams:
        if not entry.allow_latent:
            require_pixel_space(adapter, "visual anagrams")
    for entry in spec.hybrids:
        if not entry.allow_latent:
            require_pixel_space(adapter, "hybrid images")
    b = _Baker(adapter, spec, store, prompt_set.defaults.preview_size)
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
            {"timestep": level.timestep, "alpha_bar": level.alpha_bar, "image": b.image(level.image)} for level in levels]}
        tick("forward process")
    if spec.denoise:
        d = spec.denoise
        levels = denoising_baselines(adapter, images[d.image], d.prompt, d.timesteps, blur_sigmas=d.blur_sigmas,
                                     steps=d.run.steps, start_index=d.start_index, guidance=d.run.guidance,
                                     scheduler=b.scheduler, seed=d.run.seed)
        manifest["denoise"] = {"image": d.image, "prompt": d.prompt, "steps": d.run.steps, "guidance": d.run.guidance,
                               "levels": [_baseline_level(b, level) for level in levels]}
        tick("denoising baselines")
    if spec.samples:
        s = spec.samples
        by_steps, by_guidance = sample_sweep(adapter, s.prompt, step_counts=s.step_counts, guidance_scales=s.guidance_scales,
                                             steps=s.run.steps, guidance=s.run.guidance, seed=s.run.seed, scheduler=b.scheduler)
        manifest["samples"] = {"prompt": s.prompt, "seed": s.run.seed, "steps": s.run.steps, "guidance": s.run.guidance,
                               "by_steps": [_sample(b, r, s) for r in by_steps],
                               "by_guidance": [_sample(b, r, s) for r in by_guidance]}
        tick("samples")
    manifest["sdedit"] = []
    for e in spec.sdedit:
        runs = sdedit(adapter, images[e.image], e.prompt, e.start_indices, steps=e.run.steps, guidance=e.run.guidance,
                      scheduler=b.scheduler, seed=e.run.seed)
        manifest["sdedit"].append({"id": e.id, "image": e.image, "prompt": e.prompt, "steps": e.run.steps,
                                   "guidance": e.run.guidance, "runs": [
            {"start_index": r.start_index, "timestep": r.start_timestep, "image": b.judged_image(r.image, e.prompt, e.expect),
             "trajectory": b.trajectory(r)}
            for r in runs]})
        tick(f"sdedit {e.id}")
    manifest["inpaint"] = []
    for e in spec.inpaint:
        mask = mask_tensor(e.mask, width, height)
        result = inpaint(adapter, images[e.image], mask, e.prompt, steps=e.run.steps, guidance=e.run.guidance,
                         scheduler=b.scheduler, seed=e.run.seed)
        manifest["inpaint"].append({"id": e.id, "image": e.image, "prompt": e.prompt, "steps": e.run.steps,
                                    "guidance": e.run.guidance, "mask": b.image(mask.repeat(3, 1, 1)),
                                    "result": b.judged_image(result.image, e.prompt, e.expect),
                                    "trajectory": b.trajectory(result.run)})
        tick(f"inpaint {e.id}")
    for section, run_views in (("anagrams", visual_anagram), ("hybrids", hybrid_image)):
        manifest[section] = []
        for e in getattr(spec, section):
            extra = {"kernel_size": e.kernel_size, "sigma": e.sigma} if section == "hybrids" else {}
            result = run_views(adapter, e.prompts, steps=e.run.steps, guidance=e.run.guidance, scheduler=b.scheduler,
                               seed=e.run.seed, allow_latent=e.allow_latent, **extra)
            manifest[section].append({"id": e.id, "prompts": list(e.prompts), "steps": e.run.steps, "guidance": e.run.guidance,
                                      "warning": result.warning, "result": b.image(result.run.image),
                                      "views": b.views(result.run.image, e, section),
                                      "trajectory": b.trajectory(result.run), **extra})
            tick(f"{section} {e.id}")
    return manifest


def _baseline_level(b: _Baker, level: Any) -> dict:
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


def _sample(b: _Baker, run: Any, samples: Any) -> dict:
    """One cell of the steps/guidance grid; at guidance 0 the prompt is ignored by design, so it may disagree."""
    expect = UNCONDITIONAL if run.guidance == 0 else samples.expect
    image = b.judged_image(run.trajectory.final_image, samples.prompt, expect)
    return {"steps": run.steps, "guidance": run.guidance, "image": image, "trajectory": b.sample_trajectory(run)}


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
