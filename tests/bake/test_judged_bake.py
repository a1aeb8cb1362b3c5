"""A bake on the shipped shapes model judges what it publishes: final image, compare partner, jump previews."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from generator.bake.runner import bake
from generator.evaluate.shapes_judge import judge_prompt
from generator.render import render_site
from generator.spec.prompt_set import load_prompt_set

pytestmark = pytest.mark.slow

PROMPTS = """model: embedded:shapes
defaults:
  daam: false
  jumps: {every: 10, steps: [1, 4]}
prompts:
  - id: red-circle
    text: a red circle
    compare: a blue square
  - id: binding
    text: a red circle and a blue square
    expect: fail
    reason: binding, shown on purpose
  - id: cat
    text: a cat on a mat
"""


@pytest.fixture(scope="module")
def baked(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("judged")
    (root / "p.yaml").write_text(PROMPTS)
    generated = root / "generated"
    bake(load_prompt_set(root / "p.yaml"), generated, device="cpu")
    torch.set_num_threads(before)
    return generated


def _manifest(generated, prompt_id):
    return json.loads((generated / "prompts" / f"{prompt_id}.json").read_text())


def test_the_verdicts_are_the_judges_reading_of_the_stored_images(baked):
    for prompt_id, asked in (("red-circle", "a red circle"), ("binding", "a red circle and a blue square")):
        final = _manifest(baked, prompt_id)["final"]
        pixels = np.asarray(Image.open(baked / final["src"]).convert("RGB"))
        claims = judge_prompt(asked, pixels)
        assert final["verdict"]["claims"] == [c.to_json() for c in claims]
        assert final["verdict"]["agrees"] == all(c.correct for c in claims)
    compare = _manifest(baked, "red-circle")["compare"]["final"]["verdict"]
    assert compare["asked"] == "a blue square" and compare["claims"][0]["asked"] == "blue square"
    assert _manifest(baked, "binding")["final"]["verdict"]["expect"] == {"outcome": "fail", "reason": "binding, shown on purpose"}
    assert "verdict" not in _manifest(baked, "cat")["final"]  # outside the judge's grammar: not judged


def test_the_shipped_model_draws_a_red_circle_and_the_jumps_show_when_it_knows(baked):
    manifest = _manifest(baked, "red-circle")
    assert manifest["final"]["verdict"]["agrees"]
    rows = manifest["jumps"]["rows"]
    assert [len(row["verdicts"]) for row in rows] == [len(manifest["jumps"]["points"])] * 2
    four_step = [v["agrees"] for v in rows[1]["verdicts"]]
    assert four_step[-1]  # from the last jump point (step 20 of the model's 25) 4 steps already give the red circle
    assert "jumps" in _manifest(baked, "cat") and "verdicts" not in _manifest(baked, "cat")["jumps"]["rows"][0]


def test_rendered_jump_cells_carry_the_judges_mark(baked, tmp_path):
    render_site(baked, tmp_path / "site")
    page = (baked / "pages" / "red-circle.md").read_text()
    rows = _manifest(baked, "red-circle")["jumps"]["rows"]
    marks = sum(len(row["verdicts"]) for row in rows)
    assert page.count('class="atlas-jump-verdict atlas-jump-verdict-') == marks
    right = sum(v["agrees"] for row in rows for v in row["verdicts"])
    assert page.count("atlas-jump-verdict-right") == right
    assert "asked: a red circle · found: red circle" in page  # the hover title of a judged jump
