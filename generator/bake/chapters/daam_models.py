"""Bake stage: the page "What DAAM's maps tell us" with several models: each chart's rows side by side.

Every model of the ``daam_findings:`` section (both built-in text-to-image models by default) has its own charts
(generator/bake/chapters/daam_charts.py, one set per model's reports). ``side_by_side`` makes one chart per table
again: a row measured on several models appears once per model, next to each other, labelled with the model
(``"bin 0 (t 960–800) · shapes-latent"``) and carrying ``model`` for a legend; a row only one model has (the
latent model's layers are not the pixel model's) stands alone. Reference lines and commands are every model's.
With one model measured, its charts are returned as they are.
"""

from __future__ import annotations

from typing import Any


def side_by_side(blocks: list[dict], charts: list[list[dict]]) -> list[dict]:
    """One chart per name, each with the rows of every model that measured it (``blocks[i]`` made ``charts[i]``)."""
    measured = [(block["label"], model_charts) for block, model_charts in zip(blocks, charts) if model_charts]
    if len(measured) <= 1:
        return measured[0][1] if measured else []
    merged: dict[str, dict[str, Any]] = {}
    rows: dict[str, dict[str, dict[str, dict]]] = {}  # chart -> row label -> model -> row
    for model, model_charts in measured:
        for chart in model_charts:
            target = merged.setdefault(chart["name"], {**chart, "rows": [], "references": [], "commands": [], "models": []})
            target["models"].append(model)
            target["commands"] += [c for c in chart["commands"] if c not in target["commands"]]
            target["references"] += [{**r, "label": f"{r['label']} · {model}", "model": model} for r in chart["references"]]
            for row in chart["rows"]:
                rows.setdefault(chart["name"], {}).setdefault(row["label"], {})[model] = row
    for name, target in merged.items():
        for label, by_model in rows.get(name, {}).items():
            target["rows"] += [{**row, "label": f"{label} · {model}", "model": model} for model, row in by_model.items()]
    return list(merged.values())
