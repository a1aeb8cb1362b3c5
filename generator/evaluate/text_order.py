"""Evaluation: does a text encoder say which named object goes where? (``diffatlas eval text-order``)

Two numbers, on held-out relation captions ("a red circle above a blue square"):

* **swap cosine**: a colour word's vector when its object is named first against when it is named second, in the
  caption with the two noun phrases swapped (1.0: the encoder cannot tell the objects' roles apart, and no UNet
  reading it can place them);
* **readout relation**, for a ``--stage text`` run only: where its layout readout puts each named object (the
  centroid of that object's class probability over the grid), and the share of captions whose relation holds
  between the two centroids in direction (the main-axis offset has the stated sign; chance is one half).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from generator.builtin.shapes.world import COLOURS, SHAPES, Scene, ShapesStream, describe

SEED = 8101  # held out: training streams use small seeds


@dataclass(frozen=True)
class OrderReport:
    n: int
    swap_cosine: float  # mean over captions
    readout_direction: float | None  # None: no readout (an exported folder)

    def to_json(self) -> dict[str, float | int | None]:
        """A JSON-friendly dict."""
        return {"n": self.n, "swap_cosine": round(self.swap_cosine, 5),
                "readout_direction": None if self.readout_direction is None else round(self.readout_direction, 4)}


def relation_scenes(n: int, seed: int = SEED) -> list[Scene]:
    """``n`` held-out relation scenes."""
    stream = ShapesStream(seed=seed, layouts={"relation": 1.0})
    return [stream.scene(i) for i in range(n)]


def _swapped(scene: Scene) -> tuple[str, str, int, int]:
    """The caption with its noun phrases swapped, and the word index of object 1's colour in each caption."""
    first, second = (describe(o, scene.size_stated) for o in scene.objects)
    relation_words = scene.caption[len(first) + 1:len(scene.caption) - len(second) - 1]
    swapped = f"{second} {relation_words} {first}"
    colour_word = 2 if scene.size_stated else 1
    return scene.caption, swapped, colour_word, len(second.split()) + len(relation_words.split()) + colour_word


def swap_cosine(tokenizer, encoder, scenes: list[Scene]) -> float:
    """Mean cosine of object 1's colour vector in a caption and in its swapped twin (1.0: order-blind)."""
    from generator.builtin.latent.text import tokenize

    cosines = []
    for scene in scenes:
        caption, swapped, before, after = _swapped(scene)
        encoded = tokenize(tokenizer, [caption, swapped])
        with torch.no_grad():
            vectors = encoder(encoded.input_ids, attention_mask=encoded.attention_mask)[0]
        cosines.append(torch.cosine_similarity(vectors[0, before], vectors[1, after], dim=0).item())
    return sum(cosines) / len(cosines)


def readout_direction(run: Path, scenes: list[Scene]) -> float:
    """Share of relation captions whose two objects the run's readout places in the stated direction."""
    from generator.builtin.latent.loop import run_weights
    from generator.builtin.latent.text import LayoutReadout, ReadoutConfig, text_run_encoder, tokenize

    tokenizer, encoder, record = text_run_encoder(run)
    config = ReadoutConfig(**record["config"]["model"])
    readout = LayoutReadout(config, encoder.config.d_model)
    readout.load_state_dict(run_weights(run, "readout.")[0])
    encoded = tokenize(tokenizer, [s.caption for s in scenes])
    with torch.no_grad():
        states = encoder(encoded.input_ids, attention_mask=encoded.attention_mask)[0]
        probabilities = readout.eval()(states, encoded.attention_mask).softmax(-1)
    centres = (torch.arange(config.grid) + 0.5) / config.grid
    ys = centres.view(-1, 1).expand(config.grid, config.grid).reshape(-1)
    xs = centres.view(1, -1).expand(config.grid, config.grid).reshape(-1)
    right = 0
    for row, scene in zip(probabilities, scenes):
        (ax, ay), (bx, by) = (_centroid(row, obj.colour, obj.shape, xs, ys) for obj in scene.objects)
        offset = {"above": by - ay, "below": ay - by, "left of": bx - ax, "right of": ax - bx}[scene.relation]
        right += offset > 0
    return right / len(scenes)


def _centroid(row: torch.Tensor, colour: str, shape: str, xs: torch.Tensor, ys: torch.Tensor) -> tuple[float, float]:
    weights = row[:, 1 + list(COLOURS).index(colour) * len(SHAPES) + SHAPES.index(shape)]
    weights = weights / weights.sum()
    return float((weights * xs).sum()), float((weights * ys).sum())


def measure_order(source: str | None, n: int = 200) -> OrderReport:
    """The report for a text run, an exported folder's encoder, or (None) the shapes model's."""
    from generator.builtin.latent.text import text_parts_of

    scenes = relation_scenes(n)
    tokenizer, encoder = text_parts_of(source)
    is_run = source is not None and (Path(source) / "checkpoint.pt").exists()
    direction = readout_direction(Path(source), scenes) if is_run else None
    return OrderReport(n, swap_cosine(tokenizer, encoder, scenes), direction)
