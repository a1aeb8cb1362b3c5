"""Where DAAM is faithful (issue 19, item 1) on constructed summands; disjoint caption sets; tau from calibration.

A noun's summands are (groups, bins, H, W) maps built by hand: one (layer, bin) draws exactly the object, another
draws somewhere else, so the most faithful bin, layer and head and their share of the summed map are known.
"""

from __future__ import annotations

import pytest
import torch

from generator.daam.aggregate import LayerGroup
from generator.evaluate.daam_faithfulness import TAU_GRID, NounTruth, faithfulness, selections
from generator.evaluate.daam_report import caption_sets

SIZE = 32
GROUPS = (LayerGroup("down", 4, 4, "down_blocks.1.attentions.0.transformer_blocks.0.attn2.processor", 0),
          LayerGroup("up", 4, 4, "up_blocks.1.attentions.0.transformer_blocks.0.attn2.processor", 0))


def square(left: int, top: int, side: int = 8) -> torch.Tensor:
    mask = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    mask[top : top + side, left : left + side] = True
    return mask


def noun(left: int, elsewhere: int) -> NounTruth:
    """Object at (left, 4); the down layer's bin 0 draws it, the up layer's bin 1 draws a square at ``elsewhere``."""
    truth = square(left, 4)
    components = torch.zeros(len(GROUPS), 2, SIZE, SIZE)
    components[0, 0] = truth.float()
    components[1, 1] = square(elsewhere, 20).float()
    return NounTruth(components, truth)


def test_most_faithful_bin_layer_and_head_are_found():
    calibration = [noun(2, 12), noun(6, 20)]
    test = [noun(4, 16), noun(10, 2)]
    report = faithfulness(calibration, test, GROUPS, bins=2)
    assert report["summed"]["test"]["mean"] == pytest.approx(0.5)  # two equal squares, one of them right
    best = report["most_faithful"]
    assert best["step_range"]["name"] == "bins 0" and best["step_range"]["test"]["mean"] == 1.0
    assert best["layer_set"]["name"] in ("down", "down1.0") and best["layer_set"]["share_of_summed"] == 2.0
    assert best["head_set"]["name"] == "down1.0 h0" and best["head_set"]["minus_summed"]["mean"] == pytest.approx(0.5)
    assert best["steps_and_layers"]["test"]["mean"] == 1.0
    names = {(s.kind, s.name) for s in selections(GROUPS, 2)}
    assert {("timestep_bin", "bins 1"), ("location", "up"), ("resolution", "4x4"), ("head_index", "h0 of every layer")} <= names


def test_tau_comes_from_calibration_only():
    """Calibration truth includes a half-strength halo (best tau <= 0.5); test truth is only the core."""
    def halo_noun(halo_in_truth: bool) -> NounTruth:
        core, halo = square(4, 4, 8), square(2, 2, 12) & ~square(4, 4, 8)
        components = torch.zeros(1, 1, SIZE, SIZE)
        components[0, 0] = core.float() + 0.5 * halo.float()
        return NounTruth(components, core | halo if halo_in_truth else core)

    group = (LayerGroup("up", 4, 4, "up_blocks.1.attentions.0.transformer_blocks.0.attn2.processor", 0),)
    report = faithfulness([halo_noun(True)] * 2, [halo_noun(False)] * 2, group, bins=1)
    assert report["summed"]["tau"] == TAU_GRID[0] and report["summed"]["calibration_miou"] == 1.0
    assert report["summed"]["test"]["mean"] == pytest.approx(64 / 144, abs=1e-4)  # core / (core + halo): not tuned on test
    swapped = faithfulness([halo_noun(False)] * 2, [halo_noun(True)] * 2, group, bins=1)
    assert swapped["summed"]["tau"] > 0.5  # the same maps, the other calibration: another tau


def test_caption_sets_are_disjoint_and_follow_the_layout_shares():
    calibration, test = caption_sets(40)
    assert len(calibration) == len(test) == 40
    assert not {s.caption for s in calibration} & {s.caption for s in test}
    assert len({s.caption for s in test}) == 40  # no caption twice within a set either
    layouts = [s.layout for s in test]
    assert layouts.count("pair") == 12 and layouts.count("relation") == 12 and layouts.count("count") == 8
    assert caption_sets(40)[1] == test  # reproducible
