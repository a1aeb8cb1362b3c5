"""Bake stage: image encoders (sprite sheets, stills, GIF and MP4 downloads), deterministic byte for byte."""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

MAX_SPRITE_SIDE = 16383  # WebP's limit on either side


@dataclass(frozen=True)
class SpriteSheet:
    """Encoded frames in a row-major grid."""

    data: bytes
    frame_width: int
    frame_height: int
    columns: int
    count: int


def preview_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """Frame size with the longer side at most ``longest``, aspect kept.

    Never upscales: small frames are stored at their own size and enlarged by the browser with
    ``image-rendering: pixelated`` (the viewports size themselves in CSS), which keeps sheets small and
    their encoding cheap.
    """
    scale = min(longest / max(width, height), 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def pack_grid(tiles: Sequence[Image.Image], columns: int, gap: int = 0, background: int | tuple[int, ...] = 0
              ) -> Image.Image:
    """Tiles of one size and mode in a row-major grid of ``columns``, ``gap`` pixels apart (frame i at column
    i % columns, row i // columns: the layout render's sprite geometry assumes)."""
    width, height = tiles[0].size
    rows = -(-len(tiles) // columns)
    size = (columns * width + (columns - 1) * gap, rows * height + (rows - 1) * gap)
    sheet = Image.new(tiles[0].mode, size, background)
    for index, tile in enumerate(tiles):
        sheet.paste(tile, ((index % columns) * (width + gap), (index // columns) * (height + gap)))
    return sheet


def sprite_sheet(frames: Sequence[Image.Image], frame_size: tuple[int, int], quality: int = 90) -> SpriteSheet:
    """Pack frames into one WebP grid (one request per strip).

    Frames kept at their own size are stored lossless, so pixels stay crisp and colours exact (lossy WebP
    halves chroma resolution, which smears small coloured shapes); downscaled frames are lossy.
    """
    width, height = frame_size
    columns = max(1, min(len(frames), MAX_SPRITE_SIDE // width))
    resample = Image.NEAREST if frames[0].width <= width else Image.LANCZOS
    sheet = pack_grid([frame.convert("RGB").resize((width, height), resample) for frame in frames], columns)
    buffer = io.BytesIO()
    upscaled = frames[0].width <= width
    if upscaled:
        sheet.save(buffer, format="WEBP", lossless=True, quality=50, method=2)  # quality: effort when lossless
    else:
        sheet.save(buffer, format="WEBP", quality=quality, method=4)
    return SpriteSheet(buffer.getvalue(), width, height, columns, len(frames))


def png_bytes(image: Image.Image) -> bytes:
    """Lossless PNG at zlib's default level (``optimize`` costs seconds per sheet for a few percent)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def gif_bytes(frames: Sequence[Image.Image], size: tuple[int, int], frame_ms: int = 120, hold_ms: int = 1200) -> bytes:
    """Looping GIF of the frames (the last one held longer), for slides."""
    # one fast octree palette per frame: Pillow's default median cut costs ~0.1 s a frame
    resized = [f.convert("RGB").resize(size, Image.NEAREST).quantize(256, Image.Quantize.FASTOCTREE) for f in frames]
    durations = [frame_ms] * (len(resized) - 1) + [hold_ms]
    buffer = io.BytesIO()
    resized[0].save(buffer, format="GIF", save_all=True, append_images=resized[1:], duration=durations, loop=0)
    return buffer.getvalue()


def mp4_bytes(frames: Sequence[Image.Image], size: tuple[int, int], fps: int = 8) -> bytes:
    """H.264 MP4 (yuv420p, even sides, bit-exact flags so equal frames give equal bytes), for slides."""
    import imageio.v2 as imageio

    width, height = size[0] + size[0] % 2, size[1] + size[1] % 2
    handle, temporary = tempfile.mkstemp(suffix=".mp4")
    os.close(handle)
    try:
        writer = imageio.get_writer(
            temporary, fps=fps, codec="libx264", macro_block_size=1, pixelformat="yuv420p",
            output_params=["-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1", "-threads", "1"],
        )
        with writer:
            for frame in list(frames) + [frames[-1]] * fps:  # hold the final image for a second
                writer.append_data(np.asarray(frame.convert("RGB").resize((width, height), Image.NEAREST)))
        return Path(temporary).read_bytes()
    finally:
        Path(temporary).unlink(missing_ok=True)
