"""The numbers the math panel prints for the flow samplers (SD3, Flux) reproduce the flow schedulers' own ``step``."""

from __future__ import annotations

import pytest
import torch

from generator.diffusion.updates import scheduler_facts, update_numbers
from generator.models.schedulers import make_scheduler

SD3_CONFIG = {"num_train_timesteps": 1000, "shift": 3.0}
FLUX_CONFIG = {"num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": True, "base_shift": 0.5,
               "max_shift": 1.15, "base_image_seq_len": 256, "max_image_seq_len": 4096}


def _scheduler(name: str, config: dict, steps: int) -> object:
    """A flow scheduler as the bake sets it up (Flux: the shift of a 64x64-token image)."""
    scheduler = make_scheduler(name, config)
    scheduler.image_seq_len = 4096
    scheduler.set_timesteps(steps)
    return scheduler


def _replay(name: str, config: dict, steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Step the real scheduler on random velocities; apply the printed numbers by hand; (ours, theirs) per step."""
    scheduler = _scheduler(name, config, steps)
    numbers = update_numbers(scheduler)
    assert len(numbers) == len(scheduler.timesteps)
    torch.manual_seed(0)
    x = torch.randn(1, 4, 8, 8)
    start_x = start_v = None  # what the Heun predictor started from
    pairs = []
    for index, t in enumerate(scheduler.timesteps):
        n = numbers[index]
        velocity = torch.randn(1, 4, 8, 8)
        theirs = scheduler.step(velocity, t, x, return_dict=False)[0]
        if name == "flow-euler" or n["order"] == 1:
            ours = x + n["dt"] * velocity
            start_x, start_v = x, velocity
        else:  # corrector: from the predictor's start, along the mean of both velocities
            ours = start_x + n["dt"] * (start_v + velocity) / 2
        pairs.append((ours, theirs))
        x = theirs
    return pairs


@pytest.mark.parametrize("steps", [1, 4, 9])
@pytest.mark.parametrize("name,config", [("flow-euler", SD3_CONFIG), ("flow-euler", FLUX_CONFIG),
                                         ("flow-heun", SD3_CONFIG)], ids=["euler-sd3", "euler-flux", "heun-sd3"])
def test_printed_flow_numbers_reproduce_the_scheduler_step(name, config, steps):
    for index, (ours, theirs) in enumerate(_replay(name, config, steps)):
        assert (ours - theirs).abs().max().item() < 1e-5 * (theirs.abs().max().item() + 1), f"{name} step {index}"


def test_flow_facts_name_the_flow_kind_and_its_shift():
    facts = scheduler_facts(_scheduler("flow-euler", SD3_CONFIG, 4))
    assert facts["kind"] == "flow-euler" and facts["prediction_type"] == "flow"
    assert facts["shift"] == 3.0 and facts["dynamic_shift"] is False
    assert scheduler_facts(_scheduler("flow-euler", FLUX_CONFIG, 4))["dynamic_shift"] is True
    assert scheduler_facts(_scheduler("flow-heun", SD3_CONFIG, 4))["kind"] == "flow-heun"


def test_flow_euler_numbers_walk_sigma_from_one_to_zero():
    numbers = update_numbers(_scheduler("flow-euler", SD3_CONFIG, 5))
    assert numbers[0]["sigma"] == pytest.approx(1.0) and numbers[-1]["sigma_next"] == 0
    assert all(n["dt"] < 0 for n in numbers)  # every step moves toward the image
    assert sum(n["dt"] for n in numbers) == pytest.approx(-1.0, abs=1e-5)  # the whole straight path, once
    assert [n["t"] for n in numbers] == pytest.approx([1000 * n["sigma"] for n in numbers], rel=1e-5)


def test_flow_heun_alternates_predictor_and_corrector_over_the_same_interval():
    numbers = update_numbers(_scheduler("flow-heun", SD3_CONFIG, 4))
    assert [n["order"] for n in numbers] == [1, 2, 1, 2, 1, 2, 1]
    for predictor, corrector in zip(numbers[0::2], numbers[1::2]):
        assert (predictor["sigma"], predictor["sigma_next"]) == (corrector["sigma"], corrector["sigma_next"])
    assert numbers[-1]["sigma_next"] == 0


def test_stochastic_flow_euler_has_no_written_formula():
    scheduler = make_scheduler("flow-euler", {**SD3_CONFIG, "stochastic_sampling": True})
    scheduler.set_timesteps(3)
    assert scheduler_facts(scheduler)["kind"] == "other"
