"""Evaluate stage: rates from the judge's claims, each with n and a 95% bootstrap interval.

Claims of one image are not independent (a missing object fails its binding and its relation), so intervals
resample whole images (percentile bootstrap, Efron & Tibshirani 1993, ch. 13), with a fixed seed so a report
is reproducible.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from generator.evaluate.shapes_judge import Claim

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0


def rate_with_interval(right: Sequence[int], total: Sequence[int]) -> dict[str, Any] | None:
    """Pooled share right[i].sum() / total[i].sum() over images, with a 95% interval resampling images."""
    right_array, total_array = np.asarray(right, dtype=np.float64), np.asarray(total, dtype=np.float64)
    keep = total_array > 0
    right_array, total_array = right_array[keep], total_array[keep]
    if not len(total_array):
        return None
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    picks = rng.integers(0, len(total_array), size=(BOOTSTRAP_SAMPLES, len(total_array)))
    resampled = right_array[picks].sum(axis=1) / total_array[picks].sum(axis=1)
    low, high = np.percentile(resampled, [2.5, 97.5])
    return {"rate": round(float(right_array.sum() / total_array.sum()), 4), "low": round(float(low), 4),
            "high": round(float(high), 4), "n": int(total_array.sum()), "images": int(len(total_array))}


def claim_rates(claims_per_image: Sequence[Sequence[Claim]]) -> dict[str, Any]:
    """Scene right (every claim right), binding (object claims), and each other claim kind, with intervals."""
    rates: dict[str, Any] = {
        "scene_right": rate_with_interval([int(all(c.correct for c in claims)) for claims in claims_per_image],
                                          [1] * len(claims_per_image)),
    }
    kinds = sorted({c.kind for claims in claims_per_image for c in claims})
    for kind in kinds:
        name = "binding" if kind == "object" else kind
        rates[name] = rate_with_interval([sum(c.correct for c in claims if c.kind == kind) for claims in claims_per_image],
                                         [sum(1 for c in claims if c.kind == kind) for claims in claims_per_image])
    return rates
