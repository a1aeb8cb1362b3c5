"""Evaluate stage: how faithful the latent model's autoencoder is, on held-out scenes of the shapes world.

Three numbers, as issue 16 asks: reconstruction PSNR of a round trip (encode to the posterior mean, decode), the
share of the checker's claims whose verdict the round trip leaves unchanged (a VAE that moves a shape's edge can
turn "small" into "large" or a triangle into a blob), and the standard deviation of the scaled latents (the scaling
factor is right when it is close to 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from generator.builtin.latent.vae import held_out, latent_std, psnr, round_trip
from generator.evaluate.shapes_checker import score_scene


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) floats in [-1, 1] -> (B, H, W, 3) uint8, as the checker reads images."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


EVAL_SEED = 4242  # not the scenes the scaling factor was measured on


def measure_vae(vae, resolution: int, n: int = 200, seed: int = EVAL_SEED) -> dict[str, Any]:
    """PSNR, unchanged checker verdicts and scaled-latent std of ``vae`` on ``n`` held-out scenes."""
    images, scenes = held_out(resolution, n, seed)
    rebuilt = round_trip(vae, images)
    before, after = to_pixels(images), to_pixels(rebuilt)
    same = total = 0
    for scene, original, decoded in zip(scenes, before, after):
        truth = score_scene(scene, original).attributes
        seen = score_scene(scene, decoded).attributes
        same += sum(a.correct == b.correct for a, b in zip(truth, seen))
        total += len(truth)
    return {
        "n_scenes": n,
        "resolution": resolution,
        "psnr_db": round(psnr(images, rebuilt), 2),
        "claims_unchanged": round(same / total, 4),
        "n_claims": total,
        "scaled_latent_std": round(latent_std(vae, images) * vae.config.scaling_factor, 4),
    }
