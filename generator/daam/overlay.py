"""DAAM stage: heat maps as coloured overlays on the image (a perceptual colormap, no plotting library).

The colormap is a degree-6 polynomial fit of matplotlib's "inferno" (perceptually uniform, readable in
grayscale); the site's widget (site/assets/js/daam.js) evaluates the same polynomial in JavaScript, and
tests/daam/test_overlay_colormap.py keeps its copy of the table equal to ``INFERNO``.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

# inferno(t) = sum_k C[k] t^k per channel (Matt Zucker's fit of the matplotlib colormap)
INFERNO = np.array([
    [0.0002189403691192265, 0.001651004631001012, -0.01948089843709184],
    [0.1065134194856116, 0.5639564367884091, 3.932712388889277],
    [11.60249308247187, -3.972853965665698, -15.9423941062914],
    [-41.70399613139459, 17.43639888205313, 44.35414519872813],
    [77.162935699427, -33.40235894210092, -81.80730925738993],
    [-71.31942824499214, 32.62606426397723, 73.20951985803202],
    [25.13112622477341, -12.24266895238567, -23.07032500287172],
])


def inferno(values: np.ndarray) -> np.ndarray:
    """(..., 3) RGB in [0, 1] for values in [0, 1]."""
    t = np.clip(values, 0, 1)[..., None]
    rgb = np.zeros(t.shape[:-1] + (3,))
    for coefficient in INFERNO[::-1]:  # Horner
        rgb = rgb * t + coefficient
    return np.clip(rgb, 0, 1)


def overlay(image: Image.Image, heat_map: torch.Tensor, *, opacity: float = 0.6, tau: float | None = None) -> Image.Image:
    """The image with the map coloured on top (more opaque where the map is high).

    With ``tau``, the region outside the DAAM mask (Eq. 7: map < tau * max) is darkened instead.
    """
    heat = heat_map.detach().float().cpu().numpy()
    if heat.shape != (image.height, image.width):
        heat = np.asarray(Image.fromarray(heat.astype(np.float32), mode="F").resize(image.size, Image.BICUBIC))
    heat = np.clip(heat / max(float(heat.max()), 1e-12), 0, 1)
    base = np.asarray(image.convert("RGB"), dtype=np.float64) / 255
    alpha = (opacity * heat)[..., None]
    blended = base * (1 - alpha) + inferno(heat) * alpha
    if tau is not None:
        blended = np.where((heat >= tau)[..., None], blended, base * 0.25)
    return Image.fromarray((blended * 255).round().astype(np.uint8))
