"""Measurement: where the shapes model's cross-attention goes, inside an object versus on the background.

For one-object held-out captions, the model draws each image (DDPM, 50 steps) while DAAM traces it; the
checker finds the object's mask; for every token position the script prints the mean raw attention inside the
object divided by the mean outside (1.0 = no preference). On the step-8500 weights the start token and the
first five words (which hold the colour, size and shape words) are attended *less* inside the object
(0.87-0.89), the end token and the padding after it *more* (1.07-1.30): in a causal text encoder only the late
positions have read the whole caption. That is why DAAM's word maps miss the objects on that model
(generator/weights/shapes/README.md). A model with a T5 encoder masks its padding: those positions get none.
  python bench/shapes_token_attention.py [--n 24] [--seed 99] [--weights generator/weights/shapes]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=24, help="one-object captions")
    parser.add_argument("--seed", type=int, default=99)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--weights", default=None, help="model folder (default: the shipped shapes model)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from generator.builtin.shapes.world import COLOURS, SHAPES, SIZES
    from generator.daam import trace
    from generator.evaluate.shapes_checker import score_scene
    from generator.evaluate.shapes_report import held_out_scenes
    from generator.models.shapes import ShapesAdapter, shipped_weights_dir

    roles = {**{w: "shape word" for w in SHAPES}, **{w: "colour word" for w in COLOURS}, **{w: "size word" for w in SIZES}}

    adapter = ShapesAdapter(Path(args.weights) if args.weights else shipped_weights_dir(), device="cpu")
    scenes = [scene for group, scene in held_out_scenes(args.n, args.seed) if group == "one_object"][: args.n]
    with trace(adapter, timestep_bins=1, padding=True) as traced:  # keep the padding positions too
        images = adapter.generate([s.caption for s in scenes], seed=args.seed, steps=50, guidance=3.0, scheduler="ddpm")
    ratios: dict[str, list[float]] = defaultdict(list)
    by_role: dict[str, list[float]] = defaultdict(list)
    for index, (scene, image) in enumerate(zip(scenes, images)):
        blob = score_scene(scene, np.asarray(image.convert("RGB"))).matched[0]
        if blob is None:
            continue  # the object was not drawn: no mask to compare with
        inside = torch.from_numpy(blob.mask)
        pieces = [p for p in traced.tokens(index) if p.special != "pad"]
        padding = [p for p in traced.tokens(index) if p.special == "pad"][:8]
        for piece in pieces + padding:  # start token (CLIP only), the words, the end token, 8 padding positions
            heat = traced.token_map(piece.index, index, normalized=False)
            name = piece.special or f"word {piece.word_index + 1}"
            if piece.special == "pad":
                name = f"end+{padding.index(piece) + 1}"
            outside = heat[~inside].mean()
            if outside > 0:  # masked padding gets no attention at all
                ratio = float(heat[inside].mean() / outside)
                ratios[name].append(ratio)
                if not piece.special:
                    by_role[roles.get(piece.text.lower(), "other word")].append(ratio)
    print(f"inside/outside mean attention per token position ({len(ratios['end'])} images with their object)")
    def order(name: str) -> tuple[int, int]:
        kind, _, number = name.replace("+", " ").partition(" ")
        return ({"start": 0, "word": 1, "end": 2}[kind], int(number or 0))

    for name in sorted(ratios, key=order):
        print(f"  {name:8s} {np.mean(ratios[name]):.3f}  (n={len(ratios[name])})")
    print("by the word's role in the caption")
    for name in sorted(by_role):
        print(f"  {name:11s} {np.mean(by_role[name]):.3f}  (n={len(by_role[name])})")


if __name__ == "__main__":
    main()
