"""Evaluate stage: how the digits models' sampler sweep scores a setting.

The class-conditioned model is scored by the share of samples the shipped classifier labels as asked (an equal
number of each digit); the time-conditioned model, which is asked for no digit in particular, by the share
the classifier reads with confidence >= 0.9 (its eval target's measure). The sweep and the defaults file are
``generator.evaluate.sampler_sweep``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from generator.evaluate.digits_judge import CONFIDENT, read_digit
from generator.evaluate.sampler_sweep import Measure, SweepCell

SWEEP_SEED = 4321
SWEEP_STEPS = (25, 50, 100)
SWEEP_GUIDANCES = (1.0, 3.0, 5.0, 7.5)


def digits_measure(adapter: Any, n: int = 100, seed: int = SWEEP_SEED) -> Measure:
    """Score a cell on ``n`` samples (rounded to whole rounds of the ten digits for the class model)."""
    prompts = [str(index % 10) for index in range(max(10, n - n % 10))]

    def measure(cell: SweepCell) -> tuple[float, dict[str, Any]]:
        images = adapter.generate(prompts, seed=seed, steps=cell.steps, guidance=cell.guidance, scheduler=cell.scheduler)
        read = [read_digit(np.asarray(image)) for image in images]
        if adapter.class_conditional:
            right = sum(str(digit) == wanted for (digit, _), wanted in zip(read, prompts))
            return right / len(prompts), {"labelled_as_asked": round(right / len(prompts), 4), "n": len(prompts)}
        sure = sum(confidence >= CONFIDENT for _, confidence in read)
        return sure / len(prompts), {"confident": round(sure / len(prompts), 4), "n": len(prompts)}

    return measure
