"""Models stage: schedulers by name, and the schedule quantities our own loop needs (alpha-bar at any t)."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    LMSDiscreteScheduler,
)

from generator.errors import UserError

# name -> (class, config overrides)
SCHEDULERS: dict[str, tuple[type, dict]] = {
    "ddim": (DDIMScheduler, {}),
    "ddpm": (DDPMScheduler, {}),
    "euler": (EulerDiscreteScheduler, {}),
    "euler-ancestral": (EulerAncestralDiscreteScheduler, {}),
    "dpm-solver++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
    "lms": (LMSDiscreteScheduler, {}),
}


# prediction types a scheduler cannot read; the loop hands it the equivalent epsilon instead (exact conversion)
UNREAD_PREDICTIONS: dict[str, frozenset[str]] = {"euler-ancestral": frozenset({"sample"})}


def make_scheduler(name: str, base_config: dict) -> object:
    """A fresh scheduler ``name`` sharing the training schedule (betas, prediction type) of ``base_config``.

    A model's prediction type the scheduler cannot read becomes "epsilon" in the scheduler's config; the
    sampling loop sees the mismatch and converts each model output (``generator.diffusion.sampling.scheduler_output``).
    """
    if name not in SCHEDULERS:
        raise UserError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
    scheduler_class, overrides = SCHEDULERS[name]
    config = {**dict(base_config), **overrides}
    if config.get("prediction_type") in UNREAD_PREDICTIONS.get(name, ()):
        config["prediction_type"] = "epsilon"
    return scheduler_class.from_config(config)


def alpha_bar_at(scheduler: object, timestep: torch.Tensor | float) -> float:
    """Cumulative alpha-bar at a (possibly fractional) timestep.

    Sigma-based schedulers (Euler, LMS) interpolate sigma = sqrt((1 - a) / a) linearly in t between training
    timesteps (Karras et al. 2022, Eq. 5 parametrisation); at integer t this is exactly ``alphas_cumprod[t]``.
    """
    alphas_cumprod = scheduler.alphas_cumprod.double().cpu().numpy()
    t = float(timestep)
    if t == int(t):
        return float(alphas_cumprod[int(t)])
    sigmas = np.sqrt((1 - alphas_cumprod) / alphas_cumprod)
    sigma = float(np.interp(t, np.arange(len(sigmas)), sigmas))
    return 1.0 / (1.0 + sigma**2)
