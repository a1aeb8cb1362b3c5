"""Built-in models: flow matching (rectified flow) for the small digits UNets, beside DDPM (``ddpm.py``).

Convention (Liu et al. 2023, "Flow Straight and Fast"; Lipman et al. 2023; the same as SD3/Flux and the flow
schedulers of ``generator.diffusion``): time t in [0, 1] runs from the data (t = 0) to pure noise (t = 1) along
the straight line

    x_t = (1 - t) x0 + t eps,        eps ~ N(0, I),

whose velocity is d x_t / d t = eps - x0 =: v. The network is trained to predict v from (x_t, t) by plain L2
(the conditional flow-matching loss); the clean image it implies is x0 = x_t - t v and the noise eps = x_t +
(1 - t) v. Sampling integrates the ODE from t = 1 (noise) back to t = 0 with Euler steps
x_{t - dt} = x_t - dt v(x_t, t): no noise is added, so one starting noise always gives the same digit. The UNet is
the DDPM one, unchanged: it reads t in [0, 1] where the DDPM models read t / T, and outputs a velocity instead of
a noise estimate. Images stay in [0, 1] as for the DDPM models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

VelocityPredictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``velocity_fn(x_t, t)`` with x_t (N, C, H, W) and t (N,) float in [0, 1] -> predicted velocity (N, C, H, W)."""

FLOW_SCHEDULE = {"type": "flow", "path": "x_t = (1 - t) x0 + t eps, t in [0, 1] (t = 1 is noise)",
                 "target": "v = eps - x0", "time_sampling": "uniform", "sampler": "euler"}


def _per_sample(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N, 1, 1, 1) in ``like``'s dtype and device."""
    return t.to(like.device, like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def flow_interpolate(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t eps, per sample t (N,)."""
    tt = _per_sample(t, x0)
    return (1.0 - tt) * x0 + tt * noise


def flow_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The velocity the network learns: v = d x_t / d t = eps - x0 (the same for every t on one path)."""
    return noise - x0


def predict_x0_from_velocity(x_t: torch.Tensor, t: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
    """x0 = x_t - t v (exact when v is the path's true velocity)."""
    return x_t - _per_sample(t, x_t) * velocity


def predict_noise_from_velocity(x_t: torch.Tensor, t: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
    """eps = x_t + (1 - t) v (exact when v is the path's true velocity)."""
    return x_t + (1.0 - _per_sample(t, x_t)) * velocity


@dataclass(frozen=True)
class FlowEuler:
    """The sampler of a flow-matching model as the eval code reads a schedule: ``steps`` uniform Euler steps."""

    steps: int = 20

    @property
    def num_timesteps(self) -> int:
        """Denoiser calls per sample (per guidance branch), as ``DDPMSchedule.num_timesteps`` counts them."""
        return self.steps

    def to_config(self) -> dict[str, object]:
        """JSON-serialisable description."""
        return {**FLOW_SCHEDULE, "steps": self.steps}


@dataclass(frozen=True)
class FlowStep:
    """What the Euler sampler saw at one step: x_t before the update, the velocity and the predicted x0."""

    index: int  # 0 for the first step (t = 1)
    t: float  # flow time of x_t, 1 .. dt
    x_t: torch.Tensor  # (N, C, H, W)
    predicted_x0: torch.Tensor  # (N, C, H, W)
    velocity: torch.Tensor  # (N, C, H, W) the (guided) velocity


def flow_times(steps: int) -> list[float]:
    """The Euler grid 1, 1 - 1/steps, ..., 0 (steps + 1 points, uniform in t)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return [1.0 - i / steps for i in range(steps + 1)]


@torch.no_grad()
def flow_sample(
    velocity_fn: VelocityPredictor,
    shape: tuple[int, ...],
    steps: int = 50,
    generator: torch.Generator | None = None,
    x_1: torch.Tensor | None = None,
    on_step: Callable[[FlowStep], None] | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Euler integration of dx/dt = v from t = 1 (noise ``x_1`` or a fresh draw) to t = 0; returns x_0."""
    x = x_1.to(device) if x_1 is not None else torch.randn(shape, generator=generator).to(device)
    times = flow_times(steps)
    for index, (t_now, t_next) in enumerate(zip(times[:-1], times[1:])):
        t = torch.full((x.shape[0],), t_now, dtype=x.dtype, device=x.device)
        velocity = velocity_fn(x, t)
        if on_step is not None:
            on_step(FlowStep(index=index, t=t_now, x_t=x, predicted_x0=predict_x0_from_velocity(x, t, velocity),
                             velocity=velocity))
        x = x + (t_next - t_now) * velocity
    return x


def time_velocity_fn(model: torch.nn.Module) -> VelocityPredictor:
    """A time-conditioned flow UNet ``model(x_t, t)`` as a :data:`VelocityPredictor`."""

    def predict(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return model(x_t, t.to(x_t.dtype))

    return predict


def class_velocity_fn(model: torch.nn.Module, labels: torch.Tensor, gamma: float) -> VelocityPredictor:
    """A class-conditioned flow UNet with classifier-free guidance on velocities: v = v_u + gamma (v_c - v_u)."""

    def predict(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        n = x_t.shape[0]
        y = labels.to(x_t.device)
        t = t.to(x_t.dtype)
        if gamma == 1.0:
            return model(x_t, t, y, torch.ones(n, device=x_t.device))
        mask = torch.cat([torch.ones(n), torch.zeros(n)]).to(x_t.device)
        both = model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([y, y]), mask)  # (2N, C, H, W)
        return both[n:] + gamma * (both[:n] - both[n:])

    return predict
