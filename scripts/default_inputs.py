"""Script: the default input images the project ships for the course chapter (``prompts/inputs/``).

Rendered, not downloaded: two scenes of the built-in shapes world (at 128x128, so the bake's resize to the
model's 32x32 is exercised) and a "hand drawing" (wobbly strokes, as a person would sketch a red circle over
a blue square) for SDEdit's drawing-to-image. Regenerate with ``python scripts/default_inputs.py``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from generator.builtin.shapes.world import Scene, ShapeObject, render

INPUTS_DIR = Path(__file__).resolve().parents[1] / "prompts" / "inputs"
SIZE = 128


def scene_image(objects: tuple[ShapeObject, ...]) -> Image.Image:
    """A shapes-world scene rendered at SIZE x SIZE."""
    return Image.fromarray(render(Scene(objects, "", "pair", True), SIZE).image)


def drawing(seed: int = 7) -> Image.Image:
    """A child-like sketch: a filled red circle at the top, a blue square at the bottom, uneven strokes."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (SIZE, SIZE), (250, 250, 246))
    pen = ImageDraw.Draw(image)

    def wobble(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(x + rng.normal(0, 1.6), y + rng.normal(0, 1.6)) for x, y in points]

    circle = [(64 + 24 * math.cos(a), 36 + 22 * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 28)]
    pen.polygon(wobble(circle), fill=(214, 48, 40))
    pen.line(wobble(circle), fill=(150, 20, 20), width=3)
    square = [(40, 70), (90, 72), (88, 118), (38, 116), (40, 70)]
    pen.polygon(wobble(square), fill=(40, 80, 205))
    pen.line(wobble(square), fill=(20, 40, 140), width=3)
    return image


def write_default_inputs(folder: Path = INPUTS_DIR) -> list[Path]:
    """Write the shipped inputs (PNG) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    images = {
        "shapes-scene.png": scene_image((
            ShapeObject("circle", "red", "large", 0.3, 0.5, 0.38),
            ShapeObject("square", "blue", "large", 0.73, 0.5, 0.36),
        )),
        "shapes-pair.png": scene_image((
            ShapeObject("triangle", "yellow", "large", 0.5, 0.3, 0.38),
            ShapeObject("circle", "green", "small", 0.5, 0.78, 0.24),
        )),
        "drawing.png": drawing(),
    }
    written = []
    for name, image in images.items():
        path = folder / name
        image.save(path, format="PNG", optimize=True)
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_default_inputs(Path(sys.argv[1]) if len(sys.argv) > 1 else INPUTS_DIR):
        print(written_path)
