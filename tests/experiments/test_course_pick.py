"""Anagrams and hybrids tried at several seeds: every seed is recorded with its judgement; the one shown passed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from generator.bake.chapters.course_views import Attempt, pick
from generator.evaluate.shapes_judge import judge_prompt
from generator.spec.prompt_set import load_prompt_set

# On the shipped shapes model at its defaults the anagram passes at seed 0 and the hybrid fails at seed 0 and
# passes at seed 1 (measured with these entries), so a pick that always showed seed 0 fails this test.
SECTION = """\
model: embedded:shapes
experiments:
  anagrams:
    - id: left-of
      prompts: [a red circle to the left of a blue square, a blue square to the left of a red circle]
      seeds: [0, 1]
  hybrids:
    - id: circle-square
      prompts: [a red circle, a red square]
      seeds: [0, 1]
    - id: two-colours
      prompts: [a large red circle, a small blue triangle]
      seeds: [0, 1]
      expect: fail
      reason: colour is a low frequency
"""


def _judgement(*correct: bool) -> dict:
    claims = [{"kind": "object", "asked": f"claim {i}", "found": "x", "correct": c} for i, c in enumerate(correct)]
    return {"judge": "shapes", "asked": "p", "claims": claims, "agrees": all(correct)}


def _attempt(seed: int, first: dict | None, second: dict | None) -> Attempt:
    image = torch.zeros(3, 4, 4)
    return Attempt(seed, None, (image, image), (first, second))  # type: ignore[arg-type]


def test_the_first_passing_seed_is_shown_else_the_closest_else_the_first() -> None:
    fail, half, good = _judgement(False, False), _judgement(True, False), _judgement(True, True)
    attempts = [_attempt(3, good, fail), _attempt(5, good, good), _attempt(8, good, good)]
    assert (pick(attempts)[0].seed, pick(attempts)[1]) == (5, "first-pass")
    attempts = [_attempt(3, fail, half), _attempt(5, half, good), _attempt(8, good, half)]
    assert (pick(attempts)[0].seed, pick(attempts)[1]) == (5, "best")  # 3 of 4 claims, the first of the two
    assert [a.passed for a in attempts] == [False, False, False] and attempts[1].score == 0.75
    attempts = [_attempt(3, None, None), _attempt(5, good, good)]
    assert (pick(attempts)[0].seed, pick(attempts)[1]) == (3, "first")


def test_seeds_are_validated(tmp_path: Path) -> None:
    from spec.spec_errors import assert_one_line_error, write_prompt_file

    head = "model: embedded:shapes\nexperiments:\n  anagrams:\n    - prompts: [a red circle, a blue square]\n"
    for body, message in (("      seeds: [1, 1]\n", "seeds must be distinct"), ("      seeds: []\n", "non-empty list"),
                          ("      seeds: [0, -1]\n", "seeds must be >= 0"),
                          ("      seed: 3\n      seeds: [1]\n", "give seed or seeds, not both"),
                          ("      seeds: [" + ", ".join(map(str, range(17))) + "]\n", "at most 16 seeds")):
        assert_one_line_error(write_prompt_file(tmp_path, head + body, "bad.yaml"), 5 + body.count("seed:"), message)


@pytest.mark.slow
def test_every_seed_is_recorded_with_its_judgement_and_the_shown_one_passed(tmp_path: Path) -> None:
    from generator.bake.chapters.runner import bake_chapters
    from generator.bake.store import AssetStore
    from generator.models import load_model

    torch.set_num_threads(1)
    (tmp_path / "course.yaml").write_text(SECTION)
    generated = tmp_path / "generated"
    adapter = load_model("embedded:shapes", device="cpu", dtype="fp32")
    (path,) = bake_chapters(load_prompt_set(tmp_path / "course.yaml"), generated, AssetStore(generated), "f",
                            lambda: adapter)
    manifest = json.loads(path.read_text())
    entries = {e["id"]: (section, e) for section in ("anagrams", "hybrids") for e in manifest[section]}
    for ident, seeds in (("left-of", [0, 1]), ("circle-square", [0, 1]), ("two-colours", [0, 1])):
        section, entry = entries[ident]
        pick_ = entry["pick"]
        assert [s["seed"] for s in pick_["seeds"]] == seeds and pick_["tried"] == len(seeds)
        for tried in pick_["seeds"]:  # each seed: both views judged against their own prompt, the image stored
            assert [v["prompt"] for v in tried["views"]] == entry["prompts"]
            assert all(v["judgement"]["asked"] == v["prompt"] for v in tried["views"])
            assert tried["passed"] == all(v["judgement"]["agrees"] for v in tried["views"])
            assert (generated / tried["image"]["src"]).is_file()
        passed = [s["seed"] for s in pick_["seeds"] if s["passed"]]
        assert pick_["passed"] == len(passed)
        shown = next(s for s in pick_["seeds"] if s["seed"] == entry["seed"])
        assert shown["image"]["src"] == entry["result"]["src"]
        if passed:
            assert pick_["rule"] == "first-pass" and entry["seed"] == passed[0]
            assert all(v["image"]["verdict"]["agrees"] for v in entry["views"])
        else:
            assert pick_["rule"] == "best" and shown["score"] == max(s["score"] for s in pick_["seeds"])
    assert entries["left-of"][1]["seed"] == 0 and entries["circle-square"][1]["seed"] == 1  # not simply seed 0
    # the shown views' verdicts are the judge's reading of the stored result
    section, entry = entries["circle-square"]
    up_close = entry["views"][1]
    pixels = np.asarray(Image.open(generated / up_close["image"]["src"]).convert("RGB").resize((32, 32), Image.NEAREST))
    assert up_close["image"]["verdict"]["claims"] == [c.to_json() for c in judge_prompt("a red square", pixels)]
