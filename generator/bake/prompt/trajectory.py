"""Bake stage: a trajectory's frames as sprite sheets, the final image, and GIF/MP4 downloads."""

from __future__ import annotations

from dataclasses import asdict

from PIL import Image

from generator.bake.encoders import gif_bytes, mp4_bytes, png_bytes, preview_size, sprite_sheet
from generator.bake.store import AssetStore
from generator.experiments.prompt.trajectory import Trajectory
from generator.models.base import to_pil


def sprite_entry(store: AssetStore, frames: list[Image.Image], frame_size: tuple[int, int]) -> dict:
    """Encode frames as one sprite sheet and describe it for the manifest."""
    sheet = sprite_sheet(frames, frame_size)
    entry = asdict(sheet)
    del entry["data"]
    return {"src": store.put(sheet.data, "webp"), **entry}


def image_entry(store: AssetStore, image: Image.Image) -> dict:
    """A lossless still."""
    return {"src": store.put(png_bytes(image), "png"), "width": image.width, "height": image.height}


def bake_trajectory(trajectory: Trajectory, store: AssetStore, preview: int) -> dict:
    """Manifest sections ``final`` and ``trajectory`` for one trajectory."""
    noisy, predicted = to_pil(trajectory.noisy), to_pil(trajectory.predicted)
    (final,) = to_pil(trajectory.final_image[None])
    frame_size = preview_size(final.width, final.height, preview)
    side_by_side = [_pair(a, b) for a, b in zip(noisy, predicted)]
    download_size = preview_size(final.width, final.height, max(256, preview))
    download_size = (download_size[0] * 2, download_size[1])
    return {
        "final": image_entry(store, final),
        "trajectory": {
            "steps": len(trajectory.timesteps),
            "timesteps": list(trajectory.timesteps),
            "alpha_bars": list(trajectory.alpha_bars),
            "noisy": sprite_entry(store, noisy, frame_size),
            "predicted": sprite_entry(store, predicted, frame_size),
            "downloads": {
                "gif": store.put(gif_bytes(side_by_side, download_size), "gif"),
                "mp4": store.put(mp4_bytes(side_by_side, download_size), "mp4"),
            },
        },
    }


def _pair(noisy: Image.Image, predicted: Image.Image) -> Image.Image:
    """x_t and predicted x0 side by side (for the slide downloads)."""
    both = Image.new("RGB", (noisy.width * 2, noisy.height))
    both.paste(noisy, (0, 0))
    both.paste(predicted, (noisy.width, 0))
    return both


