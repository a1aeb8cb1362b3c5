"""Experiments stage: jump previews. From intermediate states of a trajectory, finish the denoising fast.

A jump branches off the trajectory at step i (the state x_t entering it) and reaches a clean image in J big
steps, to show what the model "already knows" at that point (seeds/000, 001). Two methods:

* ``ddim``: J deterministic DDIM steps (Song et al. 2021, Eq. 12 with eta = 0) over the sub-schedule
  t = tau_0 > tau_1 > ... > tau_{J-1} (tau_k = t - k (t + 1) / J, rounded), the last step landing on
  alpha-bar = 1. J = 1 is exactly the predicted x0 at step i.
* ``beta-sum`` (the source report's method): a DDPM ancestral sampler (Ho et al. 2020, Eq. 6-7, x0
  parametrisation) over a short schedule of large betas. The original betas beta_0 .. beta_t still ahead are
  cut into J contiguous runs of about equal sum; each jump beta is the sum of one run, so the jump betas sum
  to exactly the remaining sum. The model is asked at the top timestep of each run. Every beta must stay in
  (0, 1); where J runs cannot achieve that, J is raised to the smallest count that can (recorded).

Flow-matching models (SD3, Flux) jump the same way: ``ddim`` there is a straight Euler leap along the predicted
velocity, x_flow' = x_flow + (sigma' - sigma) v with v = eps - x0, which is exactly DDIM's update written in the
variance-preserving parametrisation (both put the predicted x0 and eps back at the next noise level); their
sub-schedule is evenly spaced in sigma, sigma_k = sigma (1 - k / J), down to sigma 0. ``beta-sum`` reads the
betas of the variance-preserving schedule equal to the flow path (``generator.models.flow_schedule``).

All branches of a prompt advance together: jump step s is one batched denoiser call over every branch that
still has a step s (so K points x J steps cost max(J) calls, not K x J). All tensors are in the
variance-preserving parametrisation x_t = sqrt(a) x0 + sqrt(1 - a) eps that the sampling loop records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import numpy as np
import torch

from generator.diffusion.sampling import guided_output, noise_from_x0, predicted_x0
from generator.models.base import ModelAdapter, PromptEmbeddings
from generator.models.schedulers import alpha_bar_at, is_flow

JumpMethod = Literal["ddim", "beta-sum"]
METHODS: tuple[str, ...] = ("ddim", "beta-sum")
MAX_BETA = 0.999  # the largest jump beta allowed: (1 - beta) must stay clearly above 0


@dataclass(frozen=True)
class JumpStart:
    """Where a branch leaves the trajectory."""

    step: int  # trajectory step index (the state entering that step)
    timestep: float
    x_t: torch.Tensor  # (c, h, w) variance-preserving noisy sample
    predicted_x0: torch.Tensor | None = None  # the trajectory's prediction at (x_t, t): saves the first call


@dataclass(frozen=True)
class JumpPlan:
    """One branch's short schedule."""

    timesteps: tuple[float, ...]  # where the model is asked, descending; the first is the start's t
    model_alpha_bars: tuple[float, ...]  # original alpha-bar at those timesteps (reads the model's output)
    path_alpha_bars: tuple[float, ...]  # alpha-bar the sampler assumes before each step, then 1.0 (clean)
    betas: tuple[float, ...] | None  # beta-sum: the jump betas, largest noise first; None for ddim


@dataclass(frozen=True)
class JumpResult:
    """The clean image a branch reached."""

    step: int
    requested_steps: int
    method: str
    plan: JumpPlan
    x0: torch.Tensor  # (c, h, w) float32 on the CPU


def ddim_timesteps(start: float, jumps: int) -> tuple[float, ...]:
    """tau_k = t - k (t + 1) / J for k < J (rounded; tau_0 stays t): evenly spaced down towards 0."""
    rest = [float(round(start - k * (start + 1) / jumps)) for k in range(1, jumps)]
    return (float(start), *rest)


def flow_timesteps(start: float, jumps: int) -> tuple[float, ...]:
    """t_k = t (1 - k / J) for k < J: straight leaps evenly spaced in sigma = t / T, the last one to sigma 0."""
    return tuple(float(start) * (1 - k / jumps) for k in range(jumps))


def ddim_plan(scheduler: object, start: float, jumps: int) -> JumpPlan:
    """A DDIM sub-schedule (flow models: Euler leaps) from ``start`` to a clean image in ``jumps`` model calls."""
    timesteps = flow_timesteps(start, jumps) if is_flow(scheduler) else ddim_timesteps(start, jumps)
    alpha_bars = tuple(alpha_bar_at(scheduler, t) for t in timesteps)
    return JumpPlan(timesteps, alpha_bars, alpha_bars + (1.0,), None)


def beta_sum_groups(betas: np.ndarray, top: int, jumps: int) -> list[tuple[int, int]]:
    """Cut betas[0..top] into ``jumps`` contiguous runs of about equal sum, as (high, low) timestep pairs.

    Runs are listed from high to low timestep; each is non-empty (``jumps`` <= top + 1).
    """
    cumulative = np.cumsum(betas[: top + 1].astype(np.float64))  # cumulative[s] = sum of betas[0..s]
    total = cumulative[-1]
    bounds, low = [], 0
    for k in range(1, jumps):
        # end the run at the first timestep whose cumulative sum reaches k * total / J, leaving every later
        # run at least one timestep
        cut = int(np.searchsorted(cumulative, total * k / jumps))
        cut = min(max(cut, low), top - (jumps - k))
        bounds.append((cut, low))
        low = cut + 1
    bounds.append((top, low))
    return bounds[::-1]


def beta_sum_plan(scheduler: object, start: float, jumps: int) -> JumpPlan:
    """Jump betas summing to the remaining betas of the original schedule, each in (0, 1).

    ``jumps`` is raised until every jump beta is below ``MAX_BETA`` (one run per original timestep always
    works, since every original beta is below 1).
    """
    betas = scheduler.betas.double().cpu().numpy()
    top = min(int(round(float(start))), len(betas) - 1)
    jumps = max(1, min(jumps, top + 1))
    while True:
        groups = beta_sum_groups(betas, top, jumps)
        jump_betas = [float(betas[low : high + 1].sum()) for high, low in groups]
        if max(jump_betas) < MAX_BETA or len(groups) >= top + 1:
            break
        jumps += 1
    # alpha-bar the sampler assumes before jump step k: product of (1 - b) over the runs at or below it
    alphas = np.cumprod([1 - b for b in jump_betas[::-1]])[::-1]
    timesteps = (float(start),) + tuple(float(high) for high, _ in groups[1:])
    return JumpPlan(
        timesteps=timesteps,
        model_alpha_bars=tuple(alpha_bar_at(scheduler, t) for t in timesteps),
        path_alpha_bars=tuple(float(a) for a in alphas) + (1.0,),
        betas=tuple(jump_betas),
    )


def make_plan(scheduler: object, method: str, start: float, jumps: int) -> JumpPlan:
    """The short schedule of one branch."""
    if method == "ddim":
        return ddim_plan(scheduler, start, jumps)
    if method == "beta-sum":
        return beta_sum_plan(scheduler, start, jumps)
    raise ValueError(f"unknown jump method {method!r}; choose one of {', '.join(METHODS)}")


def ddim_update(x0: torch.Tensor, eps: torch.Tensor, alpha_bar_next: float) -> torch.Tensor:
    """DDIM Eq. 12 (eta = 0): x_next = sqrt(a_next) x0 + sqrt(1 - a_next) eps.

    For a flow model this is the Euler leap x_flow + (sigma_next - sigma) v, up to the recorded scale.
    """
    return alpha_bar_next**0.5 * x0 + (1 - alpha_bar_next) ** 0.5 * eps


def ddpm_posterior(
    x0: torch.Tensor, x: torch.Tensor, alpha_bar: float, alpha_bar_next: float, noise: torch.Tensor
) -> torch.Tensor:
    """DDPM Eq. 6-7: a sample of q(x_next | x, x0) with beta = 1 - a / a_next (the jump's own beta)."""
    beta = 1 - alpha_bar / alpha_bar_next
    mean = (alpha_bar_next**0.5 * beta / (1 - alpha_bar)) * x0 + ((1 - beta) ** 0.5 * (1 - alpha_bar_next) / (1 - alpha_bar)) * x
    variance = (1 - alpha_bar_next) / (1 - alpha_bar) * beta
    return mean + variance**0.5 * noise


@dataclass
class _Branch:
    start: JumpStart
    requested: int
    plan: JumpPlan
    x: torch.Tensor  # (c, h, w) current state
    generator: torch.Generator
    position: int = 0  # index into plan.timesteps of the next step


# (batched variance-preserving inputs, one timestep per row) -> raw model outputs
Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def run_jumps(
    adapter: ModelAdapter,
    embeddings: PromptEmbeddings,
    scheduler: object,
    starts: Sequence[JumpStart],
    jump_steps: Sequence[int],
    *,
    method: str = "ddim",
    guidance: float,
    seed: int = 0,
    batched: bool = True,
    max_batch: int = 16,
) -> list[JumpResult]:
    """Every (start, J) branch, advanced together; results ordered by start, then by ``jump_steps``.

    ``embeddings`` are those of a single prompt. ``batched=False`` gives each branch its own denoiser calls
    (the reference the benchmark compares against). ``beta-sum`` noise comes from one generator per branch
    (seeded from ``seed``, the start step and J), so batching does not change it.
    """
    if embeddings.cond.batch_size != 1:
        raise ValueError("run_jumps takes the embeddings of one prompt")
    branches = []
    for start in starts:
        for jumps in jump_steps:
            generator = torch.Generator("cpu").manual_seed(int(seed) * 1_000_003 + start.step * 1009 + int(jumps))
            branches.append(
                _Branch(start, int(jumps), make_plan(scheduler, method, start.timestep, int(jumps)),
                        start.x_t.float().cpu(), generator)
            )

    def denoise(rows: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """One guided denoiser call for a batch of branch states."""
        with torch.inference_mode():
            output = guided_output(
                adapter,
                rows.to(adapter.device, adapter.dtype),
                timesteps.to(adapter.device),
                embeddings.repeat(rows.shape[0]),
                guidance,
            )
        return output.float().cpu()

    while True:
        active = [b for b in branches if b.position < len(b.plan.timesteps)]
        if not active:
            break
        # the first step of a branch with a known prediction needs no call
        known = [b for b in active if b.position == 0 and b.start.predicted_x0 is not None]
        asking = [b for b in active if b not in known]
        for branch in known:
            _advance(branch, branch.start.predicted_x0.float().cpu(), method)
        groups = [asking[i : i + max_batch] for i in range(0, len(asking), max_batch)] if batched else [[b] for b in asking]
        for group in groups:
            rows = torch.stack([b.x for b in group])  # (branches, c, h, w)
            timesteps = torch.tensor([b.plan.timesteps[b.position] for b in group], dtype=torch.float32)
            outputs = denoise(rows, timesteps if len(group) > 1 else timesteps[0])
            for branch, output in zip(group, outputs):
                alpha_bar = branch.plan.model_alpha_bars[branch.position]
                _advance(branch, predicted_x0(output, branch.x, alpha_bar, adapter.prediction_type), method)
    return [JumpResult(b.start.step, b.requested, method, b.plan, b.x) for b in branches]


def _advance(branch: _Branch, x0: torch.Tensor, method: str) -> None:
    """One jump step from the model's clean estimate at the branch's current state."""
    plan, k = branch.plan, branch.position
    alpha_bar_next = plan.path_alpha_bars[k + 1]
    if method == "ddim":
        eps = noise_from_x0(x0, branch.x, plan.model_alpha_bars[k])
        branch.x = ddim_update(x0, eps, alpha_bar_next)
    else:
        noise = torch.randn(branch.x.shape, generator=branch.generator)
        branch.x = ddpm_posterior(x0, branch.x, plan.path_alpha_bars[k], alpha_bar_next, noise)
    if k + 1 == len(plan.timesteps):  # landed on alpha-bar 1: the state is the clean estimate itself
        branch.x = x0
    branch.position = k + 1


def jump_points(steps: int, every: int | None, at: Sequence[int] = ()) -> list[int]:
    """Trajectory steps to jump from: every ``every``-th step from 0, plus ``at``, below ``steps``."""
    points = set(range(0, steps, every)) if every else set()
    points |= {i for i in at if 0 <= i < steps}
    return sorted(points)
