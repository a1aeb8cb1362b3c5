"""The guidance, schedule and text-encoder records of a real (tiny) bake, and the figures rendered from them.

The schedule figure marks exactly the timesteps the sampler visits; the guidance view's sheets follow the
trajectory frame for frame and its guided sheet is the pipeline's own (the same bytes); beta-sum staircases
touch the original schedule's running beta sum at every corner.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from render.plotdata import plots, series

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
    manifest = _manifest(baked, pid)
    alpha_bars, betas = manifest["trajectory"]["alpha_bars"], manifest["schedule"]["betas"]
    charts = plots(figure)
    assert [c["name"] for c in charts] == ["schedule", "snr"]
    for chart in charts:
        marks = series(chart, "step")
        assert chart["spec"]["follow"] == "marks" and marks["kind"] == "points"
        by_step = sorted(zip(marks["marks"], marks["x"], marks["y"]))
        assert [step for step, _, _ in by_step] == list(range(steps))
        assert [t for _, t, _ in by_step] == pytest.approx(wanted)  # each mark at the sampler's own t
        shown = [a if chart["name"] == "schedule" else a / (1 - a) for a in alpha_bars]
        assert [v for _, _, v in by_step] == pytest.approx(shown, rel=1e-5)
        curve = chart["spec"]["series"][0]  # the schedule itself, from the training betas
        product = 1.0
        expected = []
        for beta in betas:
            product *= 1 - beta
            expected.append(product if chart["name"] == "schedule" else product / (1 - product))
        assert curve["y"] == pytest.approx([expected[int(t)] for t in curve["x"]], rel=1e-5)
        assert curve["x"][0] == 0 and curve["x"][-1] == len(betas) - 1
        assert [row[:2] for row in chart["table"][1:]] == [[str(i), f"{t:.4g}"] for i, t in enumerate(wanted)]


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
        stairs = staircase(plan.timesteps, plan.betas)
        tops = stairs[1:]  # the height after each rise, held until the next timestep
        assert stairs[0] == (0.0, 0.0) and len(tops) == len(plan.betas) and tops[-1][0] == start
        assert [t for t, _ in tops] == sorted(float(t) for t in plan.timesteps)
        for t, height in tops:
            assert height == pytest.approx(original[round(t)], rel=1e-9)


def test_beta_sum_chart_is_drawn_on_the_page(baked):
    page = (baked / "pages" / "euler.md").read_text()
    jumps = page[page.index('id="jumps-euler"'):]
    section = _manifest(baked, "euler")["jumps"]
    (chart,) = plots(jumps[:jumps.index("</figure>")], "betasum")
    assert chart["spec"]["follow"] == "column" and chart["attrs"]["jump-steps"] == "2"
    stairs = [s for s in chart["spec"]["series"] if s["kind"] == "steps"]
    assert [s["column"] for s in stairs] == list(range(len(section["points"])))
    assert [s["step"] for s in stairs] == section["points"]  # a click on a staircase moves the page to its step
    row = section["rows"][0]
    for s, timesteps, betas in zip(stairs, row["timesteps"], row["betas"]):
        assert s["x"] == pytest.approx(sorted({0.0, *timesteps}))  # from t = 0, a stair at each of its timesteps
        assert s["y"][-1] == pytest.approx(sum(betas), rel=1e-5)
    assert len(chart["table"]) == 1 + len(section["points"])


def test_shapes_text_encoder_is_recorded_bidirectional_with_masked_padding():
    from generator.bake.prompt.tokens import encoder_facts
    from generator.models import load_model

    shapes = load_model("embedded:shapes", device="cpu", dtype="fp32")
    assert encoder_facts(shapes) == {"classes": ["T5EncoderModel"], "family": "t5", "attention": "bidirectional",
                                     "padding_masked": True}
