"""Models stage: schedulers by name, and the schedule quantities our own loop needs (alpha-bar at any t).

Two families: the variance-preserving ones of the UNet models (DDIM ... LMS, a beta schedule) and the
flow-matching ones of SD3 and Flux (``flow-euler``, ``flow-heun``: sigma in [0, 1] with x_t = (1 - sigma) x0 +
sigma eps, Lipman et al. 2023 / Liu et al. 2023 rectified flow; timestep = 1000 sigma). A model names only
schedulers of its own family. The loop records every model in the variance-preserving parametrisation; a flow
state maps onto it exactly (``flow_alpha_bar``), so every experiment reads flow models the same way.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import (
    DDIMScheduler,
    FlowMatchEulerDiscreteScheduler,
    FlowMatchHeunDiscreteScheduler,
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
# the flow-matching family (SD3, Flux), kept apart: the samplers above are what noise-prediction models take
FLOW_SCHEDULERS: dict[str, type] = {
    "flow-euler": FlowMatchEulerDiscreteScheduler,
    "flow-heun": FlowMatchHeunDiscreteScheduler,
}
ALL_SCHEDULERS: tuple[str, ...] = (*SCHEDULERS, *FLOW_SCHEDULERS)


# prediction types a scheduler cannot read; the loop hands it the equivalent epsilon instead (exact conversion)
UNREAD_PREDICTIONS: dict[str, frozenset[str]] = {"euler-ancestral": frozenset({"sample"})}


def make_scheduler(name: str, base_config: dict) -> object:
    """A fresh scheduler ``name`` sharing the training schedule (betas, prediction type) of ``base_config``.

    A model's prediction type the scheduler cannot read becomes "epsilon" in the scheduler's config; the
    sampling loop sees the mismatch and converts each model output (``generator.diffusion.sampling.scheduler_output``).
    """
    if name not in ALL_SCHEDULERS:
        raise UserError(f"unknown scheduler {name!r}; choose one of {', '.join(ALL_SCHEDULERS)}")
    flow_model = is_flow_config(base_config)
    if (name in FLOW_SCHEDULERS) != flow_model:
        family = list(FLOW_SCHEDULERS) if flow_model else list(SCHEDULERS)
        kind = "a flow-matching" if flow_model else "a noise-prediction (beta schedule)"
        raise UserError(f"scheduler {name!r} does not fit {kind} model; choose one of {', '.join(family)}")
    if flow_model:
        from generator.models.flow_schedule import make_flow_scheduler

        return make_flow_scheduler(name, base_config)
    scheduler_class, overrides = SCHEDULERS[name]
    config = {**dict(base_config), **overrides}
    if config.get("prediction_type") in UNREAD_PREDICTIONS.get(name, ()):
        config["prediction_type"] = "epsilon"
    return scheduler_class.from_config(config)


def is_flow_config(config: dict) -> bool:
    """Whether a scheduler config is a flow-matching one (a sigma shift, no beta schedule)."""
    return "shift" in config and "beta_start" not in config


def is_flow(scheduler: object) -> bool:
    """Whether a scheduler steps a flow-matching ODE (x_t = (1 - sigma) x0 + sigma eps)."""
    return is_flow_config(scheduler.config)


def flow_alpha_bar(sigma: float) -> float:
    """The alpha-bar of the variance-preserving state equal to a flow state up to scale.

    x_t = (1 - sigma) x0 + sigma eps divided by c = sqrt((1 - sigma)^2 + sigma^2) is sqrt(a) x0 + sqrt(1 - a) eps
    with a = (1 - sigma)^2 / c^2: the same x0 and eps, so predictions carry over unchanged.
    """
    return (1 - sigma) ** 2 / ((1 - sigma) ** 2 + sigma**2)


def flow_sigma(alpha_bar: float) -> float:
    """Inverse of ``flow_alpha_bar``: sigma = sqrt(1 - a) / (sqrt(a) + sqrt(1 - a))."""
    a, s = alpha_bar**0.5, max(1 - alpha_bar, 0.0) ** 0.5
    return s / (a + s)


def scale_model_input(scheduler: object, latents: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
    """The scheduler's state as the variance-preserving x_t the loop records and the adapters take.

    Flow states are divided by sqrt((1 - sigma)^2 + sigma^2); the others go through ``scheduler.scale_model_input``
    (Euler-type schedulers keep x0 + sigma eps and divide by sqrt(sigma^2 + 1)).
    """
    if not is_flow(scheduler):
        return scheduler.scale_model_input(latents, timestep)
    sigma = float(timestep) / scheduler.config.num_train_timesteps
    return latents / ((1 - sigma) ** 2 + sigma**2) ** 0.5


def alpha_bar_at(scheduler: object, timestep: torch.Tensor | float) -> float:
    """Cumulative alpha-bar at a (possibly fractional) timestep (flow schedulers: ``flow_alpha_bar(t / T)``).

    Sigma-based schedulers (Euler, LMS) interpolate sigma = sqrt((1 - a) / a) linearly in t between training
    timesteps (Karras et al. 2022, Eq. 5 parametrisation); at integer t this is exactly ``alphas_cumprod[t]``.
    """
    if is_flow(scheduler):
        return flow_alpha_bar(float(timestep) / scheduler.config.num_train_timesteps)
    alphas_cumprod = scheduler.alphas_cumprod.double().cpu().numpy()
    t = float(timestep)
    if t == int(t):
        return float(alphas_cumprod[int(t)])
    sigmas = np.sqrt((1 - alphas_cumprod) / alphas_cumprod)
    sigma = float(np.interp(t, np.arange(len(sigmas)), sigmas))
    return 1.0 / (1.0 + sigma**2)
