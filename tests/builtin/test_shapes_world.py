"""The shapes world: masks match the pixels, captions agree with the scene, same seed gives the same samples."""

from __future__ import annotations

import numpy as np
import pytest

from generator.builtin.shapes.world import (
    BACKGROUND,
    COLOURS,
    COUNT_WORDS,
    PLURALS,
    POSITION_PHRASES,
    RELATION_PHRASES,
    SIZE_JITTER,
    SIZES,
    ShapesStream,
    relation_holds,
    render,
)

N = 300


@pytest.mark.parametrize("resolution", [32, 64])
def test_masks_are_exactly_the_painted_pixels(resolution):
    stream = ShapesStream(seed=3, resolution=resolution)
    for index in range(N):
        sample = stream.sample(index)
        assert sample.image.shape == (resolution, resolution, 3) and sample.image.dtype == np.uint8
        assert sample.masks.shape == (len(sample.scene.objects), resolution, resolution)
        assert (sample.masks.sum(axis=0) <= 1).all(), "objects overlap"
        for obj, mask in zip(sample.scene.objects, sample.masks):
            assert mask.sum() > 0
            assert (sample.image[mask] == COLOURS[obj.colour]).all()
        background = ~sample.masks.any(axis=0)
        assert (sample.image[background] == BACKGROUND).all()


def _inside_and_sized(obj) -> bool:
    left, top, right, bottom = obj.box()
    return 0 <= left and 0 <= top and right <= 1 and bottom <= 1 and abs(obj.extent - SIZES[obj.size]) <= SIZE_JITTER


def test_captions_agree_with_scene():
    stream = ShapesStream(seed=5)
    layouts = set()
    for index in range(N):
        scene = stream.scene(index)
        caption = scene.caption
        layouts.add(scene.layout)
        assert all(_inside_and_sized(obj) for obj in scene.objects)
        words = caption.replace(",", " ").split()
        named_colours = [w for w in words if w in COLOURS]
        named_shapes = [w for w in words if w in PLURALS or w in PLURALS.values()]
        if scene.layout == "count":
            obj = scene.objects[0]
            assert words[0] == COUNT_WORDS[len(scene.objects)]
            assert all(o.colour == obj.colour and o.shape == obj.shape and o.size == obj.size for o in scene.objects)
            assert named_colours == [obj.colour] and named_shapes == [PLURALS[obj.shape]]
        else:
            assert named_colours == [o.colour for o in scene.objects]
            assert named_shapes == [o.shape for o in scene.objects]
        named_sizes = [w for w in words if w in SIZES]
        if scene.size_stated:
            expected = [scene.objects[0].size] if scene.layout == "count" else [o.size for o in scene.objects]
            assert named_sizes == expected
        else:
            assert named_sizes == []
        if scene.position is not None:
            assert any(caption.endswith(p) for p in POSITION_PHRASES[scene.position])
            x, y = scene.objects[0].center_x, scene.objects[0].center_y
            assert {"left": x < 0.4, "right": x > 0.6, "top": y < 0.4, "bottom": y > 0.6,
                    "center": 0.35 < x < 0.65 and 0.35 < y < 0.65}[scene.position]
        if scene.relation is not None:
            assert any(f" {p} " in caption for p in RELATION_PHRASES[scene.relation])
            a, b = scene.objects
            assert relation_holds(scene.relation, (a.center_x, a.center_y), (b.center_x, b.center_y))
    assert layouts == {"single", "pair", "relation", "count", "triple"}


def test_same_seed_same_samples_and_other_seed_differs():
    first, again, other = ShapesStream(seed=11), ShapesStream(seed=11), ShapesStream(seed=12)
    images, captions = first.batch(40, 16)
    images_again, captions_again = again.batch(40, 16)
    assert captions == captions_again and np.array_equal(images, images_again)
    assert images.shape == (16, 3, 32, 32) and images.min() >= -1 and images.max() <= 1
    assert first.scene(7) == again.scene(7)
    assert [other.scene(i).caption for i in range(40, 56)] != captions
    # random access: the stream's position is all the state there is
    assert render(first.scene(45)).image.tolist() == first.sample(45).image.tolist()
