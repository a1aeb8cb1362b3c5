"""Flow matching for the digits UNets: the training target on a constructed case, the x0/velocity closed forms,
Euler sampling under a formula velocity field, and the adapter through our own loop."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from generator.builtin.digits.flow import (
    class_velocity_fn,
    flow_interpolate,
    flow_sample,
    flow_target,
    flow_times,
    predict_noise_from_velocity,
    predict_x0_from_velocity,
)
from generator.builtin.digits.train import TrainConfig, stage_defaults, stage_loss


class Recorder(torch.nn.Module):
    """Returns a fixed output and records what it was called with."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.output = output
        self.calls: list[tuple[torch.Tensor, ...]] = []

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        self.calls.append(args)
        return self.output


@pytest.mark.parametrize("stage", ["time", "class"])
def test_flow_loss_is_l2_to_eps_minus_x0_at_the_interpolant(stage: str) -> None:
    config = replace(stage_defaults(stage), objective="flow", channels_last=False)
    x0 = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    labels = torch.tensor([1, 2, 3, 4])
    model = Recorder(torch.zeros(4, 1, 28, 28))
    loss = stage_loss(model, x0, labels, config, torch.Generator().manual_seed(7))
    # the same draws, in stage_loss's order: the noise, then t ~ U(0, 1), then (class) the label-dropout mask
    g = torch.Generator().manual_seed(7)
    noise = torch.randn(x0.shape, generator=g)
    t = torch.rand(4, generator=g)
    x_t, t_seen = model.calls[0][0], model.calls[0][1]
    torch.testing.assert_close(t_seen, t)
    torch.testing.assert_close(x_t, (1 - t.view(-1, 1, 1, 1)) * x0 + t.view(-1, 1, 1, 1) * noise)
    # a zero prediction costs exactly the mean square of the velocity eps - x0
    torch.testing.assert_close(loss, ((noise - x0) ** 2).mean())
    if stage == "class":
        keep = (torch.rand(4, generator=g) >= 0.1).float()
        torch.testing.assert_close(model.calls[0][3], keep)
        torch.testing.assert_close(model.calls[0][2], labels)
    # the true velocity costs nothing
    oracle = Recorder(noise - x0)
    assert float(stage_loss(oracle, x0, labels, config, torch.Generator().manual_seed(7))) == 0.0


def test_flow_objective_is_refused_for_the_denoiser_and_unknown_names() -> None:
    with pytest.raises(ValueError, match="denoiser"):
        replace(stage_defaults("denoiser"), objective="flow")
    with pytest.raises(ValueError, match="objective"):
        TrainConfig(objective="score")
    assert replace(stage_defaults("class"), objective="flow").schedule_config()["type"] == "flow"
    assert stage_defaults("class").schedule_config()["type"] == "ddpm"


def test_x0_and_noise_from_the_true_velocity_are_exact() -> None:
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.rand(3, 1, 28, 28, generator=g, dtype=torch.float64), torch.randn(3, 1, 28, 28, generator=g,
                                                                                       dtype=torch.float64)
    t = torch.tensor([0.1, 0.5, 0.95], dtype=torch.float64)
    x_t = flow_interpolate(x0, t, noise)
    v = flow_target(x0, noise)
    torch.testing.assert_close(v, noise - x0)
    torch.testing.assert_close(predict_x0_from_velocity(x_t, t, v), x0)
    torch.testing.assert_close(predict_noise_from_velocity(x_t, t, v), noise)
    # d x_t / d t is the velocity: a finite difference along the path
    dt = 1e-6
    torch.testing.assert_close((flow_interpolate(x0, t + dt, noise) - x_t) / dt, v, atol=1e-6, rtol=1e-6)
    # the endpoints: t = 0 is the data, t = 1 the noise
    torch.testing.assert_close(flow_interpolate(x0, torch.zeros(3, dtype=torch.float64), noise), x0)
    torch.testing.assert_close(flow_interpolate(x0, torch.ones(3, dtype=torch.float64), noise), noise)


def _single_point_field(target: torch.Tensor):
    """The exact velocity field when the data are one image: v(x_t, t) = (x_t - x0) / t (paths are straight)."""
    return lambda x_t, t: (x_t - target) / t.view(-1, 1, 1, 1)


def test_euler_on_straight_paths_lands_on_the_data_in_any_step_count() -> None:
    target = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    start = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    seen = []
    for steps in (1, 3, 20):
        out = flow_sample(_single_point_field(target), start.shape, steps=steps, x_1=start, on_step=seen.append)
        torch.testing.assert_close(out, target)
    assert flow_times(4) == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert [s.t for s in seen[-20:]][:2] == [1.0, 0.95]
    torch.testing.assert_close(seen[-1].predicted_x0, target)  # every step's x0 estimate is the data


def test_guidance_on_velocities() -> None:
    class TwoBranch(torch.nn.Module):
        def forward(self, x, t, labels, mask):  # conditional 3, unconditional 1
            return torch.where(mask.view(-1, 1, 1, 1) > 0, 3.0, 1.0) * torch.ones_like(x)

    fn = class_velocity_fn(TwoBranch(), torch.tensor([0, 1]), gamma=5.0)
    v = fn(torch.zeros(2, 1, 28, 28), torch.full((2,), 0.5))
    torch.testing.assert_close(v, torch.full((2, 1, 28, 28), 1.0 + 5.0 * 2.0))


class StraightToClass(torch.nn.Module):
    """A class 'UNet' whose velocity is the exact field towards one image per class: (x - level_c) / t."""

    num_classes = 10

    def forward_class_vector(self, x: torch.Tensor, t: torch.Tensor, class_vector: torch.Tensor) -> torch.Tensor:
        levels = class_vector.to(x.dtype) @ (0.02 * torch.arange(10, dtype=x.dtype))  # (N,) 0 for 'no class'
        return (x - levels.view(-1, 1, 1, 1)) / t.view(-1, 1, 1, 1)


def test_flow_adapter_through_our_loop_follows_the_velocity_to_the_guided_target() -> None:
    """The loop's flow-euler run lands on the straight path's end, and each step's recorded x0 is it.

    Guided velocity v_u + g (v_c - v_u) = (x - g level_c) / t is the straight field towards g level_c, so with
    g = 5 the digit '3' (level 0.06) lands on 0.30 everywhere, whatever the step count."""
    from generator.diffusion.sampling import sample
    from generator.models.digits import DigitsFlowAdapter

    adapter = DigitsFlowAdapter(StraightToClass(), {"stage": "class", "hidden": 4, "objective": "flow"})
    assert adapter.prediction_type == "flow" and adapter.default_scheduler == "flow-euler"
    for steps in (2, 7):
        scheduler = adapter.make_scheduler()
        scheduler.set_timesteps(steps)
        noise = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(steps))
        records = []
        out = sample(adapter, adapter.encode_prompts(["3", "0"]), scheduler, noise * scheduler.init_noise_sigma,
                     guidance=5.0, on_step=records.append)
        torch.testing.assert_close(out, torch.stack([torch.full((1, 28, 28), 0.30), torch.zeros(1, 28, 28)]),
                                   atol=1e-5, rtol=0)
        assert len(records) == steps and records[0].sigma == pytest.approx(1.0, abs=1e-6)
        for record in records:
            torch.testing.assert_close(record.predicted_x0[0], torch.full((1, 28, 28), 0.30), atol=1e-4, rtol=0)
            # the loop's velocity (eps - x0) is the field's at the flow state
            sigma = record.sigma
            if sigma < 0.999:
                torch.testing.assert_close(record.velocity[0], (record.flow_x_t[0] - 0.30) / sigma, atol=1e-3,
                                           rtol=1e-3)


def test_a_flow_run_ships_its_snapshots_while_running_and_when_done(tmp_path) -> None:
    import json

    from generator.builtin.digits.train import train_digits
    from generator.builtin.digits.weights import load_digits_unet, ship_digits_run

    g = torch.Generator().manual_seed(0)
    images, labels = (torch.rand(32, 28, 28, generator=g) * 255).to(torch.uint8), torch.arange(32) % 10
    config = replace(stage_defaults("class"), objective="flow", hidden=4, epochs=2, batch_size=16,
                     snapshot_epochs=(1, 2), checkpoint_every_steps=100)
    train_digits(config, images, labels, tmp_path / "run", max_steps=3)  # epoch 1 done, epoch 2 under way
    shipped = ship_digits_run(tmp_path / "run", tmp_path / "ship", {"command": "test"})
    assert shipped["snapshot_epochs"] == [1] and "1 of 2 epochs" in shipped["in_progress"]
    assert shipped["objective"] == "flow" and shipped["schedule"]["type"] == "flow"
    assert len(json.loads((tmp_path / "ship" / "losses.json").read_text())["step_losses"]) == 3
    train_digits(config, images, labels, tmp_path / "run", resume=True)
    done = ship_digits_run(tmp_path / "run", tmp_path / "ship", {"command": "test"})
    assert done["snapshot_epochs"] == [1, 2] and "in_progress" not in done and done["epochs_completed"] == 2
    model, read = load_digits_unet(tmp_path / "ship")
    assert read["objective"] == "flow" and type(model).__name__ == "ClassConditionalUNet"
