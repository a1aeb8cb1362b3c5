"""Experiments stage: input images and masks as the model sees them.

Any PNG/JPEG/WebP (up to ``MAX_IMAGE_PIXELS``) is centre-cropped to the model's aspect ratio (the largest centred
crop), then resized to the model's size with a Lanczos filter; transparency is flattened onto white. Mask files get the
same crop and resize (nearest neighbour) and are thresholded at half grey: white = generate, black = keep.
Every file is opened through ``open_bounded_image``, which refuses a larger one from its header, before a pixel
is decoded (a decompression bomb); the bake's checks before any work open the prompt file's images the same way
(generator/bake/preflight.py). Box and ellipse masks are fractions [left, top, right, bottom] of the image as the
model sees it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from generator.errors import UserError
from generator.spec.experiments import MaskSpec

IMAGE_FORMATS = {"PNG", "JPEG", "WEBP"}
# 8192 x 8192: above any phone or camera photo a course uses (48-50 MP), below PIL's own bomb warning (89 MP);
# a decoded image this size is 200 MB of RGB, and every input is resized to the model's size anyway
MAX_IMAGE_PIXELS = 8192 * 8192


class ImageTooLarge(ValueError):
    """An image whose header declares more than ``MAX_IMAGE_PIXELS`` (a decompression bomb, or just too big)."""


def open_bounded_image(path: str | Path) -> Image.Image:
    """``Image.open`` (which reads only the header), refused before decoding when it has too many pixels."""
    try:
        with warnings.catch_warnings():  # PIL warns past 89 MP; ours is the one message, below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as error:  # PIL's own limit (2 x 89 MP), hit before ours can be
        raise ImageTooLarge(f"is too large to open ({str(error).splitlines()[0][:120]})") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise ImageTooLarge(f"is {width}x{height} ({width * height / 1e6:.1f} megapixels); at most "
                            f"{MAX_IMAGE_PIXELS / 1e6:.1f} megapixels ({MAX_IMAGE_PIXELS:,} pixels) are allowed")
    return image


def _crop_to_aspect(image: Image.Image, width: int, height: int) -> Image.Image:
    """The largest centred crop of ``image`` with the aspect ratio of ``width`` x ``height``."""
    source_w, source_h = image.size
    scale = min(source_w / width, source_h / height)
    crop_w, crop_h = round(width * scale), round(height * scale)
    left, top = (source_w - crop_w) // 2, (source_h - crop_h) // 2
    return image.crop((left, top, left + crop_w, top + crop_h))


def load_rgb(path: str) -> Image.Image:
    """An image file as RGB (alpha flattened onto white); refused from its header when it has too many pixels."""
    try:
        opened = open_bounded_image(path)
    except ImageTooLarge as error:  # the bake checked it before any work; the file changed since
        raise UserError(f"{path} {error}") from None
    with opened as image:
        image.load()
        if image.mode in ("RGBA", "LA", "P"):
            rgba = image.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            return flat
        return image.convert("RGB")


def fit_image(path: str, width: int, height: int) -> torch.Tensor:
    """(3, height, width) float32 in [0, 1]: centre crop to the aspect ratio, then Lanczos resize."""
    image = _crop_to_aspect(load_rgb(path), width, height).resize((width, height), Image.LANCZOS)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1).contiguous()


def mask_tensor(mask: MaskSpec, width: int, height: int) -> torch.Tensor:
    """(1, height, width) float32, 1 where the model fills in."""
    if mask.shape == "file":
        grey = _crop_to_aspect(load_rgb(mask.file).convert("L"), width, height).resize((width, height), Image.NEAREST)
        return torch.from_numpy((np.asarray(grey) >= 128).astype(np.float32))[None]
    left, top, right, bottom = mask.bounds
    x = (torch.arange(width, dtype=torch.float32) + 0.5) / width
    y = (torch.arange(height, dtype=torch.float32) + 0.5) / height
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    if mask.shape == "box":
        inside = (xx >= left) & (xx <= right) & (yy >= top) & (yy <= bottom)
    else:  # ellipse inscribed in the box
        cx, cy, rx, ry = (left + right) / 2, (top + bottom) / 2, (right - left) / 2, (bottom - top) / 2
        inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
    return inside.float()[None]
