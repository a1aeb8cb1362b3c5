"""Bake stage: the ``guidance`` manifest section, what classifier-free guidance did at every step.

From the one sampling run (the loop reports both branches, ``generator.diffusion.sampling.GuidanceParts``): the
unconditional and conditional noise estimates, their difference (what the prompt adds), the guided estimate, and
the predicted clean image of each branch, as sprite sheets of steps + 1 frames (the last repeats the last step,
like the pipeline's noise sheet, so the view follows the trajectory's step group frame for frame).

Fixed normalisations, written into the section so the page states them: noise estimates in false colour, the
first three channels (one channel: grey) mapped from [-NOISE_RANGE, NOISE_RANGE] to black..white, mid-grey = 0;
both differences (of the noise estimates, and of the decoded predicted images in [0, 1]) mapped from
[-DIFFERENCE_RANGE, DIFFERENCE_RANGE]. At guidance 0 or 1 the loop runs one branch: there is nothing to take
apart, and the section says only that. A prompt pair's second trajectory and every guidance x seed variant carry
the same block (``guidance_block``, stored by ``extra_trajectories``), so the page's guidance view can follow the
trajectory the reader is looking at; the variant that is the prompt's own trajectory has none (it is this one).

Cost: a latent model decodes both branches' x0 at every step, 2 x steps VAE decodes per trajectory (as many as
the trajectory's own previews). The panes are a quarter of the trajectory's width, so a latent model's branch
images are decoded at half the preview size (``preview_stride``: every other latent pixel, a quarter of the cost
and of the lossless bytes; measured on embedded:shapes-latent in README.md, "What guidance does at each step");
pixel models decode nothing and keep the preview size. The noise estimates are the latents themselves (no decode).
"""

from __future__ import annotations

import torch

from generator.bake.encoders import preview_size
from generator.bake.prompt.pipeline import NOISE_RANGE, false_colour, noise_estimates
from generator.bake.prompt.sections import AfterSampling
from generator.bake.prompt.trajectory import sprite_entry
from generator.bake.store import AssetStore
from generator.experiments.prompt.trajectory import (
    GuidanceTrace,
    Trajectory,
    TrajectoryRequest,
    decode_in_batches,
    preview_stride,
)
from generator.models.base import ModelAdapter, to_pil
from generator.spec.prompt_set import PromptSpec

DIFFERENCE_RANGE = 0.5  # differences are small: 4x the contrast of the noise estimates
MIN_DECODED_PREVIEW = 32  # pixels: the smallest preview a latent model's branch images are decoded at


def with_final_frame(frames: torch.Tensor) -> torch.Tensor:
    """(steps, ...) -> (steps + 1, ...): frame ``steps`` (the final image's) keeps the last step's."""
    return torch.cat([frames, frames[-1:]])


def rms(frames: torch.Tensor) -> list[float]:
    """Root mean square of each frame, rounded (a size the page can print next to each image)."""
    return [round(float(v), 4) for v in frames.double().pow(2).flatten(1).mean(1).sqrt()]


def guidance_block(adapter: ModelAdapter, prompt: PromptSpec, request: TrajectoryRequest, trajectory: Trajectory,
                   store: AssetStore, scale: float) -> dict:
    """What guidance ``scale`` did in one trajectory sampled with it (the prompt's own, its pair's or a variant's,
    each from its one run): sprites of every branch's noise estimate and predicted x0, or ``decomposed: false``
    (scale 0 or 1: one branch). ``request`` gives the size (the variants share it)."""
    block = {"scale": scale, "conditioning": adapter.capabilities.conditioning,
             "decomposed": trajectory.guidance is not None}
    if trajectory.guidance is None:
        return block
    preview = prompt.settings.preview_size
    noise_size = preview_size(request.width, request.height, preview)
    image_preview = preview if adapter.capabilities.pixel_space else max(MIN_DECODED_PREVIEW, preview // 2)
    image_size = preview_size(request.width, request.height, image_preview)
    stride = preview_stride(adapter, request, image_preview)
    block.update(GuidanceSection.sheets(adapter, trajectory, trajectory.guidance, stride, noise_size, image_size, store))
    return block


class GuidanceSection(AfterSampling):
    """Both guidance branches at every step of the prompt's own trajectory (a pair's and the variants' are baked
    with their trajectories, ``generator.bake.prompt.extra_trajectories``, by ``guidance_block`` too)."""

    name = "guidance"

    def applies(self, adapter: ModelAdapter, prompt: PromptSpec) -> bool:
        """Every conditioned prompt page: with a decomposition, or the note that there is none."""
        return adapter.capabilities.conditioning in ("text", "class")

    def bake(self, adapter: ModelAdapter, prompt: PromptSpec, request: TrajectoryRequest, trajectory: Trajectory,
             store: AssetStore) -> dict:
        """The prompt's own ``guidance_block``."""
        return {"guidance": guidance_block(adapter, prompt, request, trajectory, store, request.guidance)}

    @staticmethod
    def sheets(adapter: ModelAdapter, trajectory: Trajectory, trace: GuidanceTrace, stride: int,
               noise_size: tuple[int, int], image_size: tuple[int, int], store: AssetStore) -> dict:
        """The section's sprites (noise estimates at ``noise_size``, decoded images at ``image_size``, latents
        decoded every ``stride`` pixels) and per-step sizes."""
        steps = len(trajectory.timesteps)
        difference = trace.cond_noise - trace.uncond_noise  # (steps, c, h, w) what the prompt adds to epsilon
        guided = noise_estimates(trajectory)  # (steps, c, h, w) = uncond + scale * difference (Ho & Salimans, Eq. 6)
        with torch.inference_mode():
            decoded = decode_in_batches(adapter, torch.cat([trace.uncond_x0, trace.cond_x0])[..., ::stride, ::stride])
        uncond_image, cond_image = decoded[:steps], decoded[steps:]  # (steps, 3, h, w) in [0, 1], as the previews

        def sheet(images: torch.Tensor, frame_size: tuple[int, int] = noise_size) -> dict:
            return sprite_entry(store, to_pil(with_final_frame(images)), frame_size)

        return {
            "noise_range": NOISE_RANGE,
            "difference_range": DIFFERENCE_RANGE,
            "uncond_noise": sheet(false_colour(trace.uncond_noise, NOISE_RANGE)),
            "cond_noise": sheet(false_colour(trace.cond_noise, NOISE_RANGE)),
            "noise_difference": sheet(false_colour(difference, DIFFERENCE_RANGE)),
            "guided_noise": sheet(false_colour(guided, NOISE_RANGE)),
            "uncond_x0": sheet(uncond_image, image_size),
            "cond_x0": sheet(cond_image, image_size),
            "x0_difference": sheet(false_colour(cond_image - uncond_image, DIFFERENCE_RANGE), image_size),
            "rms": {"uncond": rms(trace.uncond_noise), "cond": rms(trace.cond_noise), "difference": rms(difference),
                    "guided": rms(guided)},
        }
