"""Diffusion stage: what each scheduler's step does, as the numbers of its update formula at every step.

The pages show the update of the scheduler that actually sampled (not always DDIM's), with this step's
numbers. Each function below mirrors one diffusers scheduler's ``step`` for the configurations our loop uses
(eta = 0, no churn, first-to-second-order DPM-Solver++), reading the same schedule tables the scheduler reads,
so the printed coefficients reproduce its output (tests/diffusion/test_updates.py applies them and compares).

Variables, as the pages write them: x_t is the variance-preserving sample the loop records; sigma-based
schedulers (Euler, Euler ancestral, LMS) step z = x_t / sqrt(alpha-bar_t) = x0 + sigma eps (Karras et al.
2022, Eq. 1 with s(t) = 1), sigma = sqrt((1 - alpha-bar) / alpha-bar); x0-hat and eps-hat are the model's
(guided) clean-image and noise estimates at this step.

Flow-matching schedulers (SD3, Flux) step the flow state x_sigma = (1 - sigma) x0 + sigma eps itself, sigma in
[0, 1], along the predicted velocity v = eps - x0 (Liu et al. 2023, rectified flow): Euler x' = x + (sigma' - sigma)
v, Heun's predictor-corrector on the same ODE.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

# diffusers class name -> our kind (generator.models.schedulers.SCHEDULERS names the same classes)
KINDS = {
    "DDIMScheduler": "ddim",
    "DDPMScheduler": "ddpm",
    "EulerDiscreteScheduler": "euler",
    "EulerAncestralDiscreteScheduler": "euler-ancestral",
    "DPMSolverMultistepScheduler": "dpm-solver++",
    "LMSDiscreteScheduler": "lms",
}
# flow-matching classes (and our subclasses of them in generator.models.flow_schedule), by base class name
FLOW_KINDS = {"FlowMatchEulerDiscreteScheduler": "flow-euler", "FlowMatchHeunDiscreteScheduler": "flow-heun"}
SIGNIFICANT = 6  # digits kept in the manifest


def _round(value: float | int | None) -> float | int | None:
    """A float to SIGNIFICANT digits (integers, None and infinities stay as they are)."""
    if value is None or isinstance(value, int) or not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{SIGNIFICANT}g}")


def _scalar(value: Any) -> float:
    """A tensor element or number as a Python float."""
    return float(value.item() if torch.is_tensor(value) else value)


def scheduler_kind(scheduler: object) -> str:
    """Our name for the scheduler's update ('other' for a class without a formula here: the page's generic one)."""
    config = scheduler.config
    for base in type(scheduler).__mro__:
        if base.__name__ in FLOW_KINDS:
            plain = not config.get("stochastic_sampling", False) and not config.get("invert_sigmas", False)
            return FLOW_KINDS[base.__name__] if plain else "other"  # the stochastic variant re-noises: no formula
    kind = KINDS.get(type(scheduler).__name__, "other")
    if kind == "dpm-solver++" and (config.get("algorithm_type") != "dpmsolver++" or config.get("solver_order", 2) > 2
                                   or config.get("solver_type", "midpoint") != "midpoint"):
        return "other"  # the third-order and Heun variants have other coefficients than the ones written here
    return kind


def scheduler_facts(scheduler: object) -> dict[str, Any]:
    """The settings that decide what the page says the scheduler does."""
    config = scheduler.config
    facts: dict[str, Any] = {
        "kind": scheduler_kind(scheduler),
        "class": type(scheduler).__name__,
        # what the scheduler reads (flow schedulers: a velocity; they have no prediction_type setting)
        "prediction_type": "flow" if "shift" in config and "beta_start" not in config
        else config.get("prediction_type", "epsilon"),
        "timestep_spacing": config.get("timestep_spacing", "leading"),
        "clip_sample": bool(config.get("clip_sample", False)),
        "thresholding": bool(config.get("thresholding", False)),
    }
    if facts["clip_sample"]:
        facts["clip_range"] = float(config.get("clip_sample_range", 1.0))
    if facts["kind"] == "ddpm":
        facts["variance_type"] = config.get("variance_type", "fixed_small")
    if facts["kind"] == "dpm-solver++":
        facts.update(solver_order=int(config.solver_order), solver_type=config.solver_type)
    if facts["prediction_type"] == "flow":
        facts["shift"] = _round(float(config.get("shift", 1.0)))
        facts["dynamic_shift"] = bool(config.get("use_dynamic_shifting", False))
        facts["timestep_spacing"] = "sigma"  # timesteps are 1000 sigma on the shifted sigma schedule
    if facts["kind"] == "ddim":
        facts["eta"] = 0.0  # the loop's (generator/diffusion/sampling.py sample(eta=0.0))
    return facts


def ddim_numbers(scheduler: object) -> list[dict]:
    """DDIM (Song et al. 2021, Eq. 12, eta = 0): x_t' = sqrt(a') x0-hat + sqrt(1 - a') eps-hat (t_next None: the end)."""
    numbers = []
    for t in scheduler.timesteps:
        t = int(t)
        previous = t - scheduler.config.num_train_timesteps // scheduler.num_inference_steps
        alpha_bar = _scalar(scheduler.alphas_cumprod[t])
        alpha_next = _scalar(scheduler.alphas_cumprod[previous] if previous >= 0 else scheduler.final_alpha_cumprod)
        numbers.append({"t": t, "t_next": previous if previous >= 0 else None, "alpha_bar": alpha_bar,
                        "alpha_bar_next": alpha_next,
                        "coef_x0": alpha_next**0.5, "coef_eps": (1 - alpha_next) ** 0.5})
    return numbers


def ddpm_numbers(scheduler: object) -> list[dict]:
    """DDPM (Ho et al. 2020, Eq. 6-7): x_t' = c0 x0-hat + c1 x_t + sigma z, beta = 1 - a / a' for strided steps."""
    numbers = []
    variance_type = scheduler.config.get("variance_type", "fixed_small")
    for t in scheduler.timesteps:
        t = int(t)
        previous = int(scheduler.previous_timestep(t))
        alpha_bar = _scalar(scheduler.alphas_cumprod[t])
        alpha_next = _scalar(scheduler.alphas_cumprod[previous]) if previous >= 0 else 1.0
        beta = 1 - alpha_bar / alpha_next
        small = max((1 - alpha_next) / (1 - alpha_bar) * beta, 1e-20)  # beta-tilde (Eq. 7)
        variance = {"fixed_small": small, "fixed_small_log": small, "fixed_large": beta}.get(variance_type)
        sigma = None if variance is None else (variance**0.5 if t > 0 else 0.0)
        numbers.append({"t": t, "t_next": previous if previous >= 0 else None, "alpha_bar": alpha_bar,
                        "alpha_bar_next": alpha_next, "beta": beta, "coef_x0": alpha_next**0.5 * beta / (1 - alpha_bar),
                        "coef_xt": (1 - beta) ** 0.5 * (1 - alpha_next) / (1 - alpha_bar), "sigma": sigma})
    return numbers


def euler_numbers(scheduler: object) -> list[dict]:
    """Euler (Karras et al. 2022, Alg. 2, no churn): z' = z + (sigma' - sigma) d, d = (z - x0-hat) / sigma."""
    sigmas = [_scalar(s) for s in scheduler.sigmas]
    return [{"t": _scalar(t), "sigma": sigmas[i], "sigma_next": sigmas[i + 1], "dt": sigmas[i + 1] - sigmas[i]}
            for i, t in enumerate(scheduler.timesteps)]


def euler_ancestral_numbers(scheduler: object) -> list[dict]:
    """Euler ancestral (k-diffusion sample_euler_ancestral): z' = z + (sigma_down - sigma) d + sigma_up n."""
    numbers = []
    sigmas = [_scalar(s) for s in scheduler.sigmas]
    for i, t in enumerate(scheduler.timesteps):
        sigma, sigma_to = sigmas[i], sigmas[i + 1]
        sigma_up = (sigma_to**2 * (sigma**2 - sigma_to**2) / sigma**2) ** 0.5
        sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5
        numbers.append({"t": _scalar(t), "sigma": sigma, "sigma_next": sigma_to, "sigma_up": sigma_up,
                        "sigma_down": sigma_down, "dt": sigma_down - sigma})
    return numbers


def dpm_solver_orders(scheduler: object) -> list[int]:
    """The order DPMSolverMultistepScheduler.step uses at each step (its warm-up and lower-order-final rules)."""
    config, steps = scheduler.config, len(scheduler.timesteps)
    orders, lower_order_nums = [], 0
    for index in range(steps):
        final = index == steps - 1 and (config.euler_at_final or (config.lower_order_final and steps < 15)
                                        or config.final_sigmas_type == "zero")
        second = index == steps - 2 and config.lower_order_final and steps < 15
        if config.solver_order == 1 or lower_order_nums < 1 or final:
            orders.append(1)
        elif config.solver_order == 2 or lower_order_nums < 2 or second:
            orders.append(2)
        else:
            orders.append(3)
        lower_order_nums = min(lower_order_nums + 1, config.solver_order)
    return orders


def _alpha_sigma_lambda(sigma: float) -> tuple[float, float, float]:
    """VP alpha_t, sigma_t and lambda = log(alpha_t / sigma_t) of a VE sigma (lambda = inf at sigma 0)."""
    alpha = 1 / (sigma**2 + 1) ** 0.5
    return alpha, sigma * alpha, (math.log(alpha) - math.log(sigma * alpha)) if sigma > 0 else math.inf


def dpm_solver_numbers(scheduler: object) -> list[dict]:
    """DPM-Solver++ (Lu et al. 2022b, Eq. 9 and Alg. 2, midpoint): x_t' = (s'/s) x_t + a' (1 - e^-h) D."""
    numbers = []
    sigmas = [_scalar(s) for s in scheduler.sigmas]
    for index, (t, order) in enumerate(zip(scheduler.timesteps, dpm_solver_orders(scheduler))):
        alpha, sigma, lam = _alpha_sigma_lambda(sigmas[index])
        alpha_next, sigma_next, lam_next = _alpha_sigma_lambda(sigmas[index + 1])
        h = lam_next - lam
        entry = {"t": _scalar(t), "order": order, "alpha_bar": alpha**2, "alpha_bar_next": alpha_next**2,
                 "h": h if math.isfinite(h) else None, "coef_xt": sigma_next / sigma,
                 "coef_d": alpha_next * (1 - math.exp(-h))}
        if order == 2:
            r = (lam - _alpha_sigma_lambda(sigmas[index - 1])[2]) / h  # r0 = h_0 / h
            entry.update(r=r, coef_x0=1 + 1 / (2 * r), coef_x0_previous=-1 / (2 * r))  # D = c x0_i + c' x0_{i-1}
        numbers.append(entry)
    return numbers


def lms_numbers(scheduler: object) -> list[dict]:
    """LMS (Karras et al. 2022, linear multistep on d): z' = z + sum_k c_k d_{i-k}, c_k integrated Lagrange bases."""
    numbers = []
    sigmas = [_scalar(s) for s in scheduler.sigmas]
    for index, t in enumerate(scheduler.timesteps):
        order = min(index + 1, 4)  # LMSDiscreteScheduler.step's default order 4, warming up
        coefs = [float(scheduler.get_lms_coefficient(order, index, k)) for k in range(order)]
        numbers.append({"t": _scalar(t), "sigma": sigmas[index], "sigma_next": sigmas[index + 1], "order": order,
                        "coefs": coefs})
    return numbers


def flow_euler_numbers(scheduler: object) -> list[dict]:
    """Flow Euler (FlowMatchEulerDiscreteScheduler.step): x_sigma' = x_sigma + (sigma' - sigma) v-hat."""
    sigmas = [_scalar(s) for s in scheduler.sigmas]
    return [{"t": _scalar(t), "sigma": sigmas[i], "sigma_next": sigmas[i + 1], "dt": sigmas[i + 1] - sigmas[i]}
            for i, t in enumerate(scheduler.timesteps)]


def flow_heun_numbers(scheduler: object) -> list[dict]:
    """Flow Heun (FlowMatchHeunDiscreteScheduler.step): each interval is two loop steps, two model calls.

    Order 1 (predictor, at sigma): x~ = x + (sigma' - sigma) v; order 2 (corrector, evaluated at x~ and sigma'):
    x' = x + (sigma' - sigma) (v + v~) / 2, from the x and v the predictor started with. The last interval
    (sigma' = 0) is a plain Euler step.
    """
    sigmas = [_scalar(s) for s in scheduler.sigmas]
    numbers = []
    for index, t in enumerate(scheduler.timesteps):
        order = 1 if index % 2 == 0 else 2  # the scheduler's first-order state alternates with the second
        start = index if order == 1 else index - 1
        sigma, sigma_next = sigmas[start], sigmas[start + 1]
        numbers.append({"t": _scalar(t), "order": order, "sigma": sigma, "sigma_next": sigma_next,
                        "dt": sigma_next - sigma})
    return numbers


NUMBERS: dict[str, Callable[[object], list[dict]]] = {
    "ddim": ddim_numbers, "ddpm": ddpm_numbers, "euler": euler_numbers, "euler-ancestral": euler_ancestral_numbers,
    "dpm-solver++": dpm_solver_numbers, "lms": lms_numbers, "flow-euler": flow_euler_numbers,
    "flow-heun": flow_heun_numbers,
}


def update_numbers(scheduler: object) -> list[dict]:
    """Per step (``set_timesteps`` already called): the numbers of the scheduler's update, rounded for the manifest.

    A scheduler without a formula here gets its timesteps only (the page shows the generic update).
    """
    kind = scheduler_kind(scheduler)
    raw = NUMBERS[kind](scheduler) if kind in NUMBERS else [{"t": _scalar(t)} for t in scheduler.timesteps]
    return [{key: ([_round(v) for v in value] if isinstance(value, list) else _round(value))
             for key, value in entry.items()} for entry in raw]
