"""Experiments stage: visual anagrams and hybrid images, noise estimates combined across two views.

Visual anagrams (Geng et al. 2024): average the estimate for the image under prompt 1 and the estimate for the
image turned 180 degrees under prompt 2, turned back. Hybrid images (factorized diffusion, Geng et al. 2024):
the low frequencies of the estimate under prompt 1 plus the high frequencies of the estimate under prompt 2
(Gaussian low-pass, kernel 33, sigma 2 by default). Both act on what the denoiser sees, so they need a
pixel-space model (``require_pixel_space``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from generator.diffusion.sampling import Estimator, guided_output, initial_noise
from generator.experiments.course.editing import EditRun, fresh_scheduler, require_pixel_space, run_recorded_all
from generator.experiments.course.filters import high_pass, low_pass
from generator.models.base import ModelAdapter, PromptEmbeddings


@dataclass(frozen=True)
class ViewsRun:
    """An anagram or hybrid: its two prompts, the run, and the warning if it ran on a latent model."""

    prompts: tuple[str, str]
    run: EditRun
    warning: str | None


def flip180(x: torch.Tensor) -> torch.Tensor:
    """Turn (…, h, w) images upside down (a 180-degree rotation: both spatial axes reversed)."""
    return torch.flip(x, dims=(-2, -1))


def anagram_estimator(
    adapter: ModelAdapter, upright: PromptEmbeddings, flipped: PromptEmbeddings, guidance: float
) -> Estimator:
    """eps = (eps(x, p1) + flip(eps(flip(x), p2))) / 2 (Geng et al. 2024, Eq. 3 with two views)."""

    def estimate(model_input: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        first = guided_output(adapter, model_input, timestep, upright, guidance)
        second = flip180(guided_output(adapter, flip180(model_input), timestep, flipped, guidance))
        return (first + second) / 2

    return estimate


def hybrid_estimator(
    adapter: ModelAdapter, low: PromptEmbeddings, high: PromptEmbeddings, guidance: float,
    kernel_size: int = 33, sigma: float = 2.0,
) -> Estimator:
    """eps = lowpass(eps(x, p1)) + highpass(eps(x, p2)) (factorized diffusion, hybrid images)."""

    def estimate(model_input: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        first = guided_output(adapter, model_input, timestep, low, guidance)
        second = guided_output(adapter, model_input, timestep, high, guidance)
        return low_pass(first, kernel_size, sigma) + high_pass(second, kernel_size, sigma)

    return estimate


def _run_views(adapter: ModelAdapter, estimator_of, prompts: tuple[str, str], steps: int, guidance: float,
               scheduler: str | None, seeds: Sequence[int], warning: str | None) -> list[ViewsRun]:
    """One run per seed, all in one batch: each row starts from its seed's own noise, drawn as a run of that seed
    alone draws it, so a deterministic sampler (DDIM, the shapes model's default) gives each seed the image a run of
    it alone gives; a sampler that adds noise at every step draws it for the batch from the first seed."""
    count = len(seeds)
    first, second = adapter.encode_prompts([prompts[0]] * count), adapter.encode_prompts([prompts[1]] * count)
    schedule = fresh_scheduler(adapter, scheduler, steps)
    generators = [torch.Generator(adapter.device).manual_seed(seed) for seed in seeds]
    noise = torch.cat([initial_noise(adapter, 1, adapter.default_width, adapter.default_height, generator)
                       for generator in generators])  # (seeds, c, h, w)
    runs = run_recorded_all(adapter, first, schedule, noise * schedule.init_noise_sigma, guidance=guidance,
                            generator=generators[0], estimator=estimator_of(first, second))
    return [ViewsRun(prompts, run, warning) for run in runs]


def visual_anagrams(
    adapter: ModelAdapter, prompts: tuple[str, str], *, seeds: Sequence[int], steps: int = 30, guidance: float = 7.0,
    scheduler: str | None = None, allow_latent: bool = False,
) -> list[ViewsRun]:
    """One image per seed that reads as ``prompts[0]`` upright and as ``prompts[1]`` upside down."""
    warning = require_pixel_space(adapter, "visual anagrams", allow_latent)
    return _run_views(adapter, lambda a, b: anagram_estimator(adapter, a, b, guidance), prompts, steps, guidance,
                      scheduler, seeds, warning)


def hybrid_images(
    adapter: ModelAdapter, prompts: tuple[str, str], *, seeds: Sequence[int], steps: int = 30, guidance: float = 7.0,
    scheduler: str | None = None, kernel_size: int = 33, sigma: float = 2.0, allow_latent: bool = False,
) -> list[ViewsRun]:
    """One image per seed that reads as ``prompts[0]`` from afar (low frequencies) and ``prompts[1]`` up close."""
    warning = require_pixel_space(adapter, "hybrid images", allow_latent)
    return _run_views(adapter, lambda a, b: hybrid_estimator(adapter, a, b, guidance, kernel_size, sigma), prompts,
                      steps, guidance, scheduler, seeds, warning)


def visual_anagram(
    adapter: ModelAdapter, prompts: tuple[str, str], *, steps: int = 30, guidance: float = 7.0,
    scheduler: str | None = None, seed: int = 0, allow_latent: bool = False,
) -> ViewsRun:
    """An image that reads as ``prompts[0]`` upright and as ``prompts[1]`` upside down."""
    return visual_anagrams(adapter, prompts, seeds=(seed,), steps=steps, guidance=guidance, scheduler=scheduler,
                           allow_latent=allow_latent)[0]


def hybrid_image(
    adapter: ModelAdapter, prompts: tuple[str, str], *, steps: int = 30, guidance: float = 7.0,
    scheduler: str | None = None, seed: int = 0, kernel_size: int = 33, sigma: float = 2.0,
    allow_latent: bool = False,
) -> ViewsRun:
    """An image that reads as ``prompts[0]`` from afar (low frequencies) and ``prompts[1]`` up close."""
    return hybrid_images(adapter, prompts, seeds=(seed,), steps=steps, guidance=guidance, scheduler=scheduler,
                         kernel_size=kernel_size, sigma=sigma, allow_latent=allow_latent)[0]
