"""Experiments stage: what the MNIST training chapter shows, as tensors (no paths, no files written).

* test digits (MNIST test images when a data folder is given, else class-model samples) and their forward
  noising z = x + sigma eps at each sigma, one noise draw per digit scaled by every sigma (CS180 part B 1.2);
* the single-step denoiser after each snapshot epoch on z at its training sigma, and its out-of-distribution
  sweep over all sigmas with the last snapshot (CS180 part B 1.2.1-1.2.2);
* sampling trajectories of the time- and class-conditioned DDPMs after each snapshot epoch, from the same
  noise every epoch, so the animations differ only by what the model has learned;
* a classifier-free guidance sweep of the last class snapshot.

Every sampler run goes through the shared denoising loop (``generator.experiments.prompt.trajectory``) with the
digits adapter, so these are the same trajectories the rest of the site shows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from generator.builtin.digits.weights import load_digits_unet, snapshot_epochs
from generator.experiments.prompt.trajectory import TrajectoryRequest, run_trajectories
from generator.models.digits import IMAGE_SIZE, DigitsAdapter, load_digits_adapter
from generator.spec.training import TrainingSpec

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ChapterDigits:
    images: torch.Tensor  # (n, 28, 28) in [0, 1]
    labels: tuple[int, ...]
    source: str  # "mnist-test" or "class-samples"


@dataclass(frozen=True)
class NoiseLevel:
    sigma: float
    noisy: torch.Tensor  # (n, 28, 28) x + sigma eps, unclipped
    denoised: torch.Tensor | None = None  # (n, 28, 28) the denoiser's output
    mse: float | None = None  # mean squared error of ``denoised`` against the clean digits


@dataclass(frozen=True)
class EpochRun:
    """Samples of one snapshot epoch: ``frames[k]`` is x_t entering step ``frame_steps[k]`` (the last: x_0)."""

    epoch: int
    frame_steps: tuple[int, ...]
    timesteps: tuple[float, ...]  # of the frames (the last frame, the result, has none: -1)
    frames: torch.Tensor  # (frames, n, 28, 28) in [0, 1]
    final: torch.Tensor  # (n, 28, 28)
    objective: str = "ddpm"  # "flow": a flow-matching model, sampled with its Euler steps
    scheduler: str = "ddpm"
    steps: int = 0  # sampler steps of the run


def frame_steps(steps: int, frames: int) -> tuple[int, ...]:
    """``frames`` step indices spread evenly over 0..steps (both ends included, no repeats)."""
    if frames >= steps + 1:
        return tuple(range(steps + 1))
    return tuple(sorted({round(k * steps / (frames - 1)) for k in range(frames)}))


def pick_test_digits(spec: TrainingSpec, class_adapter: DigitsAdapter | None) -> ChapterDigits | None:
    """The digits the chapter noises: the first test image of 0, 1, 2, ... from ``spec.data``, else samples."""
    count = spec.test_digits
    if spec.data is not None:
        from generator.builtin.digits.mnist import load_mnist

        split = load_mnist(spec.data, "test")
        picks = [int((split.labels == d).nonzero()[0][0]) for d in range(count)]
        images = split.images_as_float()[picks, 0]
        return ChapterDigits(images, tuple(range(count)), "mnist-test")
    if class_adapter is None:
        return None
    run = sample_grid(class_adapter, [str(d) for d in range(count)], spec, class_adapter.default_guidance, spec.seed + 1)
    return ChapterDigits(run, tuple(range(count)), "class-samples")


def noise_levels(digits: torch.Tensor, sigmas: tuple[float, ...], seed: int,
                 denoiser: torch.nn.Module | None = None) -> list[NoiseLevel]:
    """z = x + sigma eps for every sigma from one noise draw; denoised by ``denoiser`` when given."""
    noise = torch.randn(digits.shape, generator=torch.Generator().manual_seed(seed))
    levels = []
    for sigma in sigmas:
        noisy = digits + sigma * noise
        if denoiser is None:
            levels.append(NoiseLevel(sigma, noisy))
            continue
        with torch.inference_mode():
            denoised = denoiser(noisy[:, None])[:, 0]
        levels.append(NoiseLevel(sigma, noisy, denoised, float(((denoised - digits) ** 2).mean())))
    return levels


def denoiser_epochs(folder: Path, digits: torch.Tensor, spec: TrainingSpec) -> tuple[list[tuple[int, NoiseLevel]], list[NoiseLevel]]:
    """(each snapshot's result at the training sigma, the last snapshot's sweep over every sigma)."""
    epochs = snapshot_epochs(folder)
    per_epoch = []
    model = None
    for epoch in epochs:
        model, _ = load_digits_unet(folder, epoch)
        (level,) = noise_levels(digits, (spec.denoiser_sigma,), spec.seed, model)
        per_epoch.append((epoch, level))
    return per_epoch, noise_levels(digits, spec.sigmas, spec.seed, model)


def sample_grid(adapter: DigitsAdapter, prompts: list[str], spec: TrainingSpec, guidance: float, seed: int) -> torch.Tensor:
    """Final samples only, (n, 28, 28)."""
    return epoch_run(adapter, prompts, spec, guidance, seed, frames=2).final


def chapter_sampler(adapter: DigitsAdapter, spec: TrainingSpec) -> tuple[str, int]:
    """(scheduler, steps) of the chapter's runs: the course's DDPM with ``spec.steps`` for a DDPM; a flow-matching
    model's own Euler sampler and step count (``DigitsFlowAdapter``'s defaults, at most ``spec.steps``)."""
    if adapter.prediction_type == "flow":
        return adapter.default_scheduler, min(adapter.default_steps, spec.steps)
    return "ddpm", spec.steps


def epoch_run(adapter: DigitsAdapter, prompts: list[str], spec: TrainingSpec, guidance: float, seed: int,
              frames: int | None = None) -> EpochRun:
    """Sample ``prompts`` together from the seed's noise with the chapter's sampler and keep the chosen frames."""
    scheduler, steps = chapter_sampler(adapter, spec)
    request = TrajectoryRequest(prompts=tuple(prompts), steps=steps, guidance=guidance, seed=seed,
                                width=IMAGE_SIZE, height=IMAGE_SIZE, scheduler=scheduler)
    trajectories = run_trajectories(adapter, request)
    picks = frame_steps(len(trajectories[0].timesteps), frames or spec.frames)
    noisy = torch.stack([t.noisy[:, 0] for t in trajectories], dim=1)  # (steps + 1, n, 28, 28)
    timesteps = tuple(float(trajectories[0].timesteps[i]) if i < len(trajectories[0].timesteps) else -1.0 for i in picks)
    return EpochRun(adapter.epoch or 0, picks, timesteps, noisy[list(picks)], noisy[-1],
                    "flow" if adapter.prediction_type == "flow" else "ddpm", scheduler, steps)


def model_epochs(folder: Path, stage: str, spec: TrainingSpec, progress: Progress = lambda label: None) -> list[EpochRun]:
    """One run per snapshot epoch of a DDPM or flow-matching model ('class': samples_per_digit of each digit;
    'time': time_samples)."""
    runs = []
    for epoch in snapshot_epochs(folder):
        adapter = load_digits_adapter(stage, epoch, model_dir=folder)
        if stage == "class":
            prompts = [str(d) for _ in range(spec.samples_per_digit) for d in range(10)]  # row-major: one row per sample
        else:
            prompts = ["sample"] * spec.time_samples
        run = epoch_run(adapter, prompts, spec, adapter.default_guidance, spec.seed)
        runs.append(replace(run, epoch=epoch))
        progress(f"{stage} epoch {epoch}")
    return runs


def guidance_sweep(adapter: DigitsAdapter, spec: TrainingSpec) -> list[tuple[float, torch.Tensor]]:
    """(gamma, samples (10 * guidance_samples, 28, 28)) per guidance scale, all from the same noise."""
    prompts = [str(d) for _ in range(spec.guidance_samples) for d in range(10)]
    return [(gamma, sample_grid(adapter, prompts, spec, gamma, spec.seed + 2)) for gamma in spec.guidances]
