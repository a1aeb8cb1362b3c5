"""Bake stage: the ``pipeline`` manifest section, live data for the pipeline overview of a prompt page.

The overview shows, at the current step, what flows between the blocks: tokens and embeddings (the
``tokens`` section), x_t and predicted x0 (the trajectory), and what this section adds: the guided noise
estimate eps at every step, and for latent models the latent x_t the denoiser really works on. Both are
shown as false colour: the first three channels (one channel: grey) mapped from [-2, 2] to [0, 1]. It also
names the blocks (``components``: conditioning, denoiser and decoder classes) for the captions.
"""

from __future__ import annotations

import torch

from generator.bake.encoders import preview_size
from generator.bake.prompt.sections import AfterSampling
from generator.bake.prompt.trajectory import sprite_entry
from generator.bake.store import AssetStore
from generator.diffusion.sampling import noise_from_x0
from generator.experiments.prompt.trajectory import Trajectory, TrajectoryRequest
from generator.models.base import ModelAdapter, to_pil
from generator.spec.prompt_set import PromptSpec


NOISE_RANGE = 2.0  # noise is unit-variance: +-2 standard deviations fill the grey scale


def false_colour(tensors: torch.Tensor, value_range: float = NOISE_RANGE) -> torch.Tensor:
    """(n, c, h, w) signed values to (n, 3, h, w) images in [0, 1]: first three channels, [-r, r] -> [0, 1]."""
    channels = tensors.shape[1]
    rgb = tensors[:, :3] if channels >= 3 else tensors[:, :1].repeat(1, 3, 1, 1)
    return (0.5 + rgb.float() / (2 * value_range)).clamp(0, 1)


def noise_estimates(trajectory: Trajectory) -> torch.Tensor:
    """(steps, c, h, w) the guided eps the model predicted at every step (x_t and x0 give it back exactly)."""
    steps = len(trajectory.timesteps)
    return torch.stack([
        noise_from_x0(trajectory.predicted_latents[i], trajectory.noisy_latents[i], trajectory.alpha_bars[i])
        for i in range(steps)
    ])


def components(adapter: ModelAdapter) -> dict:
    """What the blocks are, for the captions: conditioning, the denoiser's class, the decoder's (None: pixels)."""
    vae = getattr(getattr(adapter, "pipeline", None), "vae", None)
    return {
        "conditioning": adapter.capabilities.conditioning,
        "denoiser": type(adapter.denoiser).__name__,
        "decoder": type(vae).__name__ if vae is not None and not adapter.capabilities.pixel_space else None,
    }


class PipelineSection(AfterSampling):
    """Noise estimates (and latents) per step for the pipeline overview."""

    name = "pipeline"

    def applies(self, adapter: ModelAdapter, prompt: PromptSpec) -> bool:
        """Every prompt page has the overview."""
        return True

    def bake(
        self, adapter: ModelAdapter, prompt: PromptSpec, request: TrajectoryRequest, trajectory: Trajectory, store: AssetStore
    ) -> dict:
        """Sprites of eps (frames 0..steps-1; the last frame repeats the last step's) and of latent x_t."""
        frame_size = preview_size(request.width, request.height, prompt.settings.preview_size)
        eps = noise_estimates(trajectory)
        eps = torch.cat([eps, eps[-1:]])  # frame `steps` (final image) keeps the last estimate
        section = {
            "noise": sprite_entry(store, to_pil(false_colour(eps)), frame_size),
            "latent_shape": list(trajectory.noisy_latents.shape[1:]),
            "space": "pixel" if adapter.capabilities.pixel_space else "latent",
            **components(adapter),
        }
        if not adapter.capabilities.pixel_space:
            section["latents"] = sprite_entry(store, to_pil(false_colour(trajectory.noisy_latents)), frame_size)
        return {"pipeline": section}
