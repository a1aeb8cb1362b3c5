"""Built-in models: reading and writing the built-in models' training checkpoints without running code.

A checkpoint (``checkpoint.pt``) holds tensors and plain values only: weights, optimizer state, RNG state,
counters and the run's config as a dict. It is read with ``torch.load(weights_only=True)``, which unpickles
only those types, so a checkpoint from elsewhere cannot run code when a run resumes from it; checkpoints
written before this change hold the same types and resume unchanged. It is written to a temporary file, then
renamed: a full disk leaves the previous checkpoint whole.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from generator.errors import UserError
from generator.files import atomic_write_with


def load_checkpoint(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A checkpoint's contents, unpickled with ``weights_only=True``; a damaged or foreign file is one line."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:  # weights_only met a type it does not allow (code could run)
        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise UserError(f"{path}: refused, it holds objects other than tensors and plain values ({first})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:  # cut short, not a zip, unreadable
        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise UserError(f"{path}: cannot read the checkpoint, it is damaged or cut short ({first}); "
                        "restore it or start the run again in another folder") from None
    if not isinstance(state, dict):
        raise UserError(f"{path}: not a training checkpoint (it holds a {type(state).__name__}, not a dict)")
    return state


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to a temporary file beside ``path`` and rename it over (the old one stays on failure)."""
    atomic_write_with(path, lambda temporary: torch.save(state, temporary))
