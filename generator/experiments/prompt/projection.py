"""Experiments stage: a 2-D map of trajectories, by principal component analysis (numpy SVD)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Projection:
    """Points on the first two principal axes of all the points together."""

    coordinates: np.ndarray  # (points, 2)
    explained: tuple[float, float]  # share of the total variance along each axis
    mean: np.ndarray  # (dim,)
    axes: np.ndarray  # (2, dim) orthonormal


def pca_2d(points: np.ndarray) -> Projection:
    """PCA (Pearson 1901) of (points, dim) data through the SVD of the centred data matrix.

    Signs are fixed so that each axis's largest loading is positive (SVD signs are otherwise arbitrary), so
    the same data always gives the same picture.
    """
    data = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    mean = data.mean(axis=0)
    centred = data - mean
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    axes = np.zeros((2, data.shape[1]))
    rank = min(2, len(singular))
    axes[:rank] = vt[:rank]
    for axis in axes:
        if axis.any() and axis[np.argmax(np.abs(axis))] < 0:
            axis *= -1
    total = float((singular**2).sum())
    explained = [float(s**2 / total) if total > 0 else 0.0 for s in singular[:2]] + [0.0] * (2 - rank)
    return Projection(centred @ axes.T, (explained[0], explained[1]), mean, axes)


def fit_unit_square(coordinates: np.ndarray, margin: float = 0.05) -> np.ndarray:
    """Scale 2-D points into [margin, 1 - margin] with one scale for both axes (shapes are not distorted)."""
    coordinates = np.asarray(coordinates, dtype=np.float64)
    low, high = coordinates.min(axis=0), coordinates.max(axis=0)
    span = float((high - low).max()) or 1.0
    centre = (low + high) / 2
    return 0.5 + (coordinates - centre) / span * (1 - 2 * margin)
