"""Measurement: where the shapes model's cross-attention goes, inside an object versus on the background.

For one-object held-out captions, the model draws each image (DDPM, 50 steps) while DAAM traces it; the
checker finds the object's mask; for every token position the script prints the mean raw attention inside the
object divided by the mean outside (1.0 = no preference). On the step-8500 weights the start token and the
first five words (which hold the colour, size and shape words) are attended *less* inside the object
(0.87-0.89), the end token and the padding after it *more* (1.07-1.30): in a causal text encoder only the late
positions have read the whole caption. That is why DAAM's word maps miss the objects on this model
(generator/weights/shapes/README.md).
  python bench/shapes_token_attention.py [--n 24] [--seed 99]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=24, help="one-object captions")
    parser.add_argument("--seed", type=int, default=99)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from generator.daam import trace
    from generator.models.shapes import ShapesAdapter, shipped_weights_dir
    from generator.training.shapes_checker import score_scene
    from generator.training.shapes_eval import held_out_scenes

    adapter = ShapesAdapter(shipped_weights_dir(), device="cpu")
    scenes = [scene for group, scene in held_out_scenes(args.n, args.seed) if group == "one_object"][: args.n]
    with trace(adapter, timestep_bins=1, padding=True) as traced:  # keep the padding positions too
        images = adapter.generate([s.caption for s in scenes], seed=args.seed, steps=50, guidance=3.0, scheduler="ddpm")
    ratios: dict[str, list[float]] = defaultdict(list)
    for index, (scene, image) in enumerate(zip(scenes, images)):
        blob = score_scene(scene, np.asarray(image.convert("RGB"))).matched[0]
        if blob is None:
            continue  # the object was not drawn: no mask to compare with
        inside = torch.from_numpy(blob.mask)
        words = len(scene.caption.split())
        for position in range(words + 1 + 8):  # start token, the words, the end token and padding after it
            heat = traced.token_map(position, index, normalized=False)
            name = "start" if position == 0 else f"word {position}" if position <= words else f"end+{position - words - 1}"
            ratios[name].append(float(heat[inside].mean() / heat[~inside].mean()))
    print(f"inside/outside mean attention per token position ({len(ratios['start'])} images with their object)")
    def order(name: str) -> tuple[int, int]:
        kind, _, number = name.replace("+", " ").partition(" ")
        return ({"start": 0, "word": 1, "end": 2}[kind], int(number or 0))

    for name in sorted(ratios, key=order):
        print(f"  {name:8s} {np.mean(ratios[name]):.3f}  (n={len(ratios[name])})")


if __name__ == "__main__":
    main()
