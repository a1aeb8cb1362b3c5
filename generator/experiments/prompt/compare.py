"""Experiments stage: prompt pairs and guidance/seed variants, every trajectory from a seed's exact noise.

A pair (prompt, compare prompt) and every variant of a seed start from bit-identical noise: the noise is
drawn once per seed exactly as ``run_trajectories`` draws it and passed in, and runs that share a guidance
scale are batched into one ``run_trajectories`` call (at most ``max_batch`` images at a time). A pair's two
predicted x0 are compared per step twice: in the model's space (``x0_distance``) and pixel by pixel in the frames
a reader sees (``difference_maps``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import torch

from generator.diffusion.sampling import StepRecord, initial_noise
from generator.experiments.prompt.trajectory import Trajectory, TrajectoryRequest, run_trajectories
from generator.models.base import ModelAdapter

_WORD = re.compile(r"\S+")
_NORMALISE = re.compile(r"[^\w]+")


@dataclass(frozen=True)
class ExtraTrajectory:
    """One extra trajectory to sample: a prompt text at a seed and guidance scale."""

    text: str
    seed: int
    guidance: float


def word_diff(a: str, b: str) -> tuple[list[dict], list[dict]]:
    """Words of both prompts, each flagged ``changed`` unless it is part of their longest common subsequence.

    Words compare case- and punctuation-insensitively ("Cat," matches "cat"), as a reader would.
    """
    words_a, words_b = _WORD.findall(a), _WORD.findall(b)
    keys_a = [_NORMALISE.sub("", w.lower()) or w for w in words_a]
    keys_b = [_NORMALISE.sub("", w.lower()) or w for w in words_b]
    same_a, same_b = set(), set()
    for block in difflib.SequenceMatcher(a=keys_a, b=keys_b, autojunk=False).get_matching_blocks():
        same_a.update(range(block.a, block.a + block.size))
        same_b.update(range(block.b, block.b + block.size))
    return (
        [{"word": w, "changed": i not in same_a} for i, w in enumerate(words_a)],
        [{"word": w, "changed": i not in same_b} for i, w in enumerate(words_b)],
    )


def seed_noise(adapter: ModelAdapter, request: TrajectoryRequest, seed: int) -> torch.Tensor:
    """The (1, c, h, w) start noise ``run_trajectories`` draws for a one-prompt request with this seed."""
    generator = torch.Generator(adapter.device).manual_seed(seed)
    return initial_noise(adapter, 1, request.width, request.height, generator)


def run_many(
    adapter: ModelAdapter,
    request: TrajectoryRequest,
    runs: Sequence[ExtraTrajectory],
    *,
    preview: int | None = None,
    max_batch: int = 8,
    on_step: Callable[[StepRecord], None] | None = None,
) -> list[Trajectory]:
    """Trajectories of ``runs`` (other settings from ``request``), batched per guidance, in ``runs`` order."""
    noises = {seed: seed_noise(adapter, request, seed) for seed in dict.fromkeys(r.seed for r in runs)}
    results: dict[int, Trajectory] = {}
    by_guidance: dict[float, list[int]] = {}
    for index, run in enumerate(runs):
        by_guidance.setdefault(run.guidance, []).append(index)
    for guidance, indices in by_guidance.items():
        for first in range(0, len(indices), max_batch):
            chunk = indices[first : first + max_batch]
            batch_request = replace(request, prompts=tuple(runs[i].text for i in chunk), guidance=guidance,
                                    seed=runs[chunk[0]].seed)
            noise = torch.cat([noises[runs[i].seed] for i in chunk])
            trajectories = run_trajectories(adapter, batch_request, noise=noise, preview=preview, on_step=on_step)
            results.update(zip(chunk, trajectories))
    return [results[i] for i in range(len(runs))]


def x0_distance(a: Trajectory, b: Trajectory) -> list[float]:
    """Root-mean-square difference of the two predicted x0 (before decoding) at every frame."""
    difference = a.predicted_latents.double() - b.predicted_latents.double()
    return [float(v) for v in difference.pow(2).flatten(1).mean(dim=1).sqrt()]


def difference_maps(frames_a: np.ndarray, frames_b: np.ndarray) -> np.ndarray:
    """Per frame and pixel, |a - b| averaged over the colour channels: (n, h, w, 3) uint8 pairs -> (n, h, w) uint8.

    0 where the two predicted x0 agree, 255 where one is white and the other black; rounded half to even.
    """
    if frames_a.shape != frames_b.shape or frames_a.ndim != 4:
        raise ValueError(f"frames must be two (n, h, w, channels) arrays of one shape, got {frames_a.shape} and "
                         f"{frames_b.shape}")
    difference = np.abs(frames_a.astype(np.int16) - frames_b.astype(np.int16))  # (n, h, w, channels)
    return np.round(difference.mean(axis=-1)).astype(np.uint8)
