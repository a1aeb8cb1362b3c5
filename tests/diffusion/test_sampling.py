"""Our denoising loop against diffusers' own pipelines, and predicted x0 against its closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generator.diffusion.sampling import StepRecord, initial_noise, predicted_x0, sample
from generator.models.schedulers import SCHEDULERS, alpha_bar_at, make_scheduler

PROMPT = "a smiling, red cat chewing gum"


def _pipeline_image(adapter, scheduler_name: str, guidance: float, steps: int = 6) -> np.ndarray:
    pipeline = adapter.pipeline
    original = pipeline.scheduler
    pipeline.scheduler = adapter.make_scheduler(scheduler_name)
    try:
        out = pipeline(
            PROMPT, num_inference_steps=steps, guidance_scale=guidance,
            generator=torch.Generator().manual_seed(3), output_type="np",
        )
    finally:
        pipeline.scheduler = original
    return out.images[0]


def _our_image(adapter, scheduler_name: str, guidance: float, steps: int = 6, on_step=None) -> np.ndarray:
    scheduler = adapter.make_scheduler(scheduler_name)
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(3)
    noise = initial_noise(adapter, 1, adapter.default_width, adapter.default_height, generator)
    with torch.no_grad():
        latents = sample(
            adapter, adapter.encode_prompts([PROMPT]), scheduler, noise * scheduler.init_noise_sigma,
            guidance=guidance, generator=generator, on_step=on_step,
        )
        return adapter.decode(latents)[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("scheduler_name", list(SCHEDULERS))
def test_loop_matches_stable_diffusion_pipeline(tiny_sd, scheduler_name):
    # Same model, seed, scheduler and guidance: the final images agree to 1e-5 (float32 round-off only).
    ours = _our_image(tiny_sd, scheduler_name, guidance=7.5)
    theirs = _pipeline_image(tiny_sd, scheduler_name, guidance=7.5)
    assert ours.shape == theirs.shape == (64, 64, 3)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_loop_matches_pipeline_without_guidance(tiny_sd):
    np.testing.assert_allclose(_our_image(tiny_sd, "euler", 1.0), _pipeline_image(tiny_sd, "euler", 1.0), atol=1e-5)


def test_loop_matches_sdxl_pipeline(tiny_sdxl):
    np.testing.assert_allclose(_our_image(tiny_sdxl, "euler", 5.0), _pipeline_image(tiny_sdxl, "euler", 5.0), atol=1e-5)


def test_loop_reports_every_step_with_vp_quantities(tiny_sd):
    records: list[StepRecord] = []
    _our_image(tiny_sd, "euler", 7.5, steps=5, on_step=records.append)
    assert [r.index for r in records] == [0, 1, 2, 3, 4]
    for r in records:
        # x_t = sqrt(a) x0 + sqrt(1 - a) eps holds for what is reported, whatever the scheduler's own scaling
        rebuilt = r.alpha_bar**0.5 * r.predicted_x0 + (1 - r.alpha_bar) ** 0.5 * r.noise_estimate
        torch.testing.assert_close(rebuilt, r.x_t, atol=1e-4, rtol=1e-4)
    assert records[0].x_t.std() == pytest.approx(1.0, abs=0.2)  # the first x_t is (almost) pure noise


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_predicted_x0_closed_form(prediction_type):
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 4, 8, 8, generator=generator)
    eps = torch.randn(2, 4, 8, 8, generator=generator)
    alpha_bar = 0.3
    x_t = alpha_bar**0.5 * x0 + (1 - alpha_bar) ** 0.5 * eps
    output = {
        "epsilon": eps,
        "v_prediction": alpha_bar**0.5 * eps - (1 - alpha_bar) ** 0.5 * x0,  # v = a eps - s x0
        "sample": x0,
    }[prediction_type]
    torch.testing.assert_close(predicted_x0(output, x_t, alpha_bar, prediction_type), x0, atol=1e-5, rtol=1e-5)


def test_predicted_x0_matches_scheduler_for_v_prediction():
    # DDIM's own pred_original_sample for a v-prediction model agrees with ours at every timestep.
    from generator.models.testing.pipelines import SD_SCHEDULE

    scheduler = make_scheduler("ddim", {**SD_SCHEDULE, "prediction_type": "v_prediction"})
    scheduler.set_timesteps(4)
    generator = torch.Generator().manual_seed(1)
    x_t, v = torch.randn(1, 4, 8, 8, generator=generator), torch.randn(1, 4, 8, 8, generator=generator)
    for t in scheduler.timesteps:
        expected = scheduler.step(v, t, x_t).pred_original_sample
        ours = predicted_x0(v, x_t, alpha_bar_at(scheduler, t), "v_prediction")
        torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_alpha_bar_interpolates_between_training_timesteps():
    from generator.models.testing.pipelines import SD_SCHEDULE

    scheduler = make_scheduler("euler", SD_SCHEDULE)
    assert alpha_bar_at(scheduler, 500) == pytest.approx(float(scheduler.alphas_cumprod[500]))
    assert float(scheduler.alphas_cumprod[501]) < alpha_bar_at(scheduler, 500.5) < float(scheduler.alphas_cumprod[500])
