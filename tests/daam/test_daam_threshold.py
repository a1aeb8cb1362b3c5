"""DAAM Eq. 7 on min-max normalized maps: a constant floor under a word's raw sum must not swallow the mask."""

import pytest
import torch

from generator.daam.aggregate import normalize, threshold


def test_normalize_removes_the_floor_and_keeps_the_shape():
    raw = torch.full((2, 4, 4), 7.0)
    raw[0, 1, 2] = 10.0  # a peak on a floor of 0.7 x the maximum, like diffuse attention on a small model
    raw[1] = 0.0  # a flat map (e.g. a timestep bin without steps) stays zero
    maps = normalize(raw)
    assert maps[0, 1, 2] == 1.0 and maps[0].sum() == 1.0
    assert torch.equal(maps[1], torch.zeros(4, 4))


@pytest.mark.parametrize("tau", [0.2, 0.4, 0.6])
def test_mask_of_a_floored_map_is_only_the_peak(tau):
    raw = torch.full((8, 8), 0.7)
    raw[2:4, 5:7] = 1.0
    mask = threshold(normalize(raw), tau)
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[2:4, 5:7] = True
    assert torch.equal(mask, expected)
