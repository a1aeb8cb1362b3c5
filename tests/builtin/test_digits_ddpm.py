"""DDPM math against closed forms, the sampler with formula denoisers, and classifier-free guidance."""

from __future__ import annotations

import math

import torch

from generator.builtin.digits.ddpm import (
    DDPMSchedule,
    class_noise_fn,
    classifier_free_guidance,
    ddpm_sample,
    posterior_mean_variance,
    predict_x0_from_noise,
    q_sample,
)
from generator.builtin.digits.unet import build_unet

SCHEDULE = DDPMSchedule()


def test_schedule_values() -> None:
    betas, alpha_bars = SCHEDULE.betas, SCHEDULE.alpha_bars
    assert betas.shape == (301,) and betas[0] == 0
    assert math.isclose(float(betas[1]), 1e-4) and math.isclose(float(betas[300]), 0.02)
    expected = 1.0
    for t in range(1, 6):
        expected *= 1 - (1e-4 + (t - 1) * (0.02 - 1e-4) / 299)
    assert math.isclose(float(alpha_bars[5]), expected, rel_tol=1e-12)
    assert 0.04 < float(alpha_bars[300]) < 0.05  # T = 300 leaves ~5% signal variance (the course schedule)


def test_forward_process_closed_form_and_statistics() -> None:
    x0 = torch.full((1, 1, 28, 28), 0.7, dtype=torch.float64)
    noise = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for t in (1, 150, 300):
        abar = float(SCHEDULE.alpha_bars[t])
        x_t = q_sample(x0, torch.tensor([t]), noise, SCHEDULE)
        torch.testing.assert_close(x_t, math.sqrt(abar) * x0 + math.sqrt(1 - abar) * noise)
        torch.testing.assert_close(predict_x0_from_noise(x_t, torch.tensor([t]), noise, SCHEDULE), x0)
    # Marginal statistics over many draws: mean sqrt(abar) x0, variance 1 - abar.
    big = torch.randn(200_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    samples = q_sample(torch.full_like(big, 0.7).reshape(-1, 1, 1, 1), torch.full((200_000,), 100),
                       big.reshape(-1, 1, 1, 1), SCHEDULE)
    abar = float(SCHEDULE.alpha_bars[100])
    assert abs(float(samples.mean()) - math.sqrt(abar) * 0.7) < 0.01
    assert abs(float(samples.var()) - (1 - abar)) < 0.01


def test_posterior_matches_gaussian_product() -> None:
    """q(x_{t-1}|x_t,x_0) from Bayes: N(x_{t-1}; sqrt(abar_{t-1}) x0, 1-abar_{t-1}) N(x_t; sqrt(a_t) x_{t-1}, b_t)."""
    x0 = torch.tensor([0.3], dtype=torch.float64).reshape(1, 1, 1, 1)
    x_t = torch.tensor([-0.4], dtype=torch.float64).reshape(1, 1, 1, 1)
    for t in (2, 50, 300):
        a_t = float(SCHEDULE.alphas[t])
        b_t = float(SCHEDULE.betas[t])
        abar_prev = float(SCHEDULE.alpha_bars[t - 1])
        prior_mean, prior_var = math.sqrt(abar_prev) * 0.3, 1 - abar_prev
        # Product of Gaussians in x_{t-1}: precision adds, mean is precision-weighted.
        precision = 1 / prior_var + a_t / b_t
        var = 1 / precision
        mean = var * (prior_mean / prior_var + math.sqrt(a_t) * -0.4 / b_t)
        got_mean, got_var = posterior_mean_variance(x0, x_t, torch.tensor([t]), SCHEDULE)
        assert math.isclose(float(got_mean), mean, rel_tol=1e-9)
        assert math.isclose(float(got_var), var, rel_tol=1e-9)
    # t = 1: x_0 is known exactly.
    mean, var = posterior_mean_variance(x0, x_t, torch.tensor([1]), SCHEDULE)
    assert float(var) == 0 and math.isclose(float(mean), 0.3)


def test_sampler_with_oracle_denoiser_returns_target() -> None:
    """A denoiser that knows the answer x* predicts eps = (x_t - sqrt(abar) x*) / sqrt(1 - abar): sampling returns x*."""
    target = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def oracle(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = SCHEDULE.alpha_bars[t].reshape(-1, 1, 1, 1)
        return (x_t - abar.sqrt() * target) / (1 - abar).sqrt()

    seen: list[int] = []
    x_T = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    result = ddpm_sample(oracle, (2, 1, 28, 28), SCHEDULE, x_T=x_T, clip_x0=None,
                         on_step=lambda step: seen.append(step.t))
    torch.testing.assert_close(result, target)
    assert seen == list(range(300, 0, -1))


def test_one_step_schedule_with_zero_noise_estimate() -> None:
    """eps_hat = 0 gives x0_hat = x_t / sqrt(abar_t); a 1-step schedule adds no noise, so x_0 = x_1 / sqrt(alpha_1)."""
    schedule = DDPMSchedule(num_timesteps=1, beta_start=0.1, beta_end=0.1)
    x_T = torch.full((1, 1, 28, 28), 0.5, dtype=torch.float64)
    out = ddpm_sample(lambda x, t: torch.zeros_like(x), x_T.shape, schedule, x_T=x_T, clip_x0=None)
    torch.testing.assert_close(out, x_T / math.sqrt(0.9))


def test_sampler_is_deterministic_per_seed() -> None:
    def zero(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    schedule = DDPMSchedule(num_timesteps=10)
    a = ddpm_sample(zero, (1, 1, 28, 28), schedule, generator=torch.Generator().manual_seed(5))
    b = ddpm_sample(zero, (1, 1, 28, 28), schedule, generator=torch.Generator().manual_seed(5))
    c = ddpm_sample(zero, (1, 1, 28, 28), schedule, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_classifier_free_guidance_endpoints() -> None:
    cond, uncond = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -1.0])
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 0.0), uncond)
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 1.0), cond)
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 5.0), uncond + 5 * (cond - uncond))


def test_class_noise_fn_gamma_zero_is_unconditional_and_one_is_conditional() -> None:
    torch.manual_seed(0)
    model = build_unet("class", 8).eval()
    labels = torch.tensor([3, 8])
    x_t = torch.randn(2, 1, 28, 28)
    t = torch.tensor([120, 120])
    t_norm = t.float() / 300
    with torch.no_grad():
        conditional = model(x_t, t_norm, labels, torch.ones(2))
        unconditional = model(x_t, t_norm, labels, torch.zeros(2))
        assert not torch.allclose(conditional, unconditional)
        torch.testing.assert_close(class_noise_fn(model, labels, SCHEDULE, 0.0)(x_t, t), unconditional)
        torch.testing.assert_close(class_noise_fn(model, labels, SCHEDULE, 1.0)(x_t, t), conditional)
        guided = class_noise_fn(model, labels, SCHEDULE, 5.0)(x_t, t)
        torch.testing.assert_close(guided, unconditional + 5 * (conditional - unconditional), atol=1e-5, rtol=1e-5)
