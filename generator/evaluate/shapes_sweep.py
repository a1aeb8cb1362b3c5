"""Evaluate stage: how the shapes model's sampler sweep scores a setting.

Each cell generates images for the same held-out captions (a seed apart from the eval report's) and scores
them with the judge: one-object scene right, two-object binding and relations, averaged. The sweep itself and
the defaults file are ``generator.evaluate.sampler_sweep``.
"""

from __future__ import annotations

from typing import Any

from generator.evaluate.rates import claim_rates
from generator.evaluate.sampler_sweep import Measure, SweepCell
from generator.evaluate.shapes_report import CLAIM_TARGETS, TARGETS, generate_and_score

SWEEP_SEED = 4321


def score_cell(rates: dict[str, dict[str, Any]]) -> float:
    """Mean of the scored rates (a missing rate counts 0)."""
    values = [(rates.get(group, {}).get(name) or {}).get("rate", 0.0) for group, name in CLAIM_TARGETS]
    return sum(values) / len(values)


def shapes_measure(adapter: Any, n: int = 60, seed: int = SWEEP_SEED) -> Measure:
    """Score a cell on ``n`` held-out captions, half one-object, half two-object."""
    def measure(cell: SweepCell) -> tuple[float, dict[str, Any]]:
        results = generate_and_score(adapter, n=n, steps=cell.steps, guidance=cell.guidance, seed=seed,
                                     scheduler=cell.scheduler, daam=False)
        rates = {group: claim_rates([r.claims for r in results if r.group == group]) for group in TARGETS}
        return score_cell(rates), rates

    return measure
