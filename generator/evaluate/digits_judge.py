"""Evaluate stage: the digits judge. The shipped MNIST classifier reads a published digit image and
says which digit it sees and how sure it is; a claim is right when it sees the digit asked for (a class
model's label), or, for an image asked only to be "a digit" (the time-conditioned model), when it is sure
(confidence >= CONFIDENT, the same bar as the time model's eval target).

A classifier trained on digits only answers "which digit?", and answers it for anything: the shipped one
reads pure Gaussian noise as an 8 with confidence 1.00. So an image must first look like an MNIST digit at
all (``looks_like_a_digit``: a dark frame, some ink, few mid-grey pixels). The bounds hold every one of
MNIST's 10,000 test digits with margin (measured: ink 2.4-32.9% of pixels, mid-grey at most 11.4%, the
3-pixel frame at most 0.039 bright on average) and refuse noise (its frame averages 0.31).

A second, independent classifier (``classifier2``: another architecture, recipe and seed, see
``generator/builtin/digits/classifier2.py``) judges the eval's samples beside the shipped one, so a reported
share does not hang on one network; figures on pages keep the shipped judge. Both pass the same gate.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from generator.evaluate.shapes_judge import Claim

CONFIDENT = 0.9
ANY_DIGIT = "a digit"
INK = (0.01, 0.45)  # share of pixels brighter than 0.5 (MNIST test: 0.024-0.329)
MAX_MID_GREY = 0.18  # share of pixels in (0.2, 0.8) (MNIST test: at most 0.114; clipped noise: 0.21)
MAX_FRAME = 0.1  # mean brightness of the 3-pixel frame (MNIST test: at most 0.039; noise: 0.31)


def not_a_digit(gray: np.ndarray) -> str | None:
    """Why an (H, W) image in [0, 1] does not look like an MNIST digit at all, or None when it does."""
    ink = float((gray > 0.5).mean())
    mid_grey = float(((gray > 0.2) & (gray < 0.8)).mean())
    frame = float(np.concatenate([gray[:3].ravel(), gray[-3:].ravel(), gray[:, :3].ravel(), gray[:, -3:].ravel()]).mean())
    if frame > MAX_FRAME:
        return f"not a digit: the border is bright ({frame:.2f})"
    if mid_grey > MAX_MID_GREY:
        return f"not a digit: {mid_grey:.0%} of pixels are mid-grey"
    if not INK[0] <= ink <= INK[1]:
        return f"not a digit: {ink:.0%} of pixels are ink"
    return None


@functools.lru_cache(maxsize=1)
def shipped_classifier() -> torch.nn.Module:
    """The classifier shipped with the digits models (loaded once per process)."""
    from generator.builtin.digits.classifier import load_classifier
    from generator.builtin.digits.weights import shipped_weights_dir

    return load_classifier(shipped_weights_dir() / "classifier" / "model.safetensors")


@functools.lru_cache(maxsize=1)
def independent_classifier() -> torch.nn.Module:
    """The independent judge shipped next to the digits models (loaded once per process)."""
    from generator.builtin.digits.classifier2 import load_classifier2
    from generator.builtin.digits.weights import shipped_weights_dir

    return load_classifier2(shipped_weights_dir() / "classifier2")


def read_digit(image: np.ndarray) -> tuple[int | None, float]:
    """(digit, confidence) of an (H, W, 3) or (H, W) uint8 image of 28x28 pixels; (None, 0.0) when the image
    does not look like a digit at all."""
    digit, confidence, _ = read_digit_explained(image)
    return digit, confidence


def read_digit_explained(image: np.ndarray, classifier: torch.nn.Module | None = None) -> tuple[int | None, float, str]:
    """``read_digit`` plus what was found, in words ("7, 98% sure" or why it is not a digit); ``classifier``
    defaults to the shipped judge."""
    from generator.builtin.digits.classifier import classify

    gray = (image.astype(np.float32).mean(axis=-1) if image.ndim == 3 else image.astype(np.float32)) / 255.0
    refused = not_a_digit(gray)
    if refused:
        return None, 0.0, refused
    probabilities = classify(classifier or shipped_classifier(), torch.from_numpy(gray)[None, None])[0]
    digit = int(probabilities.argmax())
    confidence = float(probabilities[digit])
    return digit, confidence, f"{digit}, {confidence:.0%} sure"


def judge_digit(asked: str, image: np.ndarray) -> tuple[Claim, ...] | None:
    """One claim: the digit asked for ("0".."9") or, for ``ANY_DIGIT``, a confidently readable digit."""
    asked = asked.strip()
    if asked not in {str(d) for d in range(10)} and asked != ANY_DIGIT:
        return None
    digit, confidence, found = read_digit_explained(image)
    right = digit is not None and (confidence >= CONFIDENT if asked == ANY_DIGIT else str(digit) == asked)
    return (Claim("label", asked, found, right),)
