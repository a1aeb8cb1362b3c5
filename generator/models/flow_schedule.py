"""Models stage: flow-matching schedulers (SD3, Flux) that set their timesteps as the models' pipelines do.

``set_timesteps(steps)`` is all our loop and the bake ever call. SD3's pipeline calls exactly that; Flux's
pipeline instead passes sigmas linspace(1, 1/n, n) and a shift mu that grows with the image's token count
(``FluxPipeline.__call__``, ``calculate_shift``). ``ResolutionShiftedEuler`` does the same when given only the
step count, for the image size its adapter set (``image_seq_len``), so our loop samples Flux's own schedule.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler

from generator.errors import UserError


def calculate_shift(image_seq_len: int, config: object) -> float:
    """Flux's mu: linear in the number of image tokens between (base_image_seq_len, base_shift) and the max."""
    base_len, max_len = config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096)
    base_shift, max_shift = config.get("base_shift", 0.5), config.get("max_shift", 1.15)
    slope = (max_shift - base_shift) / (max_len - base_len)
    return image_seq_len * slope + base_shift - slope * base_len


class FlowStart:
    """What the loop and the experiments ask of every scheduler, for the flow ones (which lack it)."""

    init_noise_sigma = 1.0  # a flow path starts at pure noise (sigma 1): the noise itself
    image_seq_len: int | None = None  # image tokens of the size being sampled (set by the adapter)

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """(T,) the variance-preserving alpha-bar equal to the flow path at t = 0 .. T-1 (sigma = t / T)."""
        sigma = torch.arange(self.config.num_train_timesteps, dtype=torch.float64) / self.config.num_train_timesteps
        return ((1 - sigma) ** 2 / ((1 - sigma) ** 2 + sigma**2)).float()

    @property
    def betas(self) -> torch.Tensor:
        """(T,) betas with those alpha-bars, 1 - a_t / a_(t-1): the schedule charts and beta-sum jumps read them."""
        alpha_bars = self.alphas_cumprod.double()
        previous = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
        return (1 - alpha_bars / previous).float()

    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """The flow state at ``timesteps``: (1 - sigma) x0 + sigma eps, sigma = t / T (SDEdit, inpainting)."""
        sigma = torch.as_tensor(timesteps, dtype=torch.float32, device=original.device).flatten()
        sigma = (sigma / self.config.num_train_timesteps).view(-1, *([1] * (original.ndim - 1)))
        return ((1 - sigma) * original + sigma * noise).to(original.dtype)


class ResolutionShiftedEuler(FlowStart, FlowMatchEulerDiscreteScheduler):
    """FlowMatchEulerDiscreteScheduler whose ``set_timesteps(n)`` follows FluxPipeline under dynamic shifting."""

    def set_timesteps(self, num_inference_steps=None, device=None, sigmas=None, mu=None, timesteps=None):
        """Flux's sigmas linspace(1, 1/n, n) and mu for ``image_seq_len`` unless given."""
        if self.config.use_dynamic_shifting and mu is None:
            if self.image_seq_len is None:
                raise ValueError("set image_seq_len (the image's token count) before set_timesteps")
            if sigmas is None and timesteps is None:
                sigmas = np.linspace(1.0, 1 / num_inference_steps, num_inference_steps)
            mu = calculate_shift(self.image_seq_len, self.config)
        super().set_timesteps(num_inference_steps, device=device, sigmas=sigmas, mu=mu, timesteps=timesteps)


def make_flow_scheduler(name: str, base_config: dict) -> object:
    """A fresh flow scheduler ``name`` ('flow-euler' or 'flow-heun') on the model's shift settings."""
    config = {k: v for k, v in dict(base_config).items() if not k.startswith("_")}
    if name == "flow-euler":
        return ResolutionShiftedEuler.from_config(config)
    if config.get("use_dynamic_shifting"):
        raise UserError("flow-heun has no resolution-dependent shift (this model's schedule); use flow-euler")
    return FlowHeun.from_config({k: v for k, v in config.items() if k in ("num_train_timesteps", "shift")})


class FlowHeun(FlowStart, FlowMatchHeunDiscreteScheduler):
    """FlowMatchHeunDiscreteScheduler (Heun's second-order rule on the velocity: two model calls per step)."""
