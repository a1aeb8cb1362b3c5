"""Built-in models: the measured sampler defaults stored next to a model's weights (``defaults.json``).

``diffatlas eval shapes --sweep`` (and ``eval digits --sweep``) measures them (generator/evaluate/sampler_sweep.py);
the model's adapter, every command and every prompt file that sets nothing read them here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from generator.files import write_json

DEFAULTS_FILE = "defaults.json"


def write_defaults(folder: Path, result: dict[str, Any], command: str, how: dict[str, Any]) -> dict[str, Any]:
    """Record the chosen settings next to the weights, with how they were measured (``how``: n, seed, score...)."""
    chosen = result["chosen"]
    defaults = {"scheduler": chosen["scheduler"], "steps": chosen["steps"], "guidance": chosen["guidance"],
                "measured": {"command": command, "score": chosen["score"], **how}, "sweep": result["rows"]}
    write_json(folder / DEFAULTS_FILE, defaults)
    return defaults


def read_defaults(folder: Path) -> dict[str, Any] | None:
    """The recorded sampler defaults of a built-in model folder, or None."""
    path = folder / DEFAULTS_FILE
    return json.loads(path.read_text()) if path.exists() else None
