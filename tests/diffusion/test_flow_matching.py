"""Flow matching through our one loop and the jumps, against closed forms under formula velocity fields.

Oracle field v(x, sigma) = (x - X0) / sigma: the true velocity of the straight path to X0, so the predicted
x0 is X0 at every step, the velocity is (x_flow - X0) / sigma, and any Euler leap lands on X0. Linear field
v = x_flow: Euler steps multiply by (1 + sigma' - sigma), which the loop and the jumps must reproduce.
"""

from __future__ import annotations

import pytest
import torch

from generator.diffusion.sampling import sample
from generator.experiments.prompt.jumps import JumpStart, run_jumps
from generator.models.base import Capabilities, Embeddings, PromptEmbeddings
from generator.models.schedulers import alpha_bar_at, make_scheduler, scale_model_input

FLOW_CONFIG = {"num_train_timesteps": 1000, "shift": 1.0}
TARGET = torch.linspace(-1, 1, 2 * 3 * 4).view(1, 2, 3, 4)


class FormulaFlow:
    """A flow-matching 'model' whose velocity is a formula of the flow state and sigma."""

    prediction_type = "flow"
    device = torch.device("cpu")
    dtype = torch.float32
    capabilities = Capabilities("text", True, False, 1, None)

    def __init__(self, field):
        self.field = field

    def denoise(self, model_input, timestep, embeddings):
        sigma = torch.as_tensor(timestep, dtype=torch.float32).flatten() / 1000
        sigma = sigma.view(-1, 1, 1, 1) if sigma.numel() > 1 else sigma
        x_flow = model_input * ((1 - sigma) ** 2 + sigma**2).sqrt()  # the adapters' conversion
        return self.field(x_flow, sigma)


def _embeddings():
    empty = Embeddings(torch.zeros(1, 1, 1))
    return PromptEmbeddings(empty, empty, ("",))


def oracle(x_flow, sigma):
    return (x_flow - TARGET) / sigma


def test_loop_records_closed_form_x0_and_velocity():
    scheduler = make_scheduler("flow-euler", FLOW_CONFIG)
    scheduler.set_timesteps(5)
    noise = torch.randn(1, 2, 3, 4, generator=torch.Generator().manual_seed(0))
    records = []
    final = sample(FormulaFlow(oracle), _embeddings(), scheduler, noise * scheduler.init_noise_sigma, guidance=1.0,
                   on_step=records.append)
    assert len(records) == 5 and records[0].sigma == pytest.approx(1.0)
    for record in records:
        assert torch.allclose(record.predicted_x0, TARGET, atol=1e-5)
        # sigma * v = x_flow - x0: dividing by the last sigma (0.001) would turn float32 rounding into 1e-3 errors
        assert torch.allclose(record.velocity * record.sigma, record.flow_x_t - TARGET, atol=1e-5)
        assert record.sigma == pytest.approx(float(record.timestep) / 1000, abs=1e-6)
    assert torch.allclose(records[0].flow_x_t, noise, atol=1e-6)  # sigma 1: pure noise
    assert torch.allclose(final, TARGET, atol=1e-5)  # straight path: Euler is exact


def test_loop_steps_euler_in_sigma():
    scheduler = make_scheduler("flow-euler", FLOW_CONFIG)
    scheduler.set_timesteps(4)
    start = torch.randn(1, 2, 3, 4, generator=torch.Generator().manual_seed(1))
    final = sample(FormulaFlow(lambda x, sigma: x), _embeddings(), scheduler, start, guidance=1.0)
    sigmas = scheduler.sigmas.tolist()
    expected = start.clone()
    for sigma, sigma_next in zip(sigmas, sigmas[1:]):
        expected = expected * (1 + sigma_next - sigma)
    assert torch.allclose(final, expected, atol=1e-6)
    assert not torch.allclose(final, start)


@pytest.mark.parametrize("jumps", [1, 2, 3])
def test_jumps_are_straight_euler_leaps(jumps):
    scheduler = make_scheduler("flow-euler", FLOW_CONFIG)
    scheduler.set_timesteps(10)
    timestep = float(scheduler.timesteps[4])
    sigma = timestep / 1000
    x_flow = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(2))
    x_t = scale_model_input(scheduler, x_flow, torch.tensor(timestep))
    assert alpha_bar_at(scheduler, timestep) == pytest.approx((1 - sigma) ** 2 / ((1 - sigma) ** 2 + sigma**2))
    start = JumpStart(4, timestep, x_t)
    linear, = run_jumps(FormulaFlow(lambda x, s: x), _embeddings(), scheduler, [start], [jumps], guidance=1.0)
    sigmas = [sigma * (1 - k / jumps) for k in range(jumps)] + [0.0]
    expected = x_flow.clone()
    for now, after in zip(sigmas, sigmas[1:]):
        expected = expected * (1 + after - now)  # x' = x + (sigma' - sigma) v, v = x
    assert torch.allclose(linear.x0, expected, atol=1e-5)
    exact, = run_jumps(FormulaFlow(oracle), _embeddings(), scheduler, [start], [jumps], guidance=1.0)
    assert torch.allclose(exact.x0, TARGET[0], atol=1e-5)


def test_families_do_not_mix():
    from generator.errors import UserError

    with pytest.raises(UserError, match="flow-matching"):
        make_scheduler("ddim", FLOW_CONFIG)
    with pytest.raises(UserError, match="noise-prediction"):
        make_scheduler("flow-euler", {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012})


@pytest.mark.parametrize("kind, rows, guidance_input", [("classifier-free", 2, None), ("distilled", 1, 3.5),
                                                        ("none", 1, None)])
def test_guidance_as_each_model_takes_it(kind, rows, guidance_input):
    """SD3: two branches; Flux-dev: one conditional call with the scale as input; Flux-schnell: one, no scale."""
    from dataclasses import replace

    from generator.diffusion.sampling import guided_output

    calls = []

    class Recording(FormulaFlow):
        capabilities = replace(FormulaFlow.capabilities, guidance=kind)

        def denoise(self, model_input, timestep, embeddings):
            calls.append((model_input.shape[0], embeddings.added.get("guidance")))
            return torch.zeros_like(model_input)

    guided_output(Recording(oracle), torch.zeros(1, 2, 3, 4), torch.tensor(500.0), _embeddings(), 3.5)
    assert len(calls) == 1 and calls[0][0] == rows
    scale = calls[0][1]
    assert (scale is None) if guidance_input is None else scale.tolist() == [guidance_input]
