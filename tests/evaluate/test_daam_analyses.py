"""DAAM analyses (issue 19) on constructed maps with known answers: overlap, spread, entanglement, special tokens.

No model: maps are boxes on a grid, so every expected number is worked out by hand.
"""

from __future__ import annotations

import math

import pytest
import torch

from generator.daam.aggregate import LayerGroup
from generator.evaluate.daam_analyses import CaptionMaps, ObjectMaps, adjective_spread, entanglement, head_dependent, special_tokens
from generator.evaluate.daam_stats import auc, auc_interval, mean_interval, soft_overlap, spread

SIZE = 64


def box(left: int, top: int, side: int, value: float = 1.0) -> torch.Tensor:
    """A (SIZE, SIZE) map: ``value`` on a square of ``side`` pixels, 0 elsewhere."""
    heat = torch.zeros(SIZE, SIZE)
    heat[top : top + side, left : left + side] = value
    return heat


LEFT, RIGHT = box(0, 0, 16), box(40, 40, 16)  # two disjoint objects


def two_objects(first_colour="red", second_colour="blue", first_shape="circle", second_shape="square",
                same=False, failed=False) -> CaptionMaps:
    """A two-object caption whose colour maps equal their own nouns' maps; ``same``: both nouns on one place."""
    second = LEFT if same else RIGHT
    return CaptionMaps(
        caption="x", layout="pair", binding_failed=failed,
        objects=(ObjectMaps(first_shape, first_colour, LEFT, {"colour": LEFT.clone()}, LEFT > 0),
                 ObjectMaps(second_shape, second_colour, second, {"colour": second.clone()}, second > 0)),
    )


def test_spread_area_overlap_and_auc_known_answers():
    side = 32  # half the image side
    assert spread(box(10, 20, side)) == pytest.approx(0.5 / math.sqrt(6), abs=1e-3)  # uniform square: s / sqrt(6)
    assert spread(box(5, 5, 1)) == pytest.approx(0.0, abs=1e-9)  # a point
    assert soft_overlap(LEFT, LEFT) == pytest.approx(1.0) and soft_overlap(LEFT, RIGHT) == 0.0
    assert auc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert auc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert auc([0.5, 0.5], [True, False]) == 0.5 and auc([1.0], [True]) is None
    constant = mean_interval([0.25] * 10)
    assert constant == {"mean": 0.25, "low": 0.25, "high": 0.25, "n": 10}
    spread_out = mean_interval([0.0, 1.0] * 20)
    assert spread_out["low"] < 0.5 < spread_out["high"] and spread_out["n"] == 40


def test_head_dependent_full_and_no_overlap():
    captions = [two_objects(), two_objects(first_colour="green")]
    report = head_dependent(captions, tau=0.5)["by_modifier"]["colour"]
    assert report["own"]["mean"] == 1.0 and report["own_soft"]["mean"] == pytest.approx(1.0)
    assert report["other"]["mean"] == 0.0 and report["other_soft"]["mean"] == 0.0
    assert report["own_minus_other"] == {"mean": 1.0, "low": 1.0, "high": 1.0, "n": 4}
    assert report["unrelated"]["n"] == 4  # against the next caption's first noun (here the same place: 1, or 0)


def test_adjective_spread_known_areas():
    wide, narrow = box(0, 0, 32), box(0, 0, 16)
    caption = CaptionMaps("x", "single", (ObjectMaps("circle", "red", narrow, {"colour": wide}, narrow > 0),))
    report = adjective_spread([caption], tau=0.5)["by_adjective"]["colour"]
    assert report["area"]["adjective"]["mean"] == 0.25 and report["area"]["noun"]["mean"] == 0.0625
    assert report["area"]["adjective_minus_noun"]["mean"] == pytest.approx(0.1875)
    assert report["spread"]["adjective"]["mean"] == pytest.approx(0.5 / math.sqrt(6), abs=1e-3)
    assert report["spread"]["noun"]["mean"] == pytest.approx(0.25 / math.sqrt(6), abs=1e-3)
    assert report["spread"]["true_object"]["mean"] == pytest.approx(0.25 / math.sqrt(6), abs=1e-3)
    assert report["mask_spread"]["adjective_minus_noun"]["mean"] == pytest.approx(0.25 / math.sqrt(6), abs=1e-3)


def test_entanglement_groups_failures_and_auc():
    shared = [two_objects(first_colour="red", second_colour="red", same=True, failed=True) for _ in range(4)]
    apart = [two_objects(failed=False) for _ in range(4)]
    same_shape = [two_objects(first_shape="square", failed=False)]
    report = entanglement(shared + apart + same_shape, tau=0.5)
    groups = report["by_sharing"]
    assert groups["colour"]["captions"] == 4 and groups["neither"]["captions"] == 4 and groups["shape"]["captions"] == 1
    assert groups["colour"]["noun_iou"]["mean"] == 1.0 and groups["neither"]["noun_iou"]["mean"] == 0.0
    assert groups["colour"]["binding_failure"]["mean"] == 1.0 and groups["neither"]["binding_failure"]["mean"] == 0.0
    assert report["auc_iou_predicts_failure"]["auc"] == 1.0
    assert auc_interval([0.9, 0.1], [True, False])["baseline"] == 0.5


def test_special_token_share_per_bin_and_layer():
    groups = (LayerGroup("down", 2, 2, "a", None), LayerGroup("up", 2, 2, "b", None))
    kinds = ("", "", "end", "pad")
    mass = torch.tensor([[[1.0, 1.0, 2.0, 0.0], [3.0, 1.0, 0.0, 0.0]],   # layer a: bin 0 end 1/2, bin 1 end 0
                         [[1.0, 1.0, 2.0, 0.0], [1.0, 1.0, 2.0, 0.0]]])  # layer b: end 1/2 in both bins
    caption = CaptionMaps("x", "single", (), token_mass=mass, token_kinds=kinds)
    report = special_tokens([caption, caption], groups)
    assert [row["mean"] for row in report["per_bin"]["end"]] == [0.5, 0.25]
    assert report["per_layer"]["end"]["a"]["mean"] == 0.25 and report["per_layer"]["end"]["b"]["mean"] == 0.5
    assert report["overall"]["end"]["mean"] == pytest.approx(6 / 16, abs=1e-4)
    assert report["overall"]["pad"]["mean"] == 0.0 and report["overall"]["start"]["n"] == 0  # no start token here
    assert report["uniform_baseline"]["end"]["mean"] == pytest.approx(1 / 3, abs=1e-4)  # 3 positions got attention
