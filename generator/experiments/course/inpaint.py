"""Experiments stage: inpainting by re-noising (RePaint-style, Lugmayr et al. 2022, without resampling).

Start from pure noise; after every step, overwrite the region to keep with the original noised to the next
timestep (and with the original itself after the last step), so only the masked region is generated and it
has to fit what surrounds it. In pixel space the kept region ends equal to the original exactly. Latent models
blend in latent space (the mask max-pooled to latent size) and paste the original's pixels back outside the
mask after decoding, since the VAE does not reproduce them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from generator.diffusion.sampling import initial_noise
from generator.experiments.course.editing import (
    EditRun,
    fresh_scheduler,
    image_latents,
    noise_like,
    noised,
    run_recorded,
)
from generator.models.base import ModelAdapter


@dataclass(frozen=True)
class InpaintRun:
    """An inpainting result and its trajectory."""

    run: EditRun
    image: torch.Tensor  # (3, H, W) the result in [0, 1], kept region equal to the original
    mask: torch.Tensor  # (1, H, W) 1 = generated, 0 = kept


def latent_mask(mask: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
    """A (1, H, W) pixel mask at latent size: a latent pixel is generated if any pixel it covers is."""
    if tuple(mask.shape[-2:]) == tuple(latent_size):
        return mask[None].float()
    return F.adaptive_max_pool2d(mask[None].float(), latent_size)


def inpaint(
    adapter: ModelAdapter,
    image: torch.Tensor,
    mask: torch.Tensor,
    prompt: str,
    *,
    steps: int = 30,
    guidance: float = 7.0,
    scheduler: str | None = None,
    seed: int = 0,
) -> InpaintRun:
    """Fill the region where ``mask`` (1, H, W) is 1 of ``image`` (3, H, W in [0, 1]), keep the rest."""
    clean = image_latents(adapter, image)
    keep_region = 1 - latent_mask(mask, clean.shape[-2:]).to(clean.device, clean.dtype)  # (1, 1, h, w)
    embeddings = adapter.encode_prompts([prompt])
    schedule = fresh_scheduler(adapter, scheduler, steps)
    generator = torch.Generator(adapter.device).manual_seed(seed)
    height, width = image.shape[-2:]
    start = initial_noise(adapter, 1, width, height, generator) * schedule.init_noise_sigma
    timesteps = schedule.timesteps

    def keep_original(index: int, timestep: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        # after step `index` the latents sit at the next timestep (or are clean after the last step)
        known = clean if index + 1 >= len(timesteps) else noised(schedule, clean, noise_like(clean, generator), timesteps[index + 1])
        return keep_region * known + (1 - keep_region) * latents

    run = run_recorded(adapter, embeddings, schedule, start, guidance=guidance, generator=generator,
                       after_step=keep_original)
    result = run.image
    if not adapter.capabilities.pixel_space:
        pixel_mask = mask.float().cpu()
        result = pixel_mask * result + (1 - pixel_mask) * image.float().cpu()
        run = replace(run, trajectory=replace(run.trajectory, final_image=result))
    return InpaintRun(run, result, mask.float().cpu())
