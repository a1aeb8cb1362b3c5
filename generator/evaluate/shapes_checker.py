"""Evaluate stage: a rule-based checker that reads a "shapes" image and scores a caption against it.

Pipeline: every pixel takes the nearest palette colour (or background when far from all of them); each colour's
pixels are split into 4-connected blobs; tiny blobs are noise; each blob gets a shape from its fill ratio and
top/bottom asymmetry in its bounding box (square ~1, circle ~pi/4, apex-up triangle ~1/2 with an empty top),
a size from its bounding-box extent and a position from its bounding-box centre. The caption's claims (the
``Scene`` it was drawn from) are matched to blobs and scored attribute by attribute. Blob masks are also the
"checker masks" DAAM maps are compared with.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

from generator.builtin.shapes.world import BACKGROUND, COLOURS, SIZES, Scene, ShapeObject, relation_holds

COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
PALETTE = np.array([BACKGROUND, *COLOURS.values()], dtype=np.float32)  # (1 + colours, 3); index 0 = background
MAX_COLOUR_DISTANCE = 90.0  # RGB distance beyond which a pixel is not that colour (blended edges, noise)
MIN_BLOB_AREA = 0.006  # fraction of the image; smaller blobs are noise
MAX_ASPECT = 2.0  # the world's shapes fit a box of aspect ~1 (triangles ~1.15); a longer box is no shape
SIZE_THRESHOLD = (SIZES["small"] + SIZES["large"]) / 2
MAX_BLOBS = 8
CORNER_PATCH = 10  # a corner patch's side is the box's shorter side / this (at least one pixel)
MAX_TRIANGLE_FILL = 0.72  # rendered triangles fill 0.50-0.67 of their box, circles 0.66-0.92


@dataclass(frozen=True)
class Blob:
    """One detected object: attributes, bounding-box centre (fractions of the side) and its pixel mask."""

    colour: str
    shape: str
    size: str
    center_x: float
    center_y: float
    area: int
    mask: np.ndarray  # (H, W) bool


@dataclass(frozen=True)
class Attribute:
    """One scored claim of a caption, e.g. ``("colour", "object 1 is red", True)``."""

    kind: str  # colour | shape | size | position | relation | count
    claim: str
    correct: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "correct", bool(self.correct))  # numpy bools are not JSON-serialisable


@dataclass(frozen=True)
class SceneScore:
    """Every attribute the caption states, scored, and the blobs matched to the caption's objects."""

    attributes: tuple[Attribute, ...]
    matched: tuple[Blob | None, ...]  # one per scene object, in order

    @property
    def fraction(self) -> float:
        """Share of attributes right."""
        return sum(a.correct for a in self.attributes) / len(self.attributes)


def label_colours(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) int: index into COLOUR_NAMES, or -1 for background / unrecognised."""
    pixels = image.reshape(-1, 1, 3).astype(np.float32)
    distance = np.linalg.norm(pixels - PALETTE[None], axis=-1)  # (H*W, 1 + colours)
    nearest = distance.argmin(axis=1)
    labels = nearest - 1
    labels[distance[np.arange(len(nearest)), nearest] > MAX_COLOUR_DISTANCE] = -1
    return labels.reshape(image.shape[:2])


def connected_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected components of a bool mask: (H, W) int labels (0 = off, 1..n) and n.

    Min-label propagation with numpy shifts: every on-pixel repeatedly takes the smallest label among itself
    and its on-neighbours until nothing changes (a few dozen sweeps for blob-like shapes).
    """
    height, width = mask.shape
    big = height * width + 1
    labels = np.where(mask, np.arange(1, big, dtype=np.int64).reshape(height, width), big)
    while True:
        padded = np.pad(labels, 1, constant_values=big)
        neighbours = np.minimum.reduce([
            padded[1:-1, 1:-1], padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:],
        ])
        updated = np.where(mask, neighbours, big)
        if np.array_equal(updated, labels):
            break
        labels = updated
    unique = np.unique(labels[mask])
    relabelled = np.zeros((height, width), dtype=np.int64)
    for index, value in enumerate(unique, start=1):
        relabelled[labels == value] = index
    return relabelled, len(unique)


def classify_shape(mask: np.ndarray) -> str:
    """Circle, square or triangle from the blob's top/bottom asymmetry, corner pixels and fill ratio.

    A blob whose box is more than MAX_ASPECT times longer than wide is a "stroke": a 1-pixel line fills its
    box completely and would otherwise pass for a square.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    box = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    if max(box.shape) > MAX_ASPECT * min(box.shape):
        return "stroke"  # a line or sliver (a stray edge of another shape): no shape of the world is this thin
    fill = box.mean()
    half = box.shape[0] // 2
    top, bottom = box[:half].mean() if half else 0.0, box[box.shape[0] - half :].mean() if half else 0.0
    widest_bottom = box[-2:].mean(axis=1).max()
    # Apex-up triangle: the top half is much emptier than the bottom half, and it stands on a full-width base
    # (a rasterised small circle can be lopsided by a pixel row, but its bottom rows are narrow). A triangle
    # fills at most ~2/3 of its box (measured on 2000 rendered scenes: 0.50-0.67); a 7-pixel circle with a
    # one-pixel cap on top can pass the first two tests but fills ~3/4 of its box.
    if bottom - top > 0.25 and widest_bottom > 0.7 and fill <= MAX_TRIANGLE_FILL:
        return "triangle"
    # A rasterised small circle can fill ~90% of its box, but a circle never fills its box's corners: a corner
    # patch of a tenth of the box's side lies wholly outside a circle (its arc passes 0.146 of the side from the
    # corner along the diagonal), while a square decoded by a VAE, whose corners are rounded by a pixel or two,
    # still fills most of it. Up to 14-pixel boxes the patch is the one corner pixel.
    k = max(1, round(min(box.shape) / CORNER_PATCH))
    patches = (box[:k, :k], box[:k, -k:], box[-k:, :k], box[-k:, -k:])
    corners = sum(patch.mean() >= 0.5 for patch in patches)
    return "square" if corners >= 3 and fill > 0.8 else "circle"


def find_blobs(image: np.ndarray) -> list[Blob]:
    """Every object-coloured blob of at least MIN_BLOB_AREA, largest first."""
    resolution = image.shape[0]
    labels = label_colours(image)
    blobs: list[Blob] = []
    for colour_index, colour in enumerate(COLOUR_NAMES):
        components, count = connected_components(labels == colour_index)
        for component in range(1, count + 1):
            mask = components == component
            area = int(mask.sum())
            if area < MIN_BLOB_AREA * resolution * resolution:
                continue
            rows = np.flatnonzero(mask.any(axis=1))
            cols = np.flatnonzero(mask.any(axis=0))
            extent = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) / resolution
            blobs.append(Blob(
                colour=colour,
                shape=classify_shape(mask),
                size="large" if extent > SIZE_THRESHOLD else "small",
                center_x=(cols[0] + cols[-1] + 1) / 2 / resolution,
                center_y=(rows[0] + rows[-1] + 1) / 2 / resolution,
                area=area,
                mask=mask,
            ))
    blobs.sort(key=lambda b: -b.area)
    return blobs


def position_holds(position: str, blob: Blob) -> bool:
    """Whether the blob's centre lies in the named region (thirds with a little slack)."""
    x, y = blob.center_x, blob.center_y
    return {
        "left": x < 0.4,
        "right": x > 0.6,
        "top": y < 0.4,
        "bottom": y > 0.6,
        "center": 0.35 <= x <= 0.65 and 0.35 <= y <= 0.65,
    }[position]


def _agreement(obj: ShapeObject, blob: Blob, size_stated: bool) -> float:
    """How well a blob fits an object (colour counts most: it is what tells objects apart first)."""
    return 2.0 * (obj.colour == blob.colour) + (obj.shape == blob.shape) + 0.5 * (size_stated and obj.size == blob.size)


def match(scene: Scene, blobs: list[Blob]) -> tuple[Blob | None, ...]:
    """Assign distinct blobs to the scene's objects, maximising total agreement (brute force: <= 3 objects)."""
    candidates = blobs[:MAX_BLOBS]
    objects = scene.objects
    if not candidates:
        return tuple(None for _ in objects)
    slots: list[Blob | None] = list(candidates) + [None] * len(objects)
    best, best_score = None, -1.0
    for chosen in permutations(range(len(slots)), len(objects)):
        score = sum(
            _agreement(obj, slots[i], scene.size_stated) if slots[i] is not None else -0.1
            for obj, i in zip(objects, chosen)
        )
        if score > best_score:
            best, best_score = chosen, score
    return tuple(slots[i] for i in best)


def score_scene(scene: Scene, image: np.ndarray) -> SceneScore:
    """Score every attribute the caption states against the image."""
    blobs = find_blobs(image)
    matched = match(scene, blobs)
    attributes: list[Attribute] = []
    for number, (obj, blob) in enumerate(zip(scene.objects, matched), start=1):
        attributes.append(Attribute("colour", f"object {number} is {obj.colour}", blob is not None and blob.colour == obj.colour))
        attributes.append(Attribute("shape", f"object {number} is a {obj.shape}", blob is not None and blob.shape == obj.shape))
        if scene.size_stated:
            attributes.append(Attribute("size", f"object {number} is {obj.size}", blob is not None and blob.size == obj.size))
    if scene.position is not None:
        blob = matched[0]
        attributes.append(Attribute("position", f"object 1 is {scene.position}", blob is not None and position_holds(scene.position, blob)))
    if scene.relation is not None:
        a, b = matched[0], matched[1]
        ok = a is not None and b is not None and relation_holds(scene.relation, (a.center_x, a.center_y), (b.center_x, b.center_y))
        attributes.append(Attribute("relation", f"object 1 is {scene.relation} object 2", ok))
    if scene.layout == "count":
        obj = scene.objects[0]
        found = sum(1 for b in blobs if b.colour == obj.colour and b.shape == obj.shape)
        attributes.append(Attribute("count", f"{len(scene.objects)} {obj.colour} {obj.shape}s", found == len(scene.objects)))
    else:
        attributes.append(Attribute("count", f"{len(scene.objects)} object(s)", len(blobs) == len(scene.objects)))
    return SceneScore(tuple(attributes), matched)
