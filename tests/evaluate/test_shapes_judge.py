"""The shapes judge: prompts read back into scenes, claims right on the truth, and wrong exactly where a render lies."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from generator.builtin.shapes.world import Scene, ShapeObject, ShapesStream, render
from generator.evaluate.rates import claim_rates, rate_with_interval
from generator.evaluate.shapes_judge import judge_prompt, judge_scene, parse_caption


def _key(scene: Scene) -> tuple:
    objects = [(o.shape, o.colour, o.size if scene.size_stated else None) for o in scene.objects]
    return scene.layout, scene.size_stated, scene.position, scene.relation, objects


def test_every_caption_of_the_world_parses_back_to_its_scene():
    stream = ShapesStream(seed=31)
    for index in range(1500):
        scene = stream.scene(index)
        parsed = parse_caption(scene.caption)
        assert parsed is not None and _key(parsed) == _key(scene), scene.caption


@pytest.mark.parametrize("text", ["a cat on a mat", "a red circle <script>alert(1)</script>", "a red", "",
                                  "a small red circle and a blue square", "red circle above"])
def test_prompts_outside_the_grammar_are_not_judged(text):
    assert parse_caption(text) is None
    assert judge_prompt(text, np.zeros((32, 32, 3), np.uint8)) is None


def test_case_spaces_and_commas_do_not_matter():
    scene = parse_caption("  A Red circle,  a blue square and a green triangle ")
    assert scene is not None and scene.layout == "triple"
    assert [(o.colour, o.shape) for o in scene.objects] == [("red", "circle"), ("blue", "square"), ("green", "triangle")]


def test_ground_truth_renders_get_every_claim_right():
    stream = ShapesStream(seed=32)
    judged = [judge_scene(stream.scene(i), stream.sample(i).image) for i in range(300)]
    assert all(claim.correct for claims in judged for claim in claims)
    kinds = {claim.kind for claims in judged for claim in claims}
    assert kinds == {"object", "size", "position", "relation", "count"}


def _pair(first: tuple[str, str], second: tuple[str, str], relation: str | None = None) -> Scene:
    a = ShapeObject(first[1], first[0], "large", 0.25, 0.3, 0.4)
    b = ShapeObject(second[1], second[0], "large", 0.72, 0.7, 0.4)
    layout = "pair" if relation is None else "relation"
    return Scene((a, b), "", layout, size_stated=False, relation=relation)


def test_swapped_colours_fail_exactly_the_binding_claims():
    asked = _pair(("red", "circle"), ("blue", "square"))
    drawn = _pair(("blue", "circle"), ("red", "square"))
    claims = judge_scene(asked, render(drawn).image)
    wrong = [(c.kind, c.asked, c.found) for c in claims if not c.correct]
    assert wrong == [("object", "red circle", "a red square"), ("object", "blue square", "a blue circle")]
    assert [c.kind for c in claims if c.correct] == ["count"]


def test_swapped_places_fail_exactly_the_relation():
    asked = _pair(("red", "circle"), ("blue", "square"), relation="left of")
    drawn = Scene(tuple(replace(o, center_x=1 - o.center_x) for o in asked.objects), "", "relation", False,
                  relation="left of")
    claims = judge_scene(asked, render(drawn).image)
    assert [(c.kind, c.found) for c in claims if not c.correct] == [("relation", "right of")]


def test_a_missing_object_is_found_as_nothing():
    asked = _pair(("red", "circle"), ("blue", "square"))
    alone = Scene(asked.objects[:1], "", "single", False)
    claims = judge_scene(asked, render(alone).image)
    assert [(c.asked, c.found, c.correct) for c in claims] == [
        ("red circle", "red circle", True), ("blue square", "nothing", False), ("2 objects", "1 object", False)]


def test_rates_pool_claims_and_resample_images():
    assert rate_with_interval([1, 1, 1], [1, 1, 1]) == {"rate": 1.0, "low": 1.0, "high": 1.0, "n": 3, "images": 3}
    mixed = rate_with_interval([0, 2, 1, 2] * 10, [2] * 40)
    assert mixed["rate"] == 0.625 and mixed["low"] < 0.625 < mixed["high"] and mixed["n"] == 80
    assert rate_with_interval([], []) is None
    stream = ShapesStream(seed=33)
    rates = claim_rates([judge_scene(stream.scene(i), stream.sample(i).image) for i in range(20)])
    assert rates["scene_right"]["rate"] == 1.0 and rates["binding"]["rate"] == 1.0
