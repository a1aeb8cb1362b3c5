"""Evaluate stage: a built-in model's measured sampler defaults.

A sweep of scheduler x steps x guidance, every cell scored by the model's judge on held-out prompts: first
every scheduler x steps at one guidance, then the best of those x every guidance, all in one table. The best
cell becomes the model's recommended settings, written next to its weights (``defaults.json``), where its
adapter, every command and every prompt file that sets nothing read them. Ties (within ``TIE`` of the best
score) go to fewer steps, then to the cell measured first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from generator.progress import ProgressCallback, no_progress

TIE = 0.005


@dataclass(frozen=True)
class SweepCell:
    """One sampler setting."""

    scheduler: str
    steps: int
    guidance: float


# a cell -> (score in [0, 1], the rates behind it, JSON-ready)
Measure = Callable[[SweepCell], tuple[float, dict[str, Any]]]


def sweep(cells: Sequence[SweepCell], measure: Measure, progress: ProgressCallback = no_progress) -> list[dict[str, Any]]:
    """One row per cell, in order."""
    rows = []
    for index, cell in enumerate(cells):
        progress(index, len(cells), f"{cell.scheduler} {cell.steps} steps, guidance {cell.guidance:g}")
        score, rates = measure(cell)
        rows.append({"scheduler": cell.scheduler, "steps": cell.steps, "guidance": cell.guidance,
                     "score": round(score, 4), "rates": rates})
    progress(len(cells), len(cells), "done")
    return rows


def choose(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The best row; within TIE of the best, the one with the fewest steps."""
    best = max(row["score"] for row in rows)
    near = [row for row in rows if row["score"] >= best - TIE]
    pick = min(near, key=lambda row: row["steps"])
    return {"scheduler": pick["scheduler"], "steps": pick["steps"], "guidance": pick["guidance"], "score": pick["score"]}


def staged_sweep(schedulers: Sequence[str], steps: Sequence[int], guidances: Sequence[float], base_guidance: float,
                 measure: Measure, progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """Scheduler x steps at ``base_guidance``, then the best (scheduler, steps) x ``guidances``: one table."""
    rows = sweep([SweepCell(s, k, base_guidance) for s in schedulers for k in steps], measure, progress)
    lead = choose(rows)
    rows += sweep([SweepCell(lead["scheduler"], lead["steps"], g) for g in guidances if g != base_guidance],
                  measure, progress)
    return {"rows": rows, "chosen": choose(rows)}
