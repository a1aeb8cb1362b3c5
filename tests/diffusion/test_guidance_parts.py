"""The loop reports both classifier-free guidance branches, and they recombine to the guided estimate it stepped with.

On a real tiny Stable Diffusion (epsilon prediction, latent) and on the shipped shapes model (v-prediction,
pixels): u + gamma (c - u) is the guided output bit for bit (so its predicted x0 is the record's, exactly), and the
trajectory's per-branch noise estimates recombine to the guided noise estimate the pipeline overview shows.
Reporting the branches changes no result: the final latents equal those of the plain guided estimator.
"""

from __future__ import annotations

import pytest
import torch

from generator.bake.prompt.pipeline import noise_estimates
from generator.diffusion.sampling import StepRecord, initial_noise, noise_from_x0, predicted_x0, sample
from generator.experiments.prompt.trajectory import TrajectoryRequest, run_trajectories
from generator.models.base import Embeddings

PROMPTS = {"testing:tiny-sd": "a smiling, red cat chewing gum", "embedded:shapes": "a red circle above a blue square"}


@pytest.fixture(scope="module")
def shapes():
    """The shipped shapes model on the CPU."""
    from generator.models import load_model

    return load_model("embedded:shapes", device="cpu", dtype="fp32")


@pytest.fixture(params=["testing:tiny-sd", "embedded:shapes"])
def adapter(request, tiny_sd, shapes):
    return tiny_sd if request.param == "testing:tiny-sd" else shapes


def _run(adapter, guidance: float, scheduler_name: str = "ddim", steps: int = 4, estimator=None):
    """Sample one prompt; return the step records and the final latents."""
    scheduler = adapter.make_scheduler(scheduler_name)
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(5)
    noise = initial_noise(adapter, 1, adapter.default_width, adapter.default_height, generator)
    records: list[StepRecord] = []
    embeddings = adapter.encode_prompts([PROMPTS[adapter.id]])
    if estimator == "plain":  # the guided estimate written out as the loop computed it before it reported branches

        def estimator(model_input, timestep):
            both = adapter.denoise(torch.cat([model_input, model_input]), timestep,
                                   Embeddings.cat([embeddings.uncond, embeddings.cond]))
            uncond, cond = both.chunk(2)
            return uncond + guidance * (cond - uncond)

    with torch.inference_mode():
        final = sample(adapter, embeddings, scheduler, noise * scheduler.init_noise_sigma, guidance=guidance,
                       generator=generator, on_step=records.append, estimator=estimator)
    return records, final


def test_branches_recombine_exactly_to_the_guided_estimate(adapter, one_thread):
    gamma = 3.0
    records, _ = _run(adapter, gamma)
    assert len(records) == 4
    for r in records:
        parts = r.guidance
        assert parts is not None and parts.scale == gamma
        assert parts.uncond.shape == parts.cond.shape == r.x_t.shape
        guided = parts.uncond + gamma * (parts.cond - parts.uncond)
        # the very output the loop stepped with: its clean estimate is the record's, bit for bit
        assert torch.equal(predicted_x0(guided, r.x_t, r.alpha_bar, adapter.prediction_type), r.predicted_x0)
        # and in the noise parametrisation the record reports
        eps = {name: noise_from_x0(predicted_x0(out, r.x_t, r.alpha_bar, adapter.prediction_type), r.x_t, r.alpha_bar)
               for name, out in (("u", parts.uncond), ("c", parts.cond))}
        torch.testing.assert_close(eps["u"] + gamma * (eps["c"] - eps["u"]), r.noise_estimate, atol=1e-4, rtol=1e-4)
        assert not torch.equal(parts.uncond, parts.cond)  # two different branches, not one copied


def test_reporting_the_branches_changes_no_result(adapter, one_thread):
    _, reported = _run(adapter, 3.0, scheduler_name="ddpm")
    _, plain = _run(adapter, 3.0, scheduler_name="ddpm", estimator="plain")
    assert torch.equal(reported, plain)


@pytest.mark.parametrize("gamma", [0.0, 1.0])
def test_guidance_0_and_1_have_no_decomposition(tiny_sd, gamma, one_thread):
    records, _ = _run(tiny_sd, gamma, steps=2)
    assert all(r.guidance is None for r in records)


def test_trajectory_keeps_both_branches_per_step(adapter, one_thread):
    steps, gamma = 3, 4.0
    request = TrajectoryRequest((PROMPTS[adapter.id],), steps, gamma, 1, adapter.default_width,
                                adapter.default_height, "euler")
    (trajectory,) = run_trajectories(adapter, request)
    trace = trajectory.guidance
    assert trace is not None and trace.scale == gamma
    assert trace.uncond_noise.shape == trace.cond_x0.shape == trajectory.noisy_latents[:steps].shape
    guided = trace.uncond_noise + gamma * (trace.cond_noise - trace.uncond_noise)
    # float32 round-off only: eps is re-derived as (x_t - sqrt(a) x0) / sqrt(1 - a), which at the last step
    # (a ~ 0.999) scales a 1e-5 difference of x0 by 1 / sqrt(1 - a) ~ 30
    torch.testing.assert_close(guided, noise_estimates(trajectory), atol=1e-3, rtol=1e-4)
    x0 = trace.uncond_x0 + gamma * (trace.cond_x0 - trace.uncond_x0)
    torch.testing.assert_close(x0, trajectory.predicted_latents[:steps], atol=1e-4, rtol=1e-4)
