"""Attention against intervention (issue 19, item 3): edits, change regions and the comparison, on known cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generator.builtin.shapes.world import Scene, ShapeObject
from generator.evaluate.daam_edits import CHANGE_THRESHOLD, change_map, compare, edit_caption, edit_scenes
from generator.evaluate.daam_stats import rank_correlation


def obj(shape: str, colour: str) -> ShapeObject:
    return ShapeObject(shape, colour, "small", 0.5, 0.5, 0.2)


def test_edits_change_the_first_objects_word_only():
    scene = Scene((obj("square", "red"), obj("square", "blue")), "a red square to the left of a blue square", "relation",
                  False, relation="left of")
    colour, word, occurrence = edit_caption(scene, "colour")
    assert word == "red" and occurrence == 0 and colour.split()[1] not in ("red", "blue")
    assert colour.split()[2:] == scene.caption.split()[2:]
    shape, word, _ = edit_caption(scene, "shape")
    assert word == "square" and shape.split()[2] not in ("square",) and shape.endswith("blue square")
    assert edit_caption(scene, "relation")[0] == "a red square to the right of a blue square"
    pair = Scene((obj("circle", "red"), obj("square", "red")), "a red circle and a red square", "pair", False)
    assert edit_caption(pair, "relation") is None
    assert {s.layout for s in edit_scenes(6)} == {"pair", "relation"}


def test_compare_finds_a_map_on_the_changed_region():
    original = np.full((16, 16, 3), 235, dtype=np.uint8)
    edited = original.copy()
    edited[2:8, 2:8] = (220, 30, 30)  # the edit repainted the top-left block
    change = change_map(original, edited)
    assert change[4, 4] > CHANGE_THRESHOLD and change[12, 12] == 0
    on_region, elsewhere = torch.zeros(16, 16), torch.zeros(16, 16)
    on_region[2:8, 2:8] = 1.0
    elsewhere[10:16, 10:16] = 1.0
    result = compare(on_region, elsewhere, change, tau=0.5)
    assert result["iou"] == 1.0 and result["baseline_iou"] == 0.0
    assert result["rho"] > 0.5 > result["baseline_rho"]
    assert result["changed_area"] == pytest.approx(36 / 256)
    assert compare(on_region, elsewhere, torch.zeros(16, 16), tau=0.5) is None  # nothing changed: nothing to locate


def test_rank_correlation_known_values():
    ramp = torch.arange(16.0).reshape(4, 4)
    assert rank_correlation(ramp, ramp * 3 + 1) == pytest.approx(1.0)
    assert rank_correlation(ramp, -ramp) == pytest.approx(-1.0)
