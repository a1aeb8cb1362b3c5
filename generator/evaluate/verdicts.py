"""Evaluate stage: the verdict of every published image whose model has a judge: what it was asked to show, what the
judge found, claim by claim, and whether the prompt file expected it to fail (to teach a failure on purpose).

A verdict is stored next to the image entry it judges (``{"src": ..., "verdict": {...}}``), so render finds
every judged figure by walking the manifests, whatever the chapter. Judges are named by the adapter
(``adapter.judge``: "shapes", "digits"); models without one (Stable Diffusion, the testing models) get none.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from generator.evaluate.digits_judge import judge_digit
from generator.evaluate.shapes_judge import judge_prompt
from generator.models.base import to_pil
from generator.spec.prompt_set import Expectation

JUDGES: dict[str, tuple[Callable[[str, np.ndarray], Any], str]] = {  # name -> (judge(asked, image), what it is)
    "shapes": (judge_prompt, "the shapes checker"),
    "digits": (judge_digit, "the digit classifier"),
}


def judge_of(adapter: Any) -> Callable[[str, np.ndarray], Any] | None:
    """The adapter's judge function, or None when its model has none."""
    name = getattr(adapter, "judge", None)
    if name is None:
        return None
    return JUDGES[name][0]


def _pixels(image: Any) -> np.ndarray:
    """(H, W, 3) uint8 from a PIL image or a (3, H, W) [0, 1] tensor."""
    if torch.is_tensor(image):
        (image,) = to_pil(image[None] if image.ndim == 3 else image)
    return np.asarray(image.convert("RGB"))


def verdict(adapter: Any, asked: str, image: Any, expect: Expectation | None = None) -> dict | None:
    """The verdict of one image against ``asked``; None when the model has no judge or the judge cannot read
    the prompt (then the page shows no verdict, and the build does not count the figure)."""
    judge = judge_of(adapter)
    if judge is None:
        return None
    claims = judge(asked, _pixels(image))
    if claims is None:
        return None
    result = {"judge": adapter.judge, "asked": asked, "claims": [c.to_json() for c in claims],
              "agrees": all(c.correct for c in claims)}
    if expect is not None:
        result["expect"] = {"outcome": expect.outcome, "reason": expect.reason}
    return result


def judged(entry: dict, adapter: Any, asked: str, image: Any, expect: Expectation | None = None) -> dict:
    """An image entry with its verdict added (unchanged when there is none)."""
    found = verdict(adapter, asked, image, expect)
    return entry if found is None else {**entry, "verdict": found}


def grid_verdict(adapter_judge: str, images: torch.Tensor, asked: list[str], target: float,
                 expect: Expectation | None = None) -> dict:
    """The verdict of a sample grid: one claim per cell (the digit classifier reading it), agreeing when the share
    of right cells meets ``target`` (the model's own target: a grid of 40 samples is a measurement, not a
    promise that every sample is perfect)."""
    judge = JUDGES[adapter_judge][0]
    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()  # (n, h, w)
    claims = [claim for cell, wanted in zip(pixels, asked) for claim in judge(wanted, cell)]
    right = sum(c.correct for c in claims) / len(claims)
    result = {"judge": adapter_judge, "asked": f"{len(claims)} samples: {_asked_summary(asked)}, at least {target:.0%} right",
              "claims": [c.to_json() for c in claims], "agrees": right >= target, "share_right": round(right, 4)}
    if expect is not None:
        result["expect"] = {"outcome": expect.outcome, "reason": expect.reason}
    return result


def _asked_summary(asked: list[str]) -> str:
    distinct = sorted(set(asked))
    return ", ".join(distinct) if len(distinct) <= 10 else f"{len(distinct)} kinds"
