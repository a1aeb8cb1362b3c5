"""Experiments stage: what the course experiments share (noising an image, recording a run, capability checks).

Every experiment is one call of ``generator.diffusion.sampling.sample`` with a twist: SDEdit starts at a later index
from a noised image, inpainting blends the re-noised original back after each step, anagrams and hybrids pass
an ``estimator`` that combines noise estimates of two views. ``run_recorded`` wraps that call and returns the
run as a scrubbable ``Trajectory``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from generator.diffusion.sampling import AfterStep, Estimator, StepRecord, sample
from generator.errors import UserError
from generator.experiments.prompt.trajectory import Trajectory, assemble_trajectories, on_cpu
from generator.models.base import ModelAdapter, PromptEmbeddings

PIXEL_SPACE_MESSAGE = (
    "{experiment} need a pixel-space model, and {model} denoises VAE latents: flips and frequency filters do "
    "not commute with the VAE, so the result would not be {what}. Use a pixel-space model (embedded:shapes, "
    "DeepFloyd IF stage I), or set allow_latent: true to run it anyway"
)
PIXEL_SPACE_WHAT = {"visual anagrams": "an anagram", "hybrid images": "a hybrid image"}


class LatentSpaceWarning(UserWarning):
    """An anagram or hybrid was run on a latent model because the user allowed it."""


def require_pixel_space(adapter: ModelAdapter, experiment: str, allow_latent: bool = False) -> str | None:
    """Refuse ``experiment`` ('visual anagrams', 'hybrid images') on a latent model, in one documented sentence.

    With ``allow_latent`` it runs anyway: a ``LatentSpaceWarning`` is issued and its text returned (the bake
    records it in the manifest, the page shows it).
    """
    if adapter.capabilities.pixel_space:
        return None
    message = PIXEL_SPACE_MESSAGE.format(experiment=experiment, model=adapter.id, what=PIXEL_SPACE_WHAT.get(experiment, "what you asked for"))
    if not allow_latent:
        raise UserError(message)
    warning = f"{experiment} on latent model {adapter.id}: flips/filters act on VAE latents, expect a weaker effect"
    warnings.warn(warning, LatentSpaceWarning, stacklevel=2)
    return warning


def noise_like(latents: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise of the latents' shape drawn from ``generator`` (on its device, like diffusers)."""
    device = generator.device if generator is not None else latents.device
    return torch.randn(latents.shape, generator=generator, device=device, dtype=torch.float32).to(latents.device, latents.dtype)


def noised(scheduler: object, clean: torch.Tensor, noise: torch.Tensor, timestep: torch.Tensor | float) -> torch.Tensor:
    """The clean latents noised to ``timestep`` in the scheduler's own space (``scheduler.add_noise``).

    DDPM Eq. 4 for variance-preserving schedulers (x_t = sqrt(a) x0 + sqrt(1 - a) eps); sigma-based ones
    (Euler, LMS) give x0 + sigma eps, which is what their ``step`` expects.
    """
    t = torch.as_tensor(timestep, device=clean.device).reshape(1)
    return scheduler.add_noise(clean, noise, t)


@dataclass(frozen=True)
class EditRun:
    """One run of the loop: where it started, what it produced, and every step on the way."""

    start_index: int
    start_timestep: float
    trajectory: Trajectory  # trajectory.final_image is the result, (3, H, W) in [0, 1]

    @property
    def image(self) -> torch.Tensor:
        """The result (3, H, W) in [0, 1]."""
        return self.trajectory.final_image


def run_recorded(
    adapter: ModelAdapter,
    embeddings: PromptEmbeddings,
    scheduler: object,
    latents: torch.Tensor,
    *,
    guidance: float,
    start_index: int = 0,
    generator: torch.Generator | None = None,
    estimator: Estimator | None = None,
    after_step: AfterStep | None = None,
) -> EditRun:
    """``sample`` from ``start_index`` with every step recorded; the run of the batch's first row as a Trajectory."""
    return run_recorded_all(adapter, embeddings, scheduler, latents, guidance=guidance, start_index=start_index,
                            generator=generator, estimator=estimator, after_step=after_step, rows=1)[0]


def run_recorded_all(
    adapter: ModelAdapter,
    embeddings: PromptEmbeddings,
    scheduler: object,
    latents: torch.Tensor,
    *,
    guidance: float,
    start_index: int = 0,
    generator: torch.Generator | None = None,
    estimator: Estimator | None = None,
    after_step: AfterStep | None = None,
    rows: int | None = None,
) -> list[EditRun]:
    """``sample`` with every step recorded; one run per row of ``latents`` (the first ``rows`` of them)."""
    records: list[StepRecord] = []
    with torch.inference_mode():
        final = sample(
            adapter, embeddings, scheduler, latents, guidance=guidance, start_index=start_index, generator=generator,
            on_step=lambda step: records.append(on_cpu(step)), estimator=estimator, after_step=after_step,
        )
    trajectories = assemble_trajectories(adapter, records, final[:rows])
    return [EditRun(start_index, float(scheduler.timesteps[start_index]), t) for t in trajectories]


def fresh_scheduler(adapter: ModelAdapter, name: str | None, steps: int) -> object:
    """A new scheduler with ``steps`` strided timesteps (a fresh one per run: schedulers keep a step index)."""
    scheduler = adapter.make_scheduler(name)
    scheduler.set_timesteps(steps, device=adapter.device)
    return scheduler


def image_latents(adapter: ModelAdapter, image: torch.Tensor) -> torch.Tensor:
    """Latents (1, c, h, w) of one image (3, H, W) in [0, 1]."""
    with torch.inference_mode():
        return adapter.encode_image(image[None].to(adapter.device, torch.float32)).to(adapter.dtype)
