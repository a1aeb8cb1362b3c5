"""Built-in models: where the package keeps their shipped weights (``generator/weights/<model>/``)."""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def shipped_weights(model: str) -> Path:
    """The shipped folder of a built-in model: ``shapes`` or ``digits``."""
    return WEIGHTS_DIR / model
