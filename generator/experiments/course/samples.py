"""Experiments stage: the same prompt and seed sampled at several step counts and several guidance scales."""

from __future__ import annotations

from dataclasses import dataclass

from generator.experiments.prompt.trajectory import Trajectory, TrajectoryRequest, run_trajectories
from generator.models.base import ModelAdapter


@dataclass(frozen=True)
class SampleRun:
    """One sample: its settings and its trajectory (``trajectory.final_image`` is the result)."""

    steps: int
    guidance: float
    trajectory: Trajectory


def sample_sweep(
    adapter: ModelAdapter,
    prompt: str,
    *,
    step_counts: tuple[int, ...],
    guidance_scales: tuple[float, ...],
    steps: int,
    guidance: float,
    seed: int,
    scheduler: str | None = None,
    width: int | None = None,
    height: int | None = None,
) -> tuple[tuple[SampleRun, ...], tuple[SampleRun, ...]]:
    """(runs over ``step_counts`` at ``guidance``, runs over ``guidance_scales`` at ``steps``), one noise."""
    embeddings = adapter.encode_prompts([prompt])

    def run(run_steps: int, run_guidance: float) -> SampleRun:
        request = TrajectoryRequest(
            prompts=(prompt,), steps=run_steps, guidance=run_guidance, seed=seed,
            width=width or adapter.default_width, height=height or adapter.default_height,
            scheduler=scheduler or adapter.default_scheduler,
        )
        (trajectory,) = run_trajectories(adapter, request, embeddings=embeddings)
        return SampleRun(run_steps, run_guidance, trajectory)

    return tuple(run(n, guidance) for n in step_counts), tuple(run(steps, g) for g in guidance_scales)
