"""Issue 20: the bake's peak extra memory does not grow with the step count beyond the frames it must keep.

One prompt on testing:tiny-sd (trajectory, guidance branches, DAAM, jumps from fixed steps, so their batch is the
same at any step count), baked at 10 and at 40 steps in one process. Its peak extra heap is sampled (glibc's
``mallinfo2``: torch's CPU tensors, PIL's images and the encoders' buffers all live there) while it runs. What the
bake must keep per step is the frames the page shows for it; they are counted from the manifest (every sprite's
frames, as float32 RGB while they are decoded). At 128x128 with previews of 32 px, a full-size frame is 16 times a
preview: keeping per-step decodes at full size, or a map per step and layer, breaks the bound.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import threading
import time

import pytest

from generator.bake.runner import bake_prompt
from generator.bake.store import AssetStore
from generator.spec.prompt_set import load_prompt_set

pytestmark = pytest.mark.slow

PROMPTS = """
model: testing:tiny-sd
defaults: {steps: STEPS, guidance: 7.5, seed: 0, width: 128, height: 128, scheduler: ddim, preview_size: 32}
prompts:
  - id: cat
    text: a smiling, red cat chewing gum
    jumps: {every: null, at: [2, 6], steps: [1, 2, 4]}
"""
FLOAT_RGB = 3 * 4  # bytes per pixel of a decoded frame
FACTOR = 3  # a frame is held decoded, as a picture and in its sheet's encoder
SLACK = 5_000_000  # allocator and interpreter noise between two runs (measured: 1 to 3 MB)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def heap_in_use():
    """A function giving the bytes malloc has handed out (heap + mmapped), or skip where glibc is not there."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        pytest.skip("needs glibc >= 2.33 (mallinfo2)")

    def in_use() -> int:
        info = libc.mallinfo2()
        return info.uordblks + info.hblkhd

    return in_use


def published_frame_bytes(manifest: dict) -> int:
    """Every sprite frame of the manifest, as decoded float32 RGB."""
    total = 0
    stack = [manifest]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if {"src", "count", "frame_width", "frame_height"} <= node.keys():
                total += node["count"] * node["frame_width"] * node["frame_height"] * FLOAT_RGB
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return total


def peak_extra(adapter, tmp_path, steps: int, in_use) -> tuple[int, int]:
    """(peak extra heap while baking the prompt at ``steps``, bytes of the frames its manifest publishes)."""
    (tmp_path / f"{steps}.yaml").write_text(PROMPTS.replace("STEPS", str(steps)))
    prompt = load_prompt_set(tmp_path / f"{steps}.yaml").prompts[0]
    gc.collect()
    baseline = in_use()
    peak, running = [baseline], [True]

    def sample() -> None:
        while running[0]:
            peak[0] = max(peak[0], in_use())
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        manifest = bake_prompt(adapter, prompt, AssetStore(tmp_path / f"out-{steps}"), "key", lambda *a, **k: None)
    finally:
        running[0] = False
        sampler.join()
    return peak[0] - baseline, published_frame_bytes(json.loads(json.dumps(manifest)))


def test_peak_extra_memory_grows_with_steps_only_by_the_frames_it_keeps(tiny_sd, tmp_path, one_thread):
    in_use = heap_in_use()
    peak_extra(tiny_sd, tmp_path, 2, in_use)  # warm-up: first-call caches (kernels, tokenizer, encoders)
    few, few_frames = peak_extra(tiny_sd, tmp_path, 10, in_use)
    many, many_frames = peak_extra(tiny_sd, tmp_path, 40, in_use)
    kept = many_frames - few_frames
    assert kept > 0  # the page really shows more frames at 40 steps
    growth = many - few
    assert growth <= FACTOR * kept + SLACK, (
        f"peak extra {few / 1e6:.1f} MB at 10 steps, {many / 1e6:.1f} MB at 40: +{growth / 1e6:.1f} MB, "
        f"frames +{kept / 1e6:.1f} MB")
