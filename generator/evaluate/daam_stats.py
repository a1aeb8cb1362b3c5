"""Evaluate stage: the small statistics the DAAM analyses share (issue 19): overlaps, spread, AUC, intervals.

Maps are (H, W) tensors, min-max normalized as DAAM thresholds them (``generator.daam.aggregate.normalize``);
masks are bool (H, W). Every mean is reported with n and a 95% percentile bootstrap interval (Efron & Tibshirani
1993, ch. 13) that resamples the units given (captions or objects), with a fixed seed so reports are reproducible.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    union = (a | b).sum().item()
    return 1.0 if union == 0 else (a & b).sum().item() / union


def soft_overlap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Histogram intersection of two non-negative maps, each scaled to sum 1: 1 identical, 0 disjoint (no tau)."""
    a, b = a.clamp_min(0).double(), b.clamp_min(0).double()
    if a.sum() <= 0 or b.sum() <= 0:
        return 0.0
    return float(torch.minimum(a / a.sum(), b / b.sum()).sum())


def area(mask: torch.Tensor) -> float:
    """Share of the image a mask covers."""
    return float(mask.float().mean())


def spread(heat: torch.Tensor) -> float:
    """Root mean squared distance of the map's mass from its centroid, in image sides (DAAM §5 "spread").

    The map is taken as a mass distribution over pixel centres at ((x + 0.5) / W, (y + 0.5) / H); a uniform
    square of side s has spread s / sqrt(6) (each axis s^2 / 12), a point 0.
    """
    weights = heat.clamp_min(0).double()
    total = weights.sum()
    if total <= 0:
        return 0.0
    height, width = weights.shape
    ys = (torch.arange(height, dtype=torch.float64) + 0.5) / height
    xs = (torch.arange(width, dtype=torch.float64) + 0.5) / width
    cy = (weights.sum(1) * ys).sum() / total
    cx = (weights.sum(0) * xs).sum() / total
    second = (weights * ((ys[:, None] - cy) ** 2 + (xs[None, :] - cx) ** 2)).sum() / total
    return float(second.sqrt())


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve of ``scores`` predicting ``labels`` (Mann-Whitney U / (n1 n0); ties count 1/2)."""
    scores_array = np.asarray(scores, dtype=np.float64)
    labels_array = np.asarray(labels, dtype=bool)
    positives, negatives = scores_array[labels_array], scores_array[~labels_array]
    if not len(positives) or not len(negatives):
        return None
    greater = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positives) * len(negatives)))


def _interval(values: np.ndarray, statistic: Callable[[np.ndarray], float]) -> tuple[float, float]:
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    picks = rng.integers(0, len(values), size=(BOOTSTRAP_SAMPLES, len(values)))
    resampled = [statistic(values[p]) for p in picks]
    resampled = [r for r in resampled if r is not None and np.isfinite(r)]
    if not resampled:
        return float("nan"), float("nan")
    low, high = np.percentile(resampled, [2.5, 97.5])
    return float(low), float(high)


def mean_interval(values: Sequence[float]) -> dict[str, Any]:
    """{"mean", "low", "high", "n"}: the mean of independent units with its 95% bootstrap interval."""
    array = np.asarray(values, dtype=np.float64)
    if not len(array):
        return {"mean": None, "low": None, "high": None, "n": 0}
    low, high = _interval(array, lambda v: float(v.mean()))
    return {"mean": round(float(array.mean()), 4), "low": round(low, 4), "high": round(high, 4), "n": int(len(array))}


def paired_difference(first: Sequence[float], second: Sequence[float]) -> dict[str, Any]:
    """Mean of first - second over paired units (the same object or word), with its 95% bootstrap interval."""
    if len(first) != len(second):
        raise ValueError("paired values need the same length")
    return mean_interval(np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64))


def auc_interval(scores: Sequence[float], labels: Sequence[bool]) -> dict[str, Any]:
    """AUC with a 95% interval resampling (score, label) pairs; baseline 0.5 (no information)."""
    pairs = np.column_stack([np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)])
    value = auc(pairs[:, 0], pairs[:, 1] > 0.5) if len(pairs) else None
    if value is None:
        return {"auc": None, "low": None, "high": None, "n": int(len(pairs)), "positives": int(pairs[:, 1].sum()) if len(pairs) else 0}
    low, high = _interval(pairs, lambda p: auc(p[:, 0], p[:, 1] > 0.5))
    return {"auc": round(value, 4), "low": round(low, 4), "high": round(high, 4), "n": int(len(pairs)),
            "positives": int(pairs[:, 1].sum()), "baseline": 0.5}


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rho of two maps over pixels (Pearson of ranks; ties broken by position)."""
    ranks_a = a.flatten().double().argsort().argsort().double()
    ranks_b = b.flatten().double().argsort().argsort().double()
    ranks_a, ranks_b = ranks_a - ranks_a.mean(), ranks_b - ranks_b.mean()
    denominator = (ranks_a.norm() * ranks_b.norm()).item()
    return 0.0 if denominator == 0 else float((ranks_a * ranks_b).sum() / denominator)
