"""Evaluate stage: which model a DAAM report measured (issue 19: every built-in text-to-image model gets its reports).

``eval daam`` and ``eval daam-edits`` take a folder (``--weights``); the reports name the model by its registry id
when the folder is a shipped one (``embedded:shapes``, ``embedded:shapes-latent``), else by the folder, with the
weight hash, the folder and whether it denoises pixels or VAE latents. ``slug`` names the report files
(``daam-<slug>.json``) and the chapter's model column. No torch here: the CLI imports this before any model loads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from generator.spec.daam_findings import model_slug, shown_path


def shipped_id(weights: Path) -> str | None:
    """The registry id of a shipped model folder (None: a user's folder)."""
    from generator.builtin.shipped import WEIGHTS_DIR
    from generator.models.registry import MODELS

    folder = weights.resolve()
    for entry in MODELS.values():
        if entry.weights and (WEIGHTS_DIR.parent / entry.weights).resolve() == folder:
            return entry.id
    return None


def trained_grounding(weights: Path) -> float:
    """The weight of the attention grounding loss the folder's denoiser was trained with, in its last run that had
    one along its recorded lineage (0: none, or no record).

    A model whose cross-attention was taught the objects' masks (``--grounding``) has faithful DAAM maps by
    construction; every report on it says so."""
    training = weights / "training.json"
    record = json.loads(training.read_text()) if training.exists() else {}
    record = record.get("unet", record)  # a latent model's record has one entry per trained part
    while record:
        weight = record.get("grounding") or record.get("config", {}).get("grounding")
        if weight:
            return float(weight)
        record = record.get("started_from") or {}
    return 0.0


def model_identity(adapter: Any, weights: Path) -> dict[str, Any]:
    """``model`` (registry id or folder), ``slug``, ``space`` ('pixel' / 'latent'), ``weights``, ``weight_hash``
    and ``grounding`` (``trained_grounding``)."""
    model = shipped_id(weights) or str(weights)
    return {"model": model, "slug": model_slug(model), "space": "latent" if (weights / "vae").is_dir() else "pixel",
            "weights": shown_path(str(weights)), "weight_hash": adapter.weight_hash,
            "grounding": trained_grounding(weights)}
