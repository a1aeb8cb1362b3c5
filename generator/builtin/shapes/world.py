"""Built-in models: the procedural "shapes" world (scenes, captions, renders and ground-truth masks).

A scene is 1-3 flat-coloured objects (circle, square, triangle) on a plain light background. Its caption is
drawn from varied templates and states only what is true of the scene. Every render comes with one boolean
mask per object that matches the painted pixels exactly (hard edges, no anti-aliasing, objects never touch),
which is what lets us measure DAAM against ground truth.

Coordinates are resolution independent: centres and extents are fractions of the image side, and a render
samples the shapes at pixel centres, so the same scene renders at 32x32 or 64x64.

Determinism: sample ``index`` of the stream with seed ``seed`` comes from ``numpy.random.default_rng([seed,
index])`` alone, so the stream is endless, random-access, and its position is a single integer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
PLURALS: dict[str, str] = {"circle": "circles", "square": "squares", "triangle": "triangles"}
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (245, 215, 20),
    "purple": (140, 50, 180),
    "orange": (245, 130, 20),
}
# Light grey: at least ~200 RGB units from every object colour (yellow is the closest).
BACKGROUND: tuple[int, int, int] = (235, 235, 235)
SIZES: dict[str, float] = {"small": 0.22, "large": 0.40}  # bounding-box side, fraction of the image side
SIZE_JITTER = 0.015
MARGIN = 0.03  # empty border between an object and the image edge
GAP = 0.07  # minimum empty space between two objects' bounding boxes

POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom", "center")
POSITION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("on the left", "on the left side"),
    "right": ("on the right", "on the right side"),
    "top": ("at the top", "at the top of the image"),
    "bottom": ("at the bottom", "at the bottom of the image"),
    "center": ("in the center", "in the middle"),
}
RELATIONS: tuple[str, ...] = ("above", "below", "left of", "right of")
RELATION_PHRASES: dict[str, tuple[str, ...]] = {
    "above": ("above", "over"),
    "below": ("below", "under"),
    "left of": ("to the left of", "left of"),
    "right of": ("to the right of", "right of"),
}
COUNT_WORDS: dict[int, str] = {1: "one", 2: "two", 3: "three"}
SINGLE_PREFIXES: tuple[str, ...] = ("", "", "", "an image of ", "a picture of ", "there is ")
LAYOUT_WEIGHTS: dict[str, float] = {"single": 0.3, "pair": 0.15, "relation": 0.3, "count": 0.15, "triple": 0.1}
MAX_CAPTION_WORDS = 16


@dataclass(frozen=True)
class ShapeObject:
    """One object: its attributes and where it is (centre and extent are fractions of the image side)."""

    shape: str
    colour: str
    size: str
    center_x: float
    center_y: float
    extent: float

    def box(self) -> tuple[float, float, float, float]:
        """Bounding box ``(left, top, right, bottom)`` as fractions of the image side."""
        half = self.extent / 2
        return (self.center_x - half, self.center_y - half, self.center_x + half, self.center_y + half)


@dataclass(frozen=True)
class Scene:
    """A scene and what its caption claims about it.

    ``layout`` is one of "single", "pair" ("a X and a Y"), "relation" (objects[0] ``relation`` objects[1]),
    "count" (n identical objects) or "triple" (three different objects). ``size_stated`` says whether the
    caption names sizes; ``position`` is the region named for a single object, or None.
    """

    objects: tuple[ShapeObject, ...]
    caption: str
    layout: str
    size_stated: bool
    position: str | None = None
    relation: str | None = None


@dataclass(frozen=True)
class Sample:
    """A rendered scene: ``image`` (H, W, 3) uint8 and ``masks`` (objects, H, W) bool, one per object."""

    scene: Scene
    image: np.ndarray
    masks: np.ndarray


# ----------------------------------------------------------------------------------------------- vocabulary


def vocabulary() -> list[str]:
    """Every word and punctuation mark a caption can contain, sorted (the tokenizer is built from it)."""
    words: set[str] = {"a", "an", "and", "with", ","}
    words.update(SHAPES, PLURALS.values(), COLOURS, SIZES, COUNT_WORDS.values())
    for phrases in (*POSITION_PHRASES.values(), *RELATION_PHRASES.values(), SINGLE_PREFIXES):
        for phrase in phrases:
            words.update(phrase.split())
    return sorted(words)


def _article(next_word: str) -> str:
    """English indefinite article for ``next_word``."""
    return "an" if next_word[0] in "aeiou" else "a"


def describe(obj: ShapeObject, with_size: bool, article: bool = True) -> str:
    """Noun phrase for one object, e.g. "a small red circle"."""
    words = ([obj.size] if with_size else []) + [obj.colour, obj.shape]
    phrase = " ".join(words)
    return f"{_article(words[0])} {phrase}" if article else phrase


# -------------------------------------------------------------------------------------------------- sampling


def _new_object(rng: np.random.Generator, shape: str, colour: str, size: str) -> ShapeObject:
    """An object with a jittered extent and a placeholder position (placed later)."""
    extent = SIZES[size] + float(rng.uniform(-SIZE_JITTER, SIZE_JITTER))
    return ShapeObject(shape, colour, size, 0.5, 0.5, extent)


def _centre_range(extent: float) -> tuple[float, float]:
    """Valid range of a centre coordinate so the object stays inside the margin."""
    return (MARGIN + extent / 2, 1 - MARGIN - extent / 2)


def _apart(a: ShapeObject, b: ShapeObject) -> bool:
    """True if the bounding boxes are separated by at least GAP along some axis."""
    al, at, ar, ab = a.box()
    bl, bt, br, bb = b.box()
    return bl - ar >= GAP or al - br >= GAP or bt - ab >= GAP or at - bb >= GAP


def _moved(obj: ShapeObject, x: float, y: float) -> ShapeObject:
    return ShapeObject(obj.shape, obj.colour, obj.size, x, y, obj.extent)


def _place_free(rng: np.random.Generator, objects: Sequence[ShapeObject]) -> tuple[ShapeObject, ...]:
    """Place objects uniformly at random without touching (rejection sampling, then quadrant slots)."""
    for _ in range(300):
        placed: list[ShapeObject] = []
        for obj in objects:
            lo, hi = _centre_range(obj.extent)
            cand = _moved(obj, float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi)))
            if not all(_apart(cand, other) for other in placed):
                break
            placed.append(cand)
        else:
            return tuple(placed)
    # Crowded scenes (three large objects): one object per quadrant, jittered inside its slack.
    slots = rng.permutation(4)[: len(objects)]
    placed = []
    for obj, slot in zip(objects, slots):
        base_x, base_y = (0.25 if slot % 2 == 0 else 0.75), (0.25 if slot < 2 else 0.75)
        slack = max(0.0, 0.25 - GAP / 2 - obj.extent / 2) / 2
        placed.append(_moved(obj, base_x + float(rng.uniform(-slack, slack)), base_y + float(rng.uniform(-slack, slack))))
    return tuple(placed)


def _place_single(rng: np.random.Generator, obj: ShapeObject, position: str | None) -> ShapeObject:
    """Place one object anywhere, or clearly inside the named region."""
    lo, hi = _centre_range(obj.extent)
    if position is None:
        return _moved(obj, float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi)))
    near_lo, near_hi = lo, max(lo, 0.3)  # the "low" side of an axis (left or top)
    far_lo, far_hi = min(hi, 0.7), hi
    mid_lo, mid_hi = max(lo, 0.4), min(hi, 0.6)
    ranges = {
        "left": ((near_lo, near_hi), (mid_lo, mid_hi)),
        "right": ((far_lo, far_hi), (mid_lo, mid_hi)),
        "top": ((mid_lo, mid_hi), (near_lo, near_hi)),
        "bottom": ((mid_lo, mid_hi), (far_lo, far_hi)),
        "center": ((0.44, 0.56), (0.44, 0.56)),
    }[position]
    (xl, xh), (yl, yh) = ranges
    return _moved(obj, float(rng.uniform(xl, xh)), float(rng.uniform(yl, yh)))


def _place_relation(rng: np.random.Generator, first: ShapeObject, second: ShapeObject, relation: str) -> tuple[ShapeObject, ShapeObject]:
    """Place two objects so that ``first relation second`` holds clearly (main axis offset >= 2x the other)."""
    for _ in range(500):
        a_lo, a_hi = _centre_range(first.extent)
        b_lo, b_hi = _centre_range(second.extent)
        a = _moved(first, float(rng.uniform(a_lo, a_hi)), float(rng.uniform(a_lo, a_hi)))
        b = _moved(second, float(rng.uniform(b_lo, b_hi)), float(rng.uniform(b_lo, b_hi)))
        if relation_holds(relation, (a.center_x, a.center_y), (b.center_x, b.center_y), dominance=2.0) and _apart(a, b):
            return a, b
    # Both large on the main axis: deterministic fallback at the extremes.
    lo_a, hi_a = _centre_range(first.extent)
    lo_b, hi_b = _centre_range(second.extent)
    if relation in ("above", "left of"):
        main_a, main_b = lo_a, hi_b
    else:
        main_a, main_b = hi_a, lo_b
    if relation in ("above", "below"):
        return _moved(first, 0.5, main_a), _moved(second, 0.5, main_b)
    return _moved(first, main_a, 0.5), _moved(second, main_b, 0.5)


def relation_holds(relation: str, first: tuple[float, float], second: tuple[float, float], dominance: float = 1.0) -> bool:
    """Whether centre ``first`` is ``relation`` centre ``second``: the main-axis offset is positive, at least
    0.05, and ``dominance`` times larger than the offset on the other axis."""
    dx, dy = second[0] - first[0], second[1] - first[1]
    main, other = {"above": (dy, dx), "below": (-dy, dx), "left of": (dx, dy), "right of": (-dx, dy)}[relation]
    return main >= 0.05 and main >= dominance * abs(other)


def _choice(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _distinct_pair(rng: np.random.Generator) -> tuple[tuple[str, str], tuple[str, str]]:
    """Two (shape, colour) pairs that differ in shape or colour (so each noun phrase names one object)."""
    first = (_choice(rng, SHAPES), _choice(rng, list(COLOURS)))
    while True:
        second = (_choice(rng, SHAPES), _choice(rng, list(COLOURS)))
        if second != first:
            return first, second


def sample_scene(rng: np.random.Generator, layout_weights: dict[str, float] | None = None) -> Scene:
    """Draw one scene and its caption (layouts drawn by ``layout_weights``, by default the world's own)."""
    chosen = layout_weights or LAYOUT_WEIGHTS
    layouts = list(LAYOUT_WEIGHTS)
    weights = np.array([chosen.get(k, 0.0) for k in layouts])
    layout = layouts[int(rng.choice(len(layouts), p=weights / weights.sum()))]
    size_stated = bool(rng.random() < 0.5)
    sizes = list(SIZES)

    if layout == "single":
        obj = _new_object(rng, _choice(rng, SHAPES), _choice(rng, list(COLOURS)), _choice(rng, sizes))
        position = _choice(rng, POSITIONS) if rng.random() < 0.7 else None
        obj = _place_single(rng, obj, position)
        phrase = describe(obj, size_stated)
        if position is None:
            prefix = _choice(rng, SINGLE_PREFIXES)
            caption = f"{prefix}{phrase}"
        else:
            where = _choice(rng, POSITION_PHRASES[position])
            caption = f"there is {phrase} {where}" if rng.random() < 0.2 else f"{phrase} {where}"
        return Scene((obj,), caption, layout, size_stated, position=position)

    if layout in ("pair", "relation"):
        (shape_a, colour_a), (shape_b, colour_b) = _distinct_pair(rng)
        a = _new_object(rng, shape_a, colour_a, _choice(rng, sizes))
        b = _new_object(rng, shape_b, colour_b, _choice(rng, sizes))
        if layout == "pair":
            a, b = _place_free(rng, (a, b))
            joiner = "and" if rng.random() < 0.75 else "with"
            caption = f"{describe(a, size_stated)} {joiner} {describe(b, size_stated)}"
            return Scene((a, b), caption, layout, size_stated)
        relation = _choice(rng, RELATIONS)
        a, b = _place_relation(rng, a, b, relation)
        caption = f"{describe(a, size_stated)} {_choice(rng, RELATION_PHRASES[relation])} {describe(b, size_stated)}"
        return Scene((a, b), caption, layout, size_stated, relation=relation)

    if layout == "count":
        count = 2 + int(rng.integers(2))
        shape, colour, size = _choice(rng, SHAPES), _choice(rng, list(COLOURS)), _choice(rng, sizes)
        objects = _place_free(rng, [_new_object(rng, shape, colour, size) for _ in range(count)])
        words = [COUNT_WORDS[count]] + ([size] if size_stated else []) + [colour, PLURALS[shape]]
        return Scene(objects, " ".join(words), layout, size_stated)

    # triple: three objects with distinct (shape, colour)
    kinds: list[tuple[str, str]] = []
    while len(kinds) < 3:
        kind = (_choice(rng, SHAPES), _choice(rng, list(COLOURS)))
        if kind not in kinds:
            kinds.append(kind)
    objects = _place_free(rng, [_new_object(rng, s, c, _choice(rng, sizes)) for s, c in kinds])
    a, b, c = (describe(o, size_stated) for o in objects)
    return Scene(objects, f"{a}, {b} and {c}", layout, size_stated)


# ------------------------------------------------------------------------------------------------- rendering


def object_mask(obj: ShapeObject, resolution: int) -> np.ndarray:
    """(H, W) bool: pixels whose centre lies inside the object (hard edges)."""
    coords = (np.arange(resolution, dtype=np.float64) + 0.5) / resolution
    x = coords[None, :]
    y = coords[:, None]
    half = obj.extent / 2
    if obj.shape == "circle":
        return (x - obj.center_x) ** 2 + (y - obj.center_y) ** 2 <= half**2
    if obj.shape == "square":
        return (np.abs(x - obj.center_x) <= half) & (np.abs(y - obj.center_y) <= half)
    if obj.shape == "triangle":  # apex up, base at the bottom of the bounding box
        top = obj.center_y - half
        return (y <= obj.center_y + half) & (np.abs(x - obj.center_x) <= (y - top) / 2)
    raise ValueError(f"unknown shape {obj.shape!r}")


def render(scene: Scene, resolution: int = 32) -> Sample:
    """Paint the scene: background, then each object in its colour; masks are exactly the painted pixels."""
    image = np.empty((resolution, resolution, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    masks = np.stack([object_mask(obj, resolution) for obj in scene.objects])
    for obj, mask in zip(scene.objects, masks):
        image[mask] = COLOURS[obj.colour]
    return Sample(scene, image, masks)


def model_images(samples: Sequence[Sample]) -> np.ndarray:
    """Rendered samples' images as one (B, 3, H, W) float32 batch in [-1, 1], the model's pixel range."""
    return to_model_range(np.stack([s.image for s in samples]))


def to_model_range(images: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 in [-1, 1], the model's pixel range."""
    return images.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0


class ShapesStream:
    """Endless, random-access stream of samples: sample ``index`` depends only on ``(seed, index)``."""

    def __init__(self, seed: int = 0, resolution: int = 32, layouts: dict[str, float] | None = None) -> None:
        self.seed = seed
        self.resolution = resolution
        self.layouts = layouts  # None: the world's LAYOUT_WEIGHTS (the same stream as before the option)

    def scene(self, index: int) -> Scene:
        """The scene at ``index``."""
        return sample_scene(np.random.default_rng([self.seed, index]), self.layouts)

    def sample(self, index: int) -> Sample:
        """The rendered sample at ``index``."""
        return render(self.scene(index), self.resolution)

    def samples(self, start: int, size: int) -> list[Sample]:
        """The rendered samples ``start .. start+size-1``."""
        return [self.sample(i) for i in range(start, start + size)]

    def batch(self, start: int, size: int) -> tuple[np.ndarray, list[str]]:
        """Samples ``start .. start+size-1`` as (B, 3, H, W) float32 in [-1, 1] and their captions."""
        samples = self.samples(start, size)
        return model_images(samples), [s.scene.caption for s in samples]

    def __iter__(self) -> Iterator[Sample]:
        index = 0
        while True:
            yield self.sample(index)
            index += 1
