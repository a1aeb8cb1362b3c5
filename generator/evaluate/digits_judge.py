"""Evaluate stage: the digits judge. The shipped MNIST classifier reads a published digit image and
says which digit it sees and how sure it is; a claim is right when it sees the digit asked for (a class
model's label), or, for an image asked only to be "a digit" (the time-conditioned model), when it is sure
(confidence >= CONFIDENT, the same bar as the time model's eval target).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from generator.evaluate.shapes_judge import Claim

CONFIDENT = 0.9
ANY_DIGIT = "a digit"


@functools.lru_cache(maxsize=1)
def shipped_classifier() -> torch.nn.Module:
    """The classifier shipped with the digits models (loaded once per process)."""
    from generator.builtin.digits.classifier import load_classifier
    from generator.builtin.digits.weights import shipped_weights_dir

    return load_classifier(shipped_weights_dir() / "classifier" / "model.safetensors")


def read_digit(image: np.ndarray) -> tuple[int, float]:
    """(digit, confidence) of an (H, W, 3) or (H, W) uint8 image of 28x28 pixels."""
    from generator.builtin.digits.classifier import classify

    gray = image.astype(np.float32).mean(axis=-1) if image.ndim == 3 else image.astype(np.float32)
    probabilities = classify(shipped_classifier(), torch.from_numpy(gray / 255.0)[None, None])[0]
    digit = int(probabilities.argmax())
    return digit, float(probabilities[digit])


def judge_digit(asked: str, image: np.ndarray) -> tuple[Claim, ...] | None:
    """One claim: the digit asked for ("0".."9") or, for ``ANY_DIGIT``, a confidently readable digit."""
    asked = asked.strip()
    if asked not in {str(d) for d in range(10)} and asked != ANY_DIGIT:
        return None
    digit, confidence = read_digit(image)
    found = f"{digit}, {confidence:.0%} sure"
    right = confidence >= CONFIDENT if asked == ANY_DIGIT else str(digit) == asked
    return (Claim("label", asked, found, right),)
