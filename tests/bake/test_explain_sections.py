"""The guidance, schedule and text-encoder records of a real (tiny) bake, and the figures rendered from them.

The schedule figure marks exactly the timesteps the sampler visits; the guidance view's sheets follow the
trajectory frame for frame and its guided sheet is the pipeline's own (the same bytes); beta-sum staircases
touch the original schedule's running beta sum at every corner.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from generator.manifest.schema import schema_errors

PROMPTS = """
model: testing:tiny-sd
defaults: {steps: 3, guidance: 5, daam: false, width: 64, height: 64, preview_size: 32, jumps: false}
prompts:
  - id: euler
    text: a smiling, red cat chewing gum
    scheduler: euler
    jumps: {every: 1, steps: [2], method: beta-sum}
  - id: ddim-one
    text: two dogs playing in the park
    scheduler: ddim
    steps: 4
    guidance: 1
"""


@pytest.fixture(scope="module")
def baked(tmp_path_factory, tiny_sd):
    """Bake and render the two prompts; returns the generated folder."""
    import torch

    from generator.bake.runner import bake
    from generator.render import render_site
    from generator.spec.prompt_set import load_prompt_set

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("explain")
    (root / "prompts.yaml").write_text(PROMPTS)
    (root / "site" / "assets").mkdir(parents=True)
    bake(load_prompt_set(root / "prompts.yaml"), root / "site" / "generated", adapter=tiny_sd)
    render_site(root / "site" / "generated", root / "site")
    return root / "site" / "generated"


def _manifest(generated: Path, pid: str) -> dict:
    return json.loads((generated / "prompts" / f"{pid}.json").read_text())


def _sampler_timesteps(adapter, name: str, steps: int) -> list[float]:
    scheduler = adapter.make_scheduler(name)
    scheduler.set_timesteps(steps)
    return [float(t) for t in scheduler.timesteps]


def test_sections_validate_and_follow_the_trajectory(baked):
    euler, ddim = _manifest(baked, "euler"), _manifest(baked, "ddim-one")
    assert schema_errors(euler) == [] and schema_errors(ddim) == []
    guidance = euler["guidance"]
    assert guidance["decomposed"] and guidance["scale"] == 5 and guidance["conditioning"] == "text"
    sheets = ("uncond_noise", "cond_noise", "noise_difference", "guided_noise", "uncond_x0", "cond_x0", "x0_difference")
    assert all(guidance[k]["count"] == euler["trajectory"]["steps"] + 1 for k in sheets)
    assert guidance["guided_noise"]["src"] == euler["pipeline"]["noise"]["src"]  # the loop's own estimate, same bytes
    assert len(guidance["rms"]["difference"]) == 3 and all(v > 0 for v in guidance["rms"]["difference"])
    assert ddim["guidance"] == {"scale": 1.0, "conditioning": "text", "decomposed": False}
    assert euler["schedule"]["scheduler"]["kind"] == "euler" and ddim["schedule"]["scheduler"]["kind"] == "ddim"
    assert [u["t"] for u in ddim["schedule"]["updates"]] == ddim["trajectory"]["timesteps"]
    assert euler["tokens"]["encoder"] == {"classes": ["CLIPTextModel"], "family": "clip", "attention": "causal",
                                          "padding_masked": False}


@pytest.mark.parametrize("pid, name, steps", [("euler", "euler", 3), ("ddim-one", "ddim", 4)])
def test_schedule_figure_marks_the_samplers_timesteps(baked, tiny_sd, pid, name, steps):
    page = (baked / "pages" / f"{pid}.md").read_text()
    figure = page[page.index(f'id="schedule-{pid}"'):]
    figure = figure[:figure.index("</figure>")]
    wanted = _sampler_timesteps(tiny_sd, name, steps)
    svgs = re.findall(r"<svg class=\"atlas-chart [^>]*>.*?</svg>", figure, re.S)
    assert len(svgs) == 2  # alpha-bar and SNR
    for svg in svgs:
        marks = re.findall(r'<circle class="atlas-chart-step" data-step="(\d+)" data-column="\d+" data-t="([^"]+)" '
                           r'cx="([^"]+)"', svg)
        assert [float(t) for _, t, _ in marks] == pytest.approx(wanted)
        assert [int(s) for s, _, _ in marks] == list(range(steps))
        left, _, width, _ = (float(v) for v in re.search(r'data-plot="([^"]+)"', svg).group(1).split())
        x_max = float(re.search(r'data-x-max="([^"]+)"', svg).group(1))
        for _, t, cx in marks:  # each mark sits at its t on the axis
            assert float(cx) == pytest.approx(left + float(t) / x_max * width, abs=0.06)


def test_beta_sum_staircases_touch_the_original_schedule():
    from generator.experiments.prompt.jumps import beta_sum_plan
    from generator.models.schedulers import make_scheduler
    from generator.render.charts import cumulative_betas, staircase

    config = json.loads((Path(__file__).resolve().parents[2] / "generator" / "weights" / "shapes" / "scheduler"
                         / "scheduler_config.json").read_text())
    scheduler = make_scheduler("ddim", config)
    original = cumulative_betas([float(b) for b in scheduler.betas])
    for start in (960, 500, 120):
        plan = beta_sum_plan(scheduler, start, 4)
        corners = staircase(plan.timesteps, plan.betas)
        tops = corners[2::2]  # after each rise
        assert len(tops) == len(plan.betas) and tops[-1][0] == start
        for t, height in tops:
            assert height == pytest.approx(original[round(t)], rel=1e-9)


def test_beta_sum_chart_is_drawn_on_the_page(baked):
    page = (baked / "pages" / "euler.md").read_text()
    jumps = page[page.index('id="jumps-euler"'):]
    chart = re.search(r'<svg class="atlas-chart atlas-chart-betasum".*?</svg>', jumps, re.S).group(0)
    assert chart.count('class="atlas-chart-jump"') == len(_manifest(baked, "euler")["jumps"]["points"])


def test_shapes_text_encoder_is_recorded_bidirectional_with_masked_padding():
    from generator.bake.prompt.tokens import encoder_facts
    from generator.models import load_model

    shapes = load_model("embedded:shapes", device="cpu", dtype="fp32")
    assert encoder_facts(shapes) == {"classes": ["T5EncoderModel"], "family": "t5", "attention": "bidirectional",
                                     "padding_masked": True}
