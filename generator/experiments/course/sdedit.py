"""Experiments stage: SDEdit (Meng et al. 2022), noise an image to a strided timestep and denoise from there.

A small start index means a lot of noise (a new image loosely shaped like the input); a large one means
little noise (nearly the input). With a neutral prompt ("a high quality photo") this is plain SDEdit, with a
descriptive one it is text-conditioned image-to-image; a hand drawing as input projects it onto the model's
image manifold. The same noise is used at every start index, so the runs differ only in how much of it.
"""

from __future__ import annotations

import torch

from generator.experiments.course.editing import (
    EditRun,
    fresh_scheduler,
    image_latents,
    noise_like,
    noised,
    run_recorded,
)
from generator.models.base import ModelAdapter


def sdedit(
    adapter: ModelAdapter,
    image: torch.Tensor,
    prompt: str,
    start_indices: tuple[int, ...],
    *,
    steps: int = 30,
    guidance: float = 7.0,
    scheduler: str | None = None,
    seed: int = 0,
) -> tuple[EditRun, ...]:
    """One run per start index of ``image`` (3, H, W in [0, 1]) noised to ``timesteps[start]`` and denoised."""
    clean = image_latents(adapter, image)
    embeddings = adapter.encode_prompts([prompt])
    generator = torch.Generator(adapter.device).manual_seed(seed)
    noise = noise_like(clean, generator)
    runs = []
    for start in start_indices:
        schedule = fresh_scheduler(adapter, scheduler, steps)
        if not 0 <= start < len(schedule.timesteps):
            raise ValueError(f"start index {start} is outside the {len(schedule.timesteps)}-step schedule")
        latents = noised(schedule, clean, noise, schedule.timesteps[start])
        runs.append(run_recorded(adapter, embeddings, schedule, latents, guidance=guidance, start_index=start,
                                 generator=generator))
    return tuple(runs)
