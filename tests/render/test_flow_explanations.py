"""Flow-matching models (SD3, Flux) are explained as flow matching; noise-prediction models are not.

A fixture page gets the sections a tiny-sd3 bake writes (prediction type "flow", flow-euler with SD3's shift,
an SD3 transformer); the other page stays an epsilon UNet with DDIM. The pipeline overview, the math panel
and the schedule caption must speak of velocity, straight paths and sigma on the first, and not on the second.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakesite import between, page_text

from generator.render import render_site
from generator.render.charts import fmt

SD3_SCHEDULE = {"num_train_timesteps": 1000, "shift": 3.0}
SD_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
               "prediction_type": "epsilon", "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1}


def _schedule(name: str, config: dict, steps: int) -> dict:
    """The schedule section a bake writes (generator/bake/prompt/schedule.py)."""
    from generator.bake.prompt.schedule import schedule_section
    from generator.models.schedulers import make_scheduler

    scheduler = make_scheduler(name, config)
    scheduler.set_timesteps(steps)
    return schedule_section(scheduler)


def _dress(site: Path, pid: str, *, flow: bool) -> dict:
    """A fixture manifest with the pipeline and schedule sections of a flow (SD3) or an epsilon (SD) bake."""
    path = site / "generated" / "prompts" / f"{pid}.json"
    manifest = json.loads(path.read_text())
    steps = manifest["trajectory"]["steps"]
    scheduler = "flow-euler" if flow else "ddim"
    manifest["settings"]["scheduler"] = scheduler
    manifest["model"]["prediction_type"] = "flow" if flow else "epsilon"
    manifest["pipeline"] = {"noise": manifest["trajectory"]["noisy"], "latents": manifest["trajectory"]["noisy"],
                            "latent_shape": [16, 8, 8], "space": "latent", "conditioning": "text",
                            "denoiser": "SD3Denoiser" if flow else "UNet2DConditionModel",
                            "decoder": "AutoencoderKL"}
    manifest["schedule"] = _schedule(scheduler, SD3_SCHEDULE if flow else SD_SCHEDULE, steps)
    path.write_text(json.dumps(manifest))
    return manifest


@pytest.fixture
def pages(site):
    flow = _dress(site, "red-cat", flow=True)
    _dress(site, "two-dogs", flow=False)
    render_site(site / "generated", site)
    return page_text(site, "red-cat"), page_text(site, "two-dogs"), flow


def test_denoiser_panel_speaks_of_velocity_and_straight_paths_for_flow_only(pages):
    flow, epsilon, _ = pages
    flow_panel = between(flow, 'data-panel="loop denoiser"', "</section>")
    eps_panel = between(epsilon, 'data-panel="loop denoiser"', "</section>")
    assert "predicts the velocity v = ε − x<sub>0</sub>" in flow_panel and "straight line" in flow_panel
    assert 'data-prediction="flow"' in flow_panel and "x̂<sub>0</sub> = x<sub>σ</sub> − σ v̂" in flow_panel
    assert "predicts the noise ε in it" in eps_panel and "velocity" not in eps_panel and "σ" not in eps_panel


def test_flow_math_panel_prints_the_flow_euler_step_with_this_steps_numbers(pages):
    flow, epsilon, manifest = pages
    math = between(flow, 'data-scheduler="', "</p>")
    assert math.startswith('data-scheduler="flow-euler"') and 'data-update="flow-euler"' in math
    assert "x<sub>σ′</sub> = x<sub>σ</sub> + (σ′ − σ) v̂" in math and "shifted by 3.0" in math
    updates = manifest["schedule"]["updates"]
    assert len(updates) == manifest["trajectory"]["steps"]
    series = [fmt(u["dt"]) for u in updates]
    assert f'data-step-values="{"|".join(series + series[-1:])}">{series[0]}</span>' in math
    assert float(series[0]) < 0  # toward the image
    scheduler_words = between(flow, 'data-panel="scheduler"', "</section>")
    assert "straight line along the predicted velocity" in scheduler_words and "generic" not in scheduler_words
    eps_math = between(epsilon, 'data-scheduler="', "</p>")
    assert eps_math.startswith('data-scheduler="ddim"') and "v̂" not in eps_math and "flow" not in eps_math.lower()


def test_guidance_combines_velocities_for_flow_and_noise_estimates_otherwise(pages):
    flow, epsilon, _ = pages
    flow_math = between(between(flow, 'data-panel="guidance"', "</section>"), 'class="atlas-flow-math"', "</p>")
    eps_math = between(between(epsilon, 'data-panel="guidance"', "</section>"), 'class="atlas-flow-math"', "</p>")
    assert "v = v<sub>uncond</sub>" in flow_math and "ε" not in flow_math
    assert "ε = ε<sub>uncond</sub>" in eps_math and "v<sub>" not in eps_math


def test_schedule_caption_speaks_of_sigma_for_flow_and_of_betas_otherwise(pages):
    flow, epsilon, _ = pages
    flow_caption = between(between(flow, 'id="schedule-red-cat"', "</figure>"), "<figcaption", "</figcaption>")
    eps_caption = between(between(epsilon, 'id="schedule-two-dogs"', "</figure>"), "<figcaption", "</figcaption>")
    assert "flow-matching model" in flow_caption and "x<sub>σ</sub> = (1 − σ) x<sub>0</sub> + σ ε" in flow_caption
    assert "shifted (shift 3.0)" in flow_caption and "betas)" not in flow_caption
    assert "scaled linear betas" in eps_caption and "σ" not in eps_caption and "flow" not in eps_caption


def test_pipeline_caption_and_noise_panel_name_flow_matching_for_flow_only(pages):
    flow, epsilon, _ = pages
    flow_figure = between(flow, 'id="pipeline-red-cat"', "</figure>")
    eps_figure = between(epsilon, 'id="pipeline-two-dogs"', "</figure>")
    assert "text-to-image flow-matching model works" in flow_figure and "straight path" in flow_figure
    assert "text-to-image diffusion model works" in eps_figure and "straight path" not in eps_figure
    assert "σ = 1 (all noise)" in between(flow_figure, 'data-panel="noise"', "</section>")
    assert "σ = 1" not in eps_figure
    assert ">Transformer predicts velocity v<" in flow_figure and ">UNet predicts noise ε<" in eps_figure
