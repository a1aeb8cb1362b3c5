"""Experiments stage: denoising baselines on the same noisy image, scored against the clean one.

For each noise level: a Gaussian blur (the best of several widths), one step of the model (predicted x0 from
a single noise estimate, DDPM Eq. 15), and iterative denoising along a strided schedule from the index whose
timestep is nearest the level (or a fixed ``start_index``). MSE and PSNR are measured in [0, 1] image space.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from generator.diffusion.sampling import guided_output, predicted_x0
from generator.experiments.course.editing import (
    EditRun,
    fresh_scheduler,
    image_latents,
    noise_like,
    noised,
    run_recorded,
)
from generator.experiments.course.filters import blur_size, gaussian_blur, mse, psnr
from generator.experiments.course.forward import forward_samples
from generator.models.base import ModelAdapter
from generator.models.schedulers import alpha_bar_at


@dataclass(frozen=True)
class Scored:
    """A denoised image and how close it is to the clean one."""

    image: torch.Tensor  # (3, H, W) in [0, 1]
    mse: float
    psnr: float


@dataclass(frozen=True)
class BlurScore(Scored):
    sigma: float


@dataclass(frozen=True)
class BaselineLevel:
    """All baselines at one noise level."""

    timestep: int
    alpha_bar: float
    noisy: torch.Tensor  # (3, H, W) decoded x_t
    blurs: tuple[BlurScore, ...]
    one_step: Scored
    iterative: Scored
    iterative_run: EditRun  # its trajectory; start_timestep is where it started

    @property
    def best_blur(self) -> BlurScore:
        """The blur width with the highest PSNR."""
        return max(self.blurs, key=lambda b: b.psnr)


def _scored(image: torch.Tensor, clean: torch.Tensor) -> Scored:
    return Scored(image, mse(image, clean), psnr(image, clean))


def nearest_index(timesteps: torch.Tensor, timestep: float) -> int:
    """Index of the schedule's timestep closest to ``timestep``."""
    return int(torch.argmin((timesteps.float().cpu() - float(timestep)).abs()))


def denoising_baselines(
    adapter: ModelAdapter,
    image: torch.Tensor,
    prompt: str,
    timesteps: tuple[int, ...],
    *,
    blur_sigmas: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0),
    steps: int = 30,
    start_index: int | None = None,
    guidance: float = 1.0,
    scheduler: str | None = None,
    seed: int = 0,
) -> tuple[BaselineLevel, ...]:
    """Gaussian blur vs one step vs iterative denoising of ``image`` (3, H, W in [0, 1]) at each timestep."""
    clean_image = image.float().cpu()
    clean = image_latents(adapter, image)
    embeddings = adapter.encode_prompts([prompt])
    training = adapter.make_scheduler(scheduler)
    generator = torch.Generator(adapter.device).manual_seed(seed)
    levels = []
    for timestep in timesteps:
        alpha_bar = alpha_bar_at(training, timestep)
        x_t = forward_samples(clean[0], alpha_bar, generator).to(adapter.device, adapter.dtype)  # (1, c, h, w)
        with torch.inference_mode():
            noisy = adapter.decode(x_t)[0]
            t = torch.tensor(timestep, device=adapter.device)
            output = guided_output(adapter, x_t, t, embeddings, guidance)
            one_step = adapter.decode(predicted_x0(output.float(), x_t.float(), alpha_bar, adapter.prediction_type).to(adapter.dtype))[0]
        blurs = tuple(
            BlurScore(blurred, mse(blurred, clean_image), psnr(blurred, clean_image), sigma)
            for sigma in blur_sigmas
            for blurred in [gaussian_blur(noisy[None], blur_size(sigma), sigma)[0].clamp(0, 1)]
        )
        strided = fresh_scheduler(adapter, scheduler, steps)
        start = nearest_index(strided.timesteps, timestep) if start_index is None else start_index
        latents = noised(strided, clean, noise_like(clean, generator), strided.timesteps[start])
        run = run_recorded(adapter, embeddings, strided, latents, guidance=guidance, start_index=start, generator=generator)
        levels.append(
            BaselineLevel(int(timestep), alpha_bar, noisy, blurs, _scored(one_step, clean_image),
                          _scored(run.image, clean_image), run)
        )
    return tuple(levels)
