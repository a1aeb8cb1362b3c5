"""The numbers the pages print for each scheduler's update reproduce that scheduler's own ``step``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from diffusers.utils.torch_utils import randn_tensor

from generator.diffusion.sampling import noise_from_x0, predicted_x0
from generator.diffusion.updates import scheduler_facts, update_numbers
from generator.models.schedulers import SCHEDULERS, make_scheduler

SD_CONFIG = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
             "prediction_type": "epsilon", "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1,
             "timestep_spacing": "leading"}
SHAPES_CONFIG = json.loads((Path(__file__).resolve().parents[2] / "generator" / "weights" / "shapes" / "scheduler"
                            / "scheduler_config.json").read_text())
SIGMA_KINDS = ("euler", "euler-ancestral", "lms")


def _replay(name: str, config: dict, steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Step the real scheduler on random model outputs; return (ours, theirs) per step."""
    scheduler = make_scheduler(name, config)
    scheduler.set_timesteps(steps)
    numbers = update_numbers(scheduler)
    prediction = scheduler.config.prediction_type
    facts = scheduler_facts(scheduler)
    assert len(numbers) == len(scheduler.timesteps) and facts["kind"] == name
    torch.manual_seed(0)
    latents = torch.randn(1, 3, 8, 8) * scheduler.init_noise_sigma
    x0_history, pairs = [], []
    for index, t in enumerate(scheduler.timesteps):
        n = numbers[index]
        output = torch.randn(1, 3, 8, 8)
        seed = 100 + index
        scheduler.scale_model_input(latents, t)  # (what the loop calls first; the sigma kinds warn without it)
        extra = {"use_clipped_model_output": True} if name == "ddim" else {}  # as the loop steps DDIM
        if name != "lms":
            extra["generator"] = torch.Generator().manual_seed(seed)
        theirs = scheduler.step(output, t, latents, **extra, return_dict=False)[0]
        noise = randn_tensor(output.shape, generator=torch.Generator().manual_seed(seed), dtype=output.dtype)
        if name in SIGMA_KINDS:  # z = x0 + sigma eps; the model reads x_t = z / sqrt(1 + sigma^2)
            sigma = n["sigma"]
            alpha_bar = 1 / (1 + sigma**2)
            x0 = predicted_x0(output, latents * alpha_bar**0.5, alpha_bar, prediction)
            d = (latents - x0) / sigma
            if name == "lms":
                x0_history.append(d)
                ours = latents + sum(c * past for c, past in zip(n["coefs"], reversed(x0_history)))
            else:
                ours = latents + n["dt"] * d + (n["sigma_up"] * noise if name == "euler-ancestral" else 0)
        else:
            alpha_bar = n["alpha_bar"]
            x0 = predicted_x0(output, latents, alpha_bar, prediction)
            if facts["clip_sample"] and name in ("ddim", "ddpm"):
                x0 = x0.clamp(-facts["clip_range"], facts["clip_range"])
            if name == "ddim":
                ours = n["coef_x0"] * x0 + n["coef_eps"] * noise_from_x0(x0, latents, alpha_bar)
            elif name == "ddpm":
                ours = n["coef_x0"] * x0 + n["coef_xt"] * latents + n["sigma"] * noise
            else:  # dpm-solver++
                x0_history.append(x0)
                d = x0 if n["order"] == 1 else n["coef_x0"] * x0 + n["coef_x0_previous"] * x0_history[-2]
                ours = n["coef_xt"] * latents + n["coef_d"] * d
        pairs.append((ours, theirs))
        latents = theirs
    return pairs


@pytest.mark.parametrize("config", [SD_CONFIG, SHAPES_CONFIG], ids=["sd", "shapes"])
@pytest.mark.parametrize("steps", [6, 20])
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_printed_numbers_reproduce_the_scheduler_step(name, config, steps):
    if name in SIGMA_KINDS and config is SHAPES_CONFIG:
        config = {**config, "prediction_type": "epsilon"}  # same schedule; x0 from v is covered by the VP kinds
    for index, (ours, theirs) in enumerate(_replay(name, config, steps)):
        scale = theirs.abs().max().item() + 1
        assert (ours - theirs).abs().max().item() < 2e-4 * scale, f"{name} step {index}"


def test_unknown_scheduler_falls_back_to_its_timesteps():
    from diffusers import PNDMScheduler

    scheduler = PNDMScheduler.from_config(SD_CONFIG)
    scheduler.set_timesteps(5)
    assert scheduler_facts(scheduler)["kind"] == "other"
    assert [n["t"] for n in update_numbers(scheduler)] == [float(t) for t in scheduler.timesteps]


@pytest.mark.parametrize("override", [{"solver_order": 3}, {"solver_type": "heun"}])
def test_dpm_solver_variants_without_a_written_formula_are_generic(override):
    scheduler = make_scheduler("dpm-solver++", {**SD_CONFIG, **override})
    scheduler.set_timesteps(5)
    assert scheduler_facts(scheduler)["kind"] == "other"
