"""Jump previews: DDIM jumps against predicted x0 and diffusers' DDIM, beta-sum schedules, batching."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from generator.diffusion.sampling import guided_output
from generator.experiments.prompt.jumps import JumpStart, beta_sum_plan, jump_points, run_jumps
from generator.experiments.prompt.trajectory import TrajectoryRequest, run_trajectories

GUIDANCE = 7.5


@pytest.fixture(scope="module")
def setup(tiny_sd):
    request = TrajectoryRequest(("a red cat",), 3, GUIDANCE, 0, 64, 64, "ddim")
    (trajectory,) = run_trajectories(tiny_sd, request)
    scheduler = tiny_sd.make_scheduler("ddim")
    scheduler.set_timesteps(3)
    return trajectory, tiny_sd.encode_prompts(["a red cat"]), scheduler


def starts_of(trajectory, steps, known=False):
    return [
        JumpStart(i, trajectory.timesteps[i], trajectory.noisy_latents[i],
                  trajectory.predicted_latents[i] if known else None)
        for i in steps
    ]


def test_one_step_ddim_jump_is_the_predicted_x0(tiny_sd, setup):
    trajectory, embeddings, scheduler = setup
    results = run_jumps(tiny_sd, embeddings, scheduler, starts_of(trajectory, [0, 1, 2]), [1], guidance=GUIDANCE)
    for result in results:
        assert result.plan.timesteps == (trajectory.timesteps[result.step],)
        # recomputed in a batch of 3 with per-row timesteps: equal up to float32 batching noise
        torch.testing.assert_close(result.x0, trajectory.predicted_latents[result.step], atol=1e-4, rtol=1e-4)


def test_ddim_jump_equals_diffusers_ddim_over_the_same_timesteps(tiny_sd, setup):
    _, embeddings, scheduler = setup
    x_t = torch.randn((4, 8, 8), generator=torch.Generator().manual_seed(3))
    (result,) = run_jumps(tiny_sd, embeddings, scheduler, [JumpStart(0, 999.0, x_t)], [4], guidance=GUIDANCE)

    reference = DDIMScheduler.from_config(scheduler.config, timestep_spacing="trailing", set_alpha_to_one=True)
    reference.set_timesteps(4)
    assert result.plan.timesteps == tuple(float(t) for t in reference.timesteps)  # 999, 749, 499, 249
    latents = x_t[None]
    with torch.inference_mode():
        for t in reference.timesteps:
            output = guided_output(tiny_sd, latents, t, embeddings, GUIDANCE)
            latents = reference.step(output, t, latents, eta=0.0, return_dict=False)[0]
    torch.testing.assert_close(result.x0, latents[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("config", [
    {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "num_train_timesteps": 1000},
    {"beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02, "num_train_timesteps": 300},
])
def test_beta_sum_betas_sum_to_the_remaining_betas_and_lie_in_0_1(config):
    scheduler = DDPMScheduler(**config)
    betas = scheduler.betas.double()
    for start in (config["num_train_timesteps"] - 1, 500, 123, 7, 0):
        if start >= config["num_train_timesteps"]:
            continue
        for jumps in (1, 2, 4, 16):
            plan = beta_sum_plan(scheduler, float(start), jumps)
            assert sum(plan.betas) == pytest.approx(float(betas[: start + 1].sum()), rel=1e-12, abs=1e-15)
            assert all(0 < b < 1 for b in plan.betas), plan.betas
            assert min(jumps, start + 1) <= len(plan.betas) <= start + 1
            assert plan.timesteps[0] == start and list(plan.timesteps) == sorted(plan.timesteps, reverse=True)
            assert plan.path_alpha_bars[-1] == 1.0 and len(plan.path_alpha_bars) == len(plan.timesteps) + 1
    # the full SD-like remaining sum (about 4.6) cannot fit in one beta below 1: J is raised
    if config["num_train_timesteps"] == 1000:
        assert len(beta_sum_plan(scheduler, 999.0, 1).betas) >= 5


def test_batched_jumps_equal_unbatched_and_cost_max_j_calls(tiny_sd, setup, monkeypatch):
    trajectory, embeddings, scheduler = setup
    calls = []
    original = tiny_sd.denoise

    def counting(model_input, timestep, emb):
        calls.append(model_input.shape[0])
        return original(model_input, timestep, emb)

    monkeypatch.setattr(tiny_sd, "denoise", counting)
    for method, steps, jumps in (("ddim", [0, 2], [1, 3]), ("beta-sum", [1], [2])):
        starts = starts_of(trajectory, steps, known=True)
        calls.clear()
        batched = run_jumps(tiny_sd, embeddings, scheduler, starts, jumps, method=method, guidance=GUIDANCE, seed=5)
        batched_calls = list(calls)
        calls.clear()
        single = run_jumps(tiny_sd, embeddings, scheduler, starts, jumps, method=method, guidance=GUIDANCE, seed=5,
                           batched=False)
        for a, b in zip(batched, single):
            assert (a.step, a.requested_steps) == (b.step, b.requested_steps)
            torch.testing.assert_close(a.x0, b.x0, atol=1e-4, rtol=1e-4)
        longest = max(len(r.plan.timesteps) for r in batched)
        assert len(batched_calls) == longest - 1  # the first step reuses the trajectory's prediction
        assert len(calls) == sum(len(r.plan.timesteps) - 1 for r in batched)
        # every branch with a second step goes into the first call, times CFG's two halves
        assert batched_calls[0] == 2 * sum(len(r.plan.timesteps) > 1 for r in batched)
        if method == "ddim":
            assert batched_calls == [4, 4]
            for r in batched:
                if r.requested_steps == 1:  # reused prediction: exactly the trajectory's
                    assert torch.equal(r.x0, trajectory.predicted_latents[r.step])


def test_jump_points():
    assert jump_points(12, 5) == [0, 5, 10]
    assert jump_points(12, None, [3, 11, 12, -1]) == [3, 11]
    assert jump_points(4, 2, [3]) == [0, 2, 3]
