"""Built-in models: DDPM schedule math and the ancestral sampler for the small pixel-space digits models.

Notation follows Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models" (2020), with
timesteps 1-indexed as in the paper: t = 1 .. T, ``alpha_t = 1 - beta_t``,
``alpha_bar_t = prod_{s<=t} alpha_s`` and ``alpha_bar_0 = 1``. The arrays below have length T + 1
so that ``schedule.alpha_bars[t]`` reads like the paper; index 0 is the clean image.
The networks see the timestep normalised to [0, 1] as ``t / T`` (CS180 part B).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

NoisePredictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``noise_fn(x_t, t)`` with x_t (N, C, H, W) and integer t (N,) in 1..T -> predicted noise (N, C, H, W)."""


@dataclass(frozen=True)
class DDPMSchedule:
    """Linear beta schedule (DDPM Sec. 4: beta_1 = 1e-4 .. beta_T = 0.02) with its derived quantities."""

    num_timesteps: int = 300
    beta_start: float = 1e-4
    beta_end: float = 0.02

    @property
    def betas(self) -> torch.Tensor:
        """(T+1,) float64: beta_t for t = 1..T; beta_0 = 0 by convention."""
        betas = torch.linspace(self.beta_start, self.beta_end, self.num_timesteps, dtype=torch.float64)
        return torch.cat([torch.zeros(1, dtype=torch.float64), betas])

    @property
    def alphas(self) -> torch.Tensor:
        """(T+1,) float64: alpha_t = 1 - beta_t."""
        return 1.0 - self.betas

    @property
    def alpha_bars(self) -> torch.Tensor:
        """(T+1,) float64: alpha_bar_t = prod_{s=1..t} alpha_s, alpha_bar_0 = 1."""
        return torch.cumprod(self.alphas, dim=0)

    def to_config(self) -> dict[str, object]:
        """JSON-serialisable description, stored next to shipped weights."""
        return {
            "type": "ddpm",
            "num_timesteps": self.num_timesteps,
            "beta_schedule": "linear",
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
        }


def _gather(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Pick ``values[t]`` per sample and shape it (N, 1, 1, 1) to broadcast against ``like``."""
    picked = values.to(like.device)[t.to(like.device).long()].to(like.dtype)  # (N,)
    return picked.reshape(-1, *([1] * (like.dim() - 1)))


def q_sample(
    x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, schedule: DDPMSchedule
) -> torch.Tensor:
    """Forward process q(x_t | x_0) in closed form (DDPM Eq. 4): sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
    alpha_bar = _gather(schedule.alpha_bars, t, x0)
    return alpha_bar.sqrt() * x0 + (1.0 - alpha_bar).sqrt() * noise


def predict_x0_from_noise(
    x_t: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, schedule: DDPMSchedule
) -> torch.Tensor:
    """Invert Eq. 4 for the clean image: x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t) (DDPM Eq. 15)."""
    alpha_bar = _gather(schedule.alpha_bars, t, x_t)
    return (x_t - (1.0 - alpha_bar).sqrt() * noise) / alpha_bar.sqrt()


def posterior_mean_variance(
    x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, schedule: DDPMSchedule
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of q(x_{t-1} | x_t, x_0) (DDPM Eq. 6-7), for t >= 1.

    mean = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0 + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t
    variance = beta_tilde_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t   # (N, 1, 1, 1)
    """
    betas, alphas, alpha_bars = schedule.betas, schedule.alphas, schedule.alpha_bars
    beta_t = _gather(betas, t, x_t)
    alpha_t = _gather(alphas, t, x_t)
    alpha_bar_t = _gather(alpha_bars, t, x_t)
    alpha_bar_prev = _gather(alpha_bars, t - 1, x_t)
    mean = (alpha_bar_prev.sqrt() * beta_t / (1.0 - alpha_bar_t)) * x0 + (
        alpha_t.sqrt() * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar_t)
    ) * x_t
    variance = (1.0 - alpha_bar_prev) / (1.0 - alpha_bar_t) * beta_t
    return mean, variance


def classifier_free_guidance(
    noise_conditional: torch.Tensor, noise_unconditional: torch.Tensor, gamma: float
) -> torch.Tensor:
    """eps = eps_u + gamma (eps_c - eps_u) (Ho & Salimans 2022, Eq. 6 rewritten): 0 = unconditional, 1 = conditional."""
    return noise_unconditional + gamma * (noise_conditional - noise_unconditional)


@dataclass(frozen=True)
class DDPMStep:
    """What the sampler saw at one step: x_t before the update, the noise estimate and predicted x0."""

    index: int  # 0 for the first step (t = T)
    t: int  # paper timestep, T .. 1
    x_t: torch.Tensor  # (N, C, H, W)
    predicted_x0: torch.Tensor  # (N, C, H, W)
    noise: torch.Tensor  # (N, C, H, W) the (guided) noise estimate


StepCallback = Callable[[DDPMStep], None]


@torch.no_grad()
def ddpm_sample(
    noise_fn: NoisePredictor,
    shape: tuple[int, ...],
    schedule: DDPMSchedule,
    generator: torch.Generator | None = None,
    x_T: torch.Tensor | None = None,
    clip_x0: tuple[float, float] | None = (0.0, 1.0),
    variance: str = "posterior",
    on_step: StepCallback | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Ancestral sampling (DDPM Algorithm 2, via the x0 parametrisation of Eq. 7 and 15).

    Each step predicts the noise, forms x0_hat (optionally clipped to the data range, as in the DDPM
    reference code), and draws x_{t-1} ~ N(mu_tilde(x_t, x0_hat), sigma_t^2 I); no noise is added at
    t = 1. ``variance`` is "posterior" (sigma_t^2 = beta_tilde_t) or "beta" (sigma_t^2 = beta_t);
    DDPM Sec. 3.2 reports both work. ``on_step`` receives every step, so trajectories can be animated.
    Returns x_0 (N, C, H, W).
    """
    if variance not in ("posterior", "beta"):
        raise ValueError(f"variance must be 'posterior' or 'beta', got {variance!r}")
    x = x_T.to(device) if x_T is not None else torch.randn(shape, generator=generator).to(device)
    batch = x.shape[0]
    for index, step_t in enumerate(range(schedule.num_timesteps, 0, -1)):
        t = torch.full((batch,), step_t, dtype=torch.long, device=x.device)
        noise = noise_fn(x, t)  # (N, C, H, W)
        predicted_x0 = predict_x0_from_noise(x, t, noise, schedule)
        if clip_x0 is not None:
            predicted_x0 = predicted_x0.clamp(*clip_x0)
        if on_step is not None:
            on_step(DDPMStep(index=index, t=step_t, x_t=x, predicted_x0=predicted_x0, noise=noise))
        mean, posterior_var = posterior_mean_variance(predicted_x0, x, t, schedule)
        if step_t > 1:
            var = posterior_var if variance == "posterior" else _gather(schedule.betas, t, x)
            z = torch.randn(x.shape, generator=generator).to(x.device)
            x = mean + var.sqrt() * z
        else:
            x = mean
    return x


def time_noise_fn(model: torch.nn.Module, schedule: DDPMSchedule) -> NoisePredictor:
    """Wrap a time-conditioned UNet ``model(x_t, t / T)`` as a :data:`NoisePredictor`."""

    def predict(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return model(x_t, t.to(x_t.dtype) / schedule.num_timesteps)

    return predict


def class_noise_fn(
    model: torch.nn.Module, labels: torch.Tensor, schedule: DDPMSchedule, gamma: float
) -> NoisePredictor:
    """Wrap a class-conditioned UNet with classifier-free guidance at scale ``gamma``.

    The conditional and unconditional (mask = 0) predictions are computed in one batch of 2N.
    """

    def predict(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        n = x_t.shape[0]
        t_norm = t.to(x_t.dtype) / schedule.num_timesteps
        y = labels.to(x_t.device)
        if gamma == 1.0:  # the unconditional branch would be multiplied by zero
            return model(x_t, t_norm, y, torch.ones(n, device=x_t.device))
        mask = torch.cat([torch.ones(n), torch.zeros(n)]).to(x_t.device)
        both = model(torch.cat([x_t, x_t]), torch.cat([t_norm, t_norm]), torch.cat([y, y]), mask)  # (2N, C, H, W)
        return classifier_free_guidance(both[:n], both[n:], gamma)

    return predict
