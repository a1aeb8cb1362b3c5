"""Experiments stage: the forward process, a clean image noised to chosen timesteps (DDPM Eq. 4)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from generator.experiments.course.editing import image_latents
from generator.models.base import ModelAdapter
from generator.models.schedulers import alpha_bar_at


@dataclass(frozen=True)
class NoisedImage:
    """The image at one timestep of the forward process."""

    timestep: int
    alpha_bar: float
    image: torch.Tensor  # (3, H, W) in [0, 1], decoded x_t (clamped for display)
    latents: torch.Tensor  # (c, h, w) x_t itself, unclamped


def forward_samples(clean: torch.Tensor, alpha_bar: float, generator: torch.Generator, count: int = 1) -> torch.Tensor:
    """``count`` draws of x_t ~ q(x_t | x_0) = N(sqrt(a) x0, (1 - a) I) (DDPM Eq. 4), shape (count, *clean.shape)."""
    noise = torch.randn((count, *clean.shape), generator=generator, device=generator.device, dtype=torch.float32)
    return alpha_bar**0.5 * clean.float().to(noise.device) + (1 - alpha_bar) ** 0.5 * noise


def forward_process(
    adapter: ModelAdapter, image: torch.Tensor, timesteps: tuple[int, ...], *, seed: int = 0
) -> tuple[NoisedImage, ...]:
    """The image (3, H, W) in [0, 1] noised to each timestep of the model's training schedule.

    Latent models noise the VAE latents (that is what their denoiser sees) and decode them for display.
    """
    schedule = adapter.make_scheduler()
    clean = image_latents(adapter, image)[0]
    generator = torch.Generator(adapter.device).manual_seed(seed)
    levels = []
    for timestep in timesteps:
        alpha_bar = alpha_bar_at(schedule, timestep)
        x_t = forward_samples(clean, alpha_bar, generator)[0].to(adapter.device, adapter.dtype)
        with torch.inference_mode():
            decoded = adapter.decode(x_t[None])[0]
        levels.append(NoisedImage(int(timestep), alpha_bar, decoded, x_t.float().cpu()))
    return tuple(levels)
