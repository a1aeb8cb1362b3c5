"""Bake stage: the ``schedule`` manifest section, the model's noise schedule and the sampler's path through it.

Holds what the page's schedule figures (alpha-bar_t and the signal-to-noise ratio against t, drawn as inline
SVG at render time by generator/render/charts.py) and its math panel need: the training betas, the scheduler
that sampled with the settings that decide its update, and the numbers of that update at every step
(generator/diffusion/updates.py). The steps the sampler visited and their alpha-bar are the trajectory's own
(``trajectory.timesteps`` and ``trajectory.alpha_bars``).
"""

from __future__ import annotations

from generator.bake.prompt.sections import AfterSampling
from generator.bake.store import AssetStore
from generator.diffusion.updates import SIGNIFICANT, scheduler_facts, update_numbers
from generator.experiments.prompt.trajectory import Trajectory, TrajectoryRequest
from generator.models.base import ModelAdapter
from generator.spec.prompt_set import PromptSpec


class ScheduleSection(AfterSampling):
    """The training schedule and the sampler's update numbers (no model call)."""

    name = "schedule"

    def applies(self, adapter: ModelAdapter, prompt: PromptSpec) -> bool:
        """Every prompt page."""
        return True

    def bake(self, adapter: ModelAdapter, prompt: PromptSpec, request: TrajectoryRequest, trajectory: Trajectory,
             store: AssetStore) -> dict:
        """The section, from a fresh scheduler set up exactly as the trajectory's was (on the CPU: numbers only)."""
        scheduler = adapter.make_scheduler(request.scheduler)
        scheduler.set_timesteps(request.steps, device="cpu")
        return {"schedule": schedule_section(scheduler)}


def schedule_section(scheduler: object) -> dict:
    """Training betas, the scheduler's facts and its per-step update numbers."""
    config = scheduler.config
    return {
        "train_timesteps": int(config.num_train_timesteps),
        "beta_schedule": str(config.get("beta_schedule", "custom")),
        "betas": [float(f"{float(b):.{SIGNIFICANT}g}") for b in scheduler.betas.double()],
        "scheduler": scheduler_facts(scheduler),
        "updates": update_numbers(scheduler),
    }
