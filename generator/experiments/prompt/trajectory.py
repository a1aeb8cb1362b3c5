"""Experiments stage: the standard trajectory, x_t and predicted x0 at every step, decoded in batches.

With classifier-free guidance on, the trajectory also keeps what the loop reported of both branches at every
step (``GuidanceTrace``): their noise estimates and predicted x0, undecoded, for the guidance view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from generator.diffusion.sampling import StepRecord, initial_noise, noise_from_x0, predicted_x0, sample
from generator.models.base import ModelAdapter, PromptEmbeddings

DECODE_BATCH = 8


@dataclass(frozen=True)
class TrajectoryRequest:
    """What to sample: one prompt (or several, batched), with fully resolved settings."""

    prompts: tuple[str, ...]
    steps: int
    guidance: float
    seed: int
    width: int
    height: int
    scheduler: str


@dataclass(frozen=True)
class GuidanceTrace:
    """Both CFG branches at every step, in the variance-preserving parametrisation of the records (float32, CPU).

    The guided estimates are the trajectory's own: eps = eps_u + scale (eps_c - eps_u), and likewise x0 (both
    are affine in the model output with weights summing to 1, whatever the prediction type).
    """

    scale: float
    uncond_noise: torch.Tensor  # (steps, c, h, w) epsilon of the unconditional branch
    cond_noise: torch.Tensor  # (steps, c, h, w)
    uncond_x0: torch.Tensor  # (steps, c, h, w) predicted x0 of the unconditional branch, undecoded
    cond_x0: torch.Tensor  # (steps, c, h, w)


@dataclass(frozen=True)
class Trajectory:
    """One image's denoising. Frame i < steps is the state entering step i; frame ``steps`` is the result."""

    timesteps: tuple[float, ...]
    alpha_bars: tuple[float, ...]
    noisy: torch.Tensor  # (steps + 1, 3, h, w) decoded x_t in [0, 1] (h, w: preview decode size)
    predicted: torch.Tensor  # (steps + 1, 3, h, w) decoded predicted x0 in [0, 1]
    final_image: torch.Tensor  # (3, H, W) the finished image at full size
    predicted_latents: torch.Tensor  # (steps + 1, c, h, w) predicted x0 before decoding (for projections)
    noisy_latents: torch.Tensor  # (steps + 1, c, h, w)
    guidance: GuidanceTrace | None = None  # both branches per step; None without a decomposition (scale 0 or 1)


def preview_stride(adapter: ModelAdapter, request: TrajectoryRequest, preview: int | None) -> int:
    """How many latent pixels to skip when decoding preview frames of a latent model.

    Frames are shown at ``preview`` pixels, so decoding the full-size image for each of 2 x (steps + 1) frames
    would cost far more than the sampling itself; decoding every s-th latent pixel (nearest, which keeps the
    noise statistics of x_t, unlike averaging) costs 1/s^2 and still yields images of at least ``preview``.
    """
    if preview is None or adapter.capabilities.pixel_space:
        return 1
    _, latent_height, latent_width = adapter.latent_shape(request.width, request.height)
    stride = 1
    while max(request.width, request.height) // (stride * 2) >= preview and min(latent_height, latent_width) // (stride * 2) >= 8:
        stride *= 2
    return stride


def decode_in_batches(adapter: ModelAdapter, latents: torch.Tensor, batch: int = DECODE_BATCH) -> torch.Tensor:
    """Decode many latents a few at a time (bounded memory), to (n, 3, H, W) floats on the CPU."""
    return torch.cat([adapter.decode(latents[i : i + batch].to(adapter.device, adapter.dtype)) for i in range(0, len(latents), batch)])


def run_trajectories(
    adapter: ModelAdapter,
    request: TrajectoryRequest,
    *,
    embeddings: PromptEmbeddings | None = None,
    noise: torch.Tensor | None = None,
    on_step: Callable[[StepRecord], None] | None = None,
    preview: int | None = None,
) -> list[Trajectory]:
    """Sample every prompt of the request together from the seed's noise, recording all steps.

    With ``preview`` (pixels), intermediate frames of latent models are decoded at reduced size
    (``preview_stride``); the final image is always decoded at full size.
    """
    stride = preview_stride(adapter, request, preview)
    scheduler = adapter.make_scheduler(request.scheduler)
    scheduler.set_timesteps(request.steps, device=adapter.device)
    generator = torch.Generator(adapter.device).manual_seed(request.seed)
    if noise is None:
        noise = initial_noise(adapter, len(request.prompts), request.width, request.height, generator)
    records: list[StepRecord] = []

    def record(step: StepRecord) -> None:
        records.append(on_cpu(step))
        if on_step is not None:
            on_step(step)

    with torch.inference_mode():
        embeddings = embeddings or adapter.encode_prompts(request.prompts)
        final = sample(adapter, embeddings, scheduler, noise * scheduler.init_noise_sigma,
                       guidance=request.guidance, generator=generator, on_step=record).float().cpu()
        return assemble_trajectories(adapter, records, final, stride)


def on_cpu(step: StepRecord) -> StepRecord:
    """A copy of a step record with its tensors on the CPU (what trajectories keep)."""
    parts = step.guidance.to("cpu") if step.guidance is not None else None
    return StepRecord(step.index, step.timestep, step.x_t.cpu(), step.predicted_x0.cpu(), step.noise_estimate.cpu(),
                      step.alpha_bar, parts)


def guidance_trace(records: list[StepRecord], image_index: int, prediction_type: str) -> GuidanceTrace | None:
    """One image's branches at every step (None unless every record carries them)."""
    if not records or any(r.guidance is None for r in records):
        return None
    branches: dict[str, list[torch.Tensor]] = {"uncond_noise": [], "cond_noise": [], "uncond_x0": [], "cond_x0": []}
    for r in records:
        x_t = r.x_t[image_index]  # (c, h, w)
        for name, output in (("uncond", r.guidance.uncond[image_index]), ("cond", r.guidance.cond[image_index])):
            x0 = predicted_x0(output.float(), x_t, r.alpha_bar, prediction_type)
            branches[f"{name}_x0"].append(x0)
            branches[f"{name}_noise"].append(noise_from_x0(x0, x_t, r.alpha_bar))
    return GuidanceTrace(records[0].guidance.scale, **{k: torch.stack(v) for k, v in branches.items()})


def assemble_trajectories(
    adapter: ModelAdapter, records: list[StepRecord], final: torch.Tensor, stride: int = 1
) -> list[Trajectory]:
    """One Trajectory per image of the batch from the loop's (CPU) step records and its final latents.

    Any run of the sampling loop (a fresh sample, SDEdit from a later start, inpainting, anagrams) becomes
    the same scrubbable trajectory; ``stride`` decodes previews of latent models at reduced size.
    """
    final = final.float().cpu()
    trajectories = []
    with torch.inference_mode():
        for image_index in range(final.shape[0]):
            noisy = torch.stack([r.x_t[image_index] for r in records] + [final[image_index]])
            predicted = torch.stack([r.predicted_x0[image_index] for r in records] + [final[image_index]])
            frames = torch.cat([noisy[:-1], predicted[:-1]])[..., ::stride, ::stride]
            decoded = decode_in_batches(adapter, frames)
            final_image = decode_in_batches(adapter, final[image_index : image_index + 1])
            if stride > 1:
                final_image_small = torch.nn.functional.interpolate(final_image, size=decoded.shape[-2:], mode="area")
            else:
                final_image_small = final_image
            steps = len(records)
            trajectories.append(
                Trajectory(
                    timesteps=tuple(r.timestep for r in records),
                    alpha_bars=tuple(r.alpha_bar for r in records),
                    noisy=torch.cat([decoded[:steps], final_image_small]),
                    predicted=torch.cat([decoded[steps:], final_image_small]),
                    final_image=final_image[0],
                    predicted_latents=predicted,
                    noisy_latents=noisy,
                    guidance=guidance_trace(records, image_index, adapter.prediction_type),
                )
            )
    return trajectories
