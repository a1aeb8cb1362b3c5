"""Training stage (metrics): the measured sampler defaults of the shapes model.

A sweep of scheduler x steps x guidance on held-out captions, each cell scored by the judge (one-object scene
right, two-object binding, relations); the best cell becomes the model's recommended settings, written next
to its weights (``defaults.json``) where the adapter, every command and every prompt file that sets nothing
read them. Ties (within ``TIE``) go to fewer steps, then to the cell listed first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from generator.progress import ProgressCallback, no_progress
from generator.training.judged_metrics import claim_rates

DEFAULTS_FILE = "defaults.json"
TIE = 0.005
# what a cell's score averages, (group, rate) -> the shipped model's target for it
CLAIM_TARGETS: dict[tuple[str, str], float] = {
    ("one_object", "scene_right"): 0.95,
    ("two_object", "binding"): 0.85,
    ("two_object", "relation"): 0.80,
}


@dataclass(frozen=True)
class SweepCell:
    """One sampler setting."""

    scheduler: str
    steps: int
    guidance: float


def score_cell(rates: dict[str, dict[str, Any]]) -> float:
    """Mean of the scored rates (a missing rate counts 0)."""
    values = [(rates.get(group, {}).get(name) or {}).get("rate", 0.0) for group, name in CLAIM_TARGETS]
    return round(sum(values) / len(values), 4)


def sweep(adapter: Any, cells: Sequence[SweepCell], n: int = 60, seed: int = 4321,
          progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """Score every cell on the same ``n`` held-out captions (a seed apart from the eval report's)."""
    from generator.training.shapes_eval import TARGETS, generate_and_score

    rows = []
    for index, cell in enumerate(cells):
        progress(index, len(cells), f"{cell.scheduler} {cell.steps} steps, guidance {cell.guidance:g}")
        results = generate_and_score(adapter, n=n, steps=cell.steps, guidance=cell.guidance, seed=seed,
                                     scheduler=cell.scheduler, daam=False)
        rates = {group: claim_rates([r.claims for r in results if r.group == group]) for group in TARGETS}
        rows.append({"scheduler": cell.scheduler, "steps": cell.steps, "guidance": cell.guidance,
                     "score": score_cell(rates), "rates": rates})
    progress(len(cells), len(cells), "done")
    return {"n": n, "seed": seed, "scored": [f"{g}.{r}" for g, r in CLAIM_TARGETS], "rows": rows, "chosen": choose(rows)}


def choose(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The best row; within TIE of the best, the one with the fewest steps."""
    best = max(row["score"] for row in rows)
    near = [row for row in rows if row["score"] >= best - TIE]
    pick = min(near, key=lambda row: row["steps"])
    return {"scheduler": pick["scheduler"], "steps": pick["steps"], "guidance": pick["guidance"], "score": pick["score"]}


def write_defaults(folder: Path, result: dict[str, Any], command: str) -> dict[str, Any]:
    """Record the chosen settings next to the weights, with how they were measured."""
    chosen = result["chosen"]
    defaults = {"scheduler": chosen["scheduler"], "steps": chosen["steps"], "guidance": chosen["guidance"],
                "measured": {"command": command, "n": result["n"], "seed": result["seed"], "score": chosen["score"],
                             "scored": result["scored"]},
                "sweep": result["rows"]}
    (folder / DEFAULTS_FILE).write_text(json.dumps(defaults, indent=1, sort_keys=True) + "\n")
    return defaults


def read_defaults(folder: Path) -> dict[str, Any] | None:
    """The recorded sampler defaults of a built-in model folder, or None."""
    path = folder / DEFAULTS_FILE
    return json.loads(path.read_text()) if path.exists() else None


def staged_sweep(adapter: Any, schedulers: Sequence[str], steps: Sequence[int], guidances: Sequence[float],
                 base_guidance: float, n: int = 60, seed: int = 4321,
                 progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """Scheduler x steps at ``base_guidance``, then the best (scheduler, steps) x ``guidances``: one table."""
    first = sweep(adapter, [SweepCell(s, k, base_guidance) for s in schedulers for k in steps], n, seed, progress)
    lead = first["chosen"]
    second_cells = [SweepCell(lead["scheduler"], lead["steps"], g) for g in guidances if g != base_guidance]
    second = sweep(adapter, second_cells, n, seed, progress) if second_cells else {"rows": []}
    rows = first["rows"] + second["rows"]
    return {**first, "rows": rows, "chosen": choose(rows)}
