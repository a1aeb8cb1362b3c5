"""Measurement: how much the shapes model's picture depends on each kind of word, per noise level.

For pairs of captions that differ in one word of one kind (position: "on the left" / "on the right"; size:
"small" / "large"; colour; shape), the model predicts the noise for the same noisy inputs under both captions;
the script prints the RMS difference of the two predicted clean images (``generator.diffusion.sampling.predicted_x0``,
for an epsilon or a v model), per timestep. A word kind the model ignores
prints ~0. On the step-8500 CLIP model position printed 0.001 at every t from 900 down (colour 0.15-0.23):
it drew "on the left" and "on the right" identically, which is why the UNet got x/y input channels
(``--coordinates``). t = 999 is left out: there a = 0.00004 and the factor blows any difference up.
  python bench/shapes_text_sensitivity.py [--weights generator/weights/shapes] [--n 16]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

PAIRS = {
    "position": ("a red circle on the left", "a red circle on the right"),
    "size": ("a small red circle", "a large red circle"),
    "colour": ("a red circle", "a blue circle"),
    "shape": ("a red circle", "a red square"),
}
TIMESTEPS = (900, 800, 700, 600, 500, 300, 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=None, help="model folder (default: the shipped shapes model)")
    parser.add_argument("--n", type=int, default=16, help="noisy inputs per timestep")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from generator.diffusion.sampling import predicted_x0
    from generator.models.shapes import ShapesAdapter, shipped_weights_dir

    adapter = ShapesAdapter(Path(args.weights) if args.weights else shipped_weights_dir())
    alphas = adapter.make_scheduler("ddpm").alphas_cumprod
    noisy = torch.randn(args.n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    embedded = {caption: adapter.encode_prompts([caption] * args.n).cond for pair in PAIRS.values() for caption in pair}
    print("RMS change of the predicted clean image when one word changes")
    print("   t  " + "  ".join(f"{kind:>9s}" for kind in PAIRS))
    with torch.no_grad():
        for t in TIMESTEPS:
            timestep = torch.full((args.n,), t)
            row = []
            for first, second in PAIRS.values():
                x0 = [predicted_x0(adapter.denoise(noisy, timestep, embedded[caption]), noisy, float(alphas[t]),
                                   adapter.prediction_type) for caption in (first, second)]
                row.append(float((x0[0] - x0[1]).pow(2).mean().sqrt()))
            print(f"{t:4d}  " + "  ".join(f"{value:9.3f}" for value in row))


if __name__ == "__main__":
    main()
