"""The rule-based checker is right on ground truth, and catches captions that do not match the image."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from generator.builtin.shapes.world import BACKGROUND, COLOURS, ShapesStream
from generator.evaluate.shapes_checker import connected_components, find_blobs, score_scene


def test_checker_scores_ground_truth_renders_at_least_99_percent():
    stream = ShapesStream(seed=21)
    right = total = 0
    for index in range(400):
        sample = stream.sample(index)
        score = score_scene(sample.scene, sample.image)
        right += sum(a.correct for a in score.attributes)
        total += len(score.attributes)
    assert right / total >= 0.99


def test_checker_blob_masks_match_ground_truth_masks():
    stream = ShapesStream(seed=22)
    exact = 0
    for index in range(100):
        sample = stream.sample(index)
        score = score_scene(sample.scene, sample.image)
        if any(b is None for b in score.matched):
            continue
        found = sorted(b.mask.tobytes() for b in score.matched)  # identical objects (counting) match in any order
        exact += found == sorted(m.tobytes() for m in sample.masks)
    assert exact >= 99


def test_checker_catches_wrong_captions():
    stream = ShapesStream(seed=23)
    for index in range(50):
        sample = stream.sample(index)
        obj = sample.scene.objects[0]
        wrong_colour = next(c for c in COLOURS if c != obj.colour and all(o.colour != c for o in sample.scene.objects))
        lie = replace(sample.scene, objects=(replace(obj, colour=wrong_colour), *sample.scene.objects[1:]))
        assert score_scene(lie, sample.image).fraction < 1
    blank = np.empty((32, 32, 3), dtype=np.uint8)
    blank[:] = BACKGROUND
    assert find_blobs(blank) == []
    assert score_scene(stream.scene(0), blank).fraction < 0.5


def test_connected_components_separates_touching_diagonals():
    mask = np.zeros((6, 6), dtype=bool)
    mask[0:2, 0:2] = True
    mask[2:4, 2:4] = True  # touches the first block only diagonally: a separate 4-connected component
    mask[5, :] = True
    labels, count = connected_components(mask)
    assert count == 3
    assert len(np.unique(labels[0:2, 0:2])) == 1 and labels[0, 0] != labels[2, 2]


def test_a_thin_line_is_no_square():
    from generator.evaluate.shapes_checker import classify_shape

    line = np.zeros((32, 32), dtype=bool)
    line[28, 10:22] = True  # a 1-pixel stroke: it fills its box, like a square would
    assert classify_shape(line) == "stroke"
    block = np.zeros((32, 32), dtype=bool)
    block[10:16, 10:16] = True
    assert classify_shape(block) == "square"



def _disc(size: int, centre: float, radius: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] + 0.5
    return (x - centre) ** 2 + (y - centre) ** 2 <= radius**2


def _rounded_square(size: int, start: int, side: int, radius: float) -> np.ndarray:
    """A square whose corners are quarter circles of ``radius`` pixels (0: sharp)."""
    y, x = np.mgrid[0:size, 0:size] + 0.5
    lo, hi = start + radius, start + side - radius
    dy, dx = np.clip(y, lo, hi) - y, np.clip(x, lo, hi) - x
    inside = (y >= start) & (y <= start + side) & (x >= start) & (x <= start + side)
    return inside & (dy**2 + dx**2 <= radius**2 + 1e-9)


def test_a_square_with_corners_rounded_by_a_vae_is_still_a_square_and_a_circle_never_is():
    from generator.evaluate.shapes_checker import classify_shape

    for side in (8, 12, 20, 30, 44):  # the pixel model's and the latent model's object sizes
        assert classify_shape(_rounded_square(64, 10, side, 0)) == "square", side
        assert classify_shape(_disc(64, 32.0, side / 2)) == "circle", side
    for side in (20, 30, 44):  # a VAE round trip rounds each corner by a pixel or two (the latent model's decodes)
        rounded = _rounded_square(64, 10, side, 2.5)
        assert not rounded[10, 10] and classify_shape(rounded) == "square", side
    # a square rounded as much as a circle is a circle
    assert classify_shape(_rounded_square(64, 10, 30, 15)) == "circle"
