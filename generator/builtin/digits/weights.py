"""Built-in models: shipping and loading the digits models' weights (``generator/weights/digits/``).

Layout of a shipped model directory (one per stage, plus ``classifier``)::

    generator/weights/digits/<stage>/
        config.json            architecture, D, schedule, epochs, command, hardware, metrics
        losses.json            per-step and per-epoch training loss (the chapter's loss curves)
        epoch_001.safetensors  weight snapshots (fp16) at the snapshot epochs; the last one is the model

Snapshots are weights only (fp16 halves the size; the UNets' outputs change by ~1e-3, see
``fp16_max_abs_diff`` in each config). Loading casts back to fp32.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from generator.builtin.digits.train import (
    CHECKPOINT_NAME,
    CONFIG_NAME,
    LOSSES_NAME,
    run_config_so_far,
    save_weights,
    write_json,
)
from generator.builtin.digits.unet import build_unet
from generator.builtin.shipped import shipped_weights
from generator.errors import UserError

STAGES = ("denoiser", "time", "class")


def shipped_weights_dir() -> Path:
    """The package's ``weights/digits`` directory."""
    return shipped_weights("digits")


def read_model_config(model_dir: str | Path) -> dict[str, Any]:
    """Read ``config.json`` of a shipped (or trained) model directory, with a clear error when absent."""
    path = Path(model_dir) / CONFIG_NAME
    if not path.is_file():
        raise UserError(
            f"digits model config {path} not found; train it with `diffatlas train digits` "
            "or reinstall the package to restore the shipped weights."
        )
    return json.loads(path.read_text())


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file as fp32 tensors (integer buffers keep their dtype)."""
    if not path.is_file():
        raise UserError(f"digits weights {path} not found; train them with `diffatlas train digits`.")
    return {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}


def snapshot_epochs(model_dir: str | Path) -> list[int]:
    """Epochs with a weight snapshot in a shipped model directory, ascending."""
    return sorted(int(p.stem.split("_")[1]) for p in Path(model_dir).glob("epoch_*.safetensors"))


def load_digits_unet(model_dir: str | Path, epoch: int | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load a shipped UNet (the last snapshot unless ``epoch`` is given) in fp32 eval mode, with its config."""
    model_dir = Path(model_dir)
    config = read_model_config(model_dir)
    epochs = snapshot_epochs(model_dir)
    if not epochs:
        raise UserError(f"no epoch_XXX.safetensors snapshots in {model_dir}.")
    chosen = epochs[-1] if epoch is None else epoch
    if chosen not in epochs:
        raise UserError(f"no snapshot for epoch {chosen} in {model_dir}; available: {epochs}.")
    model = build_unet(config["stage"], int(config["hidden"]))
    model.load_state_dict(_load_state(model_dir / f"epoch_{chosen:03d}.safetensors"))
    return model.eval(), config


def ship_digits_run(run_dir: str | Path, dest_dir: str | Path, extra: dict[str, Any] | None = None,
                    dtype: torch.dtype = torch.float16) -> dict[str, Any]:
    """Copy a finished training run (``diffatlas train digits --out RUN``) into a shipped directory.

    Snapshots are re-saved in ``dtype``; the config gains ``extra`` (command, hardware, metrics) and the
    largest output difference the cast causes on a fixed random input.
    """
    run_dir, dest_dir = Path(run_dir), Path(dest_dir)
    if not (run_dir / CONFIG_NAME).is_file() and (run_dir / CHECKPOINT_NAME).is_file():
        config = run_config_so_far(run_dir)  # a run still going: ship the snapshot epochs it has written
    else:
        config = read_model_config(run_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    for old in dest_dir.glob("epoch_*.safetensors"):
        old.unlink()
    snapshots = sorted((run_dir / "snapshots").glob("epoch_*.safetensors"))
    final_epoch = int(config["epochs_completed"])
    if not any(int(p.stem.split("_")[1]) == final_epoch for p in snapshots) and "in_progress" not in config:
        snapshots.append(run_dir / "model.safetensors")
    if not snapshots:
        raise UserError(f"{run_dir} has no snapshot to ship yet")
    if "in_progress" in config:  # the model is the latest snapshot
        final_epoch = max(int(p.stem.split("_")[1]) for p in snapshots)
    max_diff = 0.0
    for path in snapshots:
        epoch = final_epoch if path.name == "model.safetensors" else int(path.stem.split("_")[1])
        model = build_unet(config["stage"], int(config["hidden"]))
        model.load_state_dict(_load_state(path))
        model.eval()
        save_weights(dest_dir / f"epoch_{epoch:03d}.safetensors", model,
                     {"epoch": str(epoch), "stage": config["stage"]}, dtype=dtype)
        if epoch == final_epoch:
            max_diff = _cast_difference(model, dest_dir / f"epoch_{epoch:03d}.safetensors", config)
    shutil.copyfile(run_dir / LOSSES_NAME, dest_dir / LOSSES_NAME)
    shipped = {**config, **(extra or {}), "dtype": str(dtype).replace("torch.", ""),
               "fp16_max_abs_diff": round(max_diff, 6), "snapshot_epochs": snapshot_epochs(dest_dir)}
    write_json(dest_dir / CONFIG_NAME, shipped)
    return shipped


@torch.no_grad()
def _cast_difference(model: torch.nn.Module, cast_path: Path, config: dict[str, Any]) -> float:
    """Max |output(fp32 weights) - output(cast weights)| on a fixed random batch."""
    cast = build_unet(config["stage"], int(config["hidden"]))
    cast.load_state_dict(_load_state(cast_path))
    cast.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 28, 28, generator=g)
    t = torch.rand(8, generator=g)
    labels = torch.arange(8) % 10
    args: tuple[torch.Tensor, ...] = (x,) if config["stage"] == "denoiser" else (
        (x, t) if config["stage"] == "time" else (x, t, labels, torch.ones(8)))
    return float((model(*args) - cast(*args)).abs().max())
