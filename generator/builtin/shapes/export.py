"""Built-in models: export a "shapes" training run as the shipped folder (``generator/weights/shapes``).

The run's EMA weights go out in fp16, in the libraries' own ``save_pretrained`` layout (``unet/``,
``text_encoder/``, ``tokenizer/``, ``scheduler/``), with ``training.json`` (command, steps, wall time,
hardware, loss curve, config, library versions) and a README generated from it. The folder is written
beside the target and swapped in, so an interrupted export leaves the previous weights whole.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path
from typing import Any

import torch

from generator.builtin.checkpoints import load_checkpoint
from generator.builtin.shapes.model import ShapesParts, save_parts
from generator.builtin.shapes.train import CHECKPOINT, TrainConfig, training_parts
from generator.devices import cpu_name
from generator.errors import UserError
from generator.files import write_json


def ema_parts(run_dir: Path) -> tuple[ShapesParts, dict[str, Any]]:
    """The run's model with its EMA weights loaded (eval mode, CPU), and the checkpoint's metadata."""
    state = load_checkpoint(run_dir / CHECKPOINT)
    config = TrainConfig.from_json(state["config"])
    parts, named = training_parts(config)
    with torch.no_grad():
        for name, tensor in state["ema"].items():
            named[name].copy_(tensor)
    parts.unet.eval()
    parts.text_encoder.eval()
    meta = {k: state[k] for k in ("config", "step", "data_position", "wall_seconds", "loss_history")}
    meta["started_from"] = state.get("started_from")
    return parts, meta


def export(run_dir: Path, weights_dir: Path, command: str = "", threads: int | None = None) -> dict[str, Any]:
    """Write the EMA weights (fp16 safetensors) in save_pretrained layout plus ``training.json``; return the latter."""
    if not (run_dir / CHECKPOINT).exists():
        raise UserError(f"no checkpoint in {run_dir}; train first")
    parts, meta = ema_parts(run_dir)
    tmp = weights_dir.with_name(weights_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    save_parts(parts, tmp, half=True)
    history = meta["loss_history"]
    tail = [h[1] for h in history[-5:]]  # the last 5 logged means (250 steps by default)
    info = {
        "command": command,
        "steps": meta["step"],
        "samples_seen": meta["data_position"],
        "wall_seconds": round(meta["wall_seconds"], 1),
        "hardware": {
            "machine": platform.machine(),
            "processor": cpu_name(),
            "cpu_count": os.cpu_count(),
            "torch_threads": threads if threads is not None else torch.get_num_threads(),
        },
        "final_loss": round(sum(tail) / len(tail), 6) if tail else None,
        "started_from": meta["started_from"],
        "loss_curve": {"steps": [h[0] for h in history], "loss": [h[1] for h in history]},
        "config": meta["config"],
        "versions": {"torch": torch.__version__, **_library_versions()},
    }
    if meta["config"].get("text_from"):
        from generator.builtin.latent.export import text_lineage

        info["text_encoder"] = {"from": meta["config"]["text_from"], "layers": parts.text_encoder.config.num_layers,
                                **(text_lineage(meta["config"]["text_from"]) or {})}
    write_json(tmp / "training.json", info)
    (tmp / "README.md").write_text(_readme(info))
    if weights_dir.exists():
        old = weights_dir.with_name(weights_dir.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(weights_dir, old)
        os.replace(tmp, weights_dir)
        shutil.rmtree(old)
    else:
        weights_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, weights_dir)
    return info


def _readme(info: dict[str, Any]) -> str:
    """The weights folder's README: what these weights are and exactly how they were made (from training.json)."""
    hours = info["wall_seconds"] / 3600
    hardware = info["hardware"]
    model = info["config"]["model"]
    encoder = {"clip": "a causal CLIP", "t5": "a bidirectional T5"}[model.get("text_encoder", "clip")]
    first_stage, origin = "", info.get("started_from")
    layers = info.get("text_encoder", {}).get("layers", model["text_layers"])  # a taught encoder may have grown
    unet_only = bool(info.get("text_encoder"))  # the latest run's text encoder came from --text, not its origin
    while origin:  # the chain of runs this one grew from, latest first
        kept = ("its UNet only" if unet_only else
                "its text encoder too" if origin.get("text_encoder") else "the text encoder started fresh")
        unet_only = False
        first_stage += (f"- Started from the EMA weights of an earlier run at step {origin['step']} "
                        f"({origin['wall_seconds'] / 3600:.2f} h), made by `{origin['command']}`; {kept}\n")
        origin = origin.get("started_from")
    return (
        "# embedded:shapes weights\n\n"
        "Text-to-image model of the procedural shapes world (`generator/builtin/shapes/world.py`), trained from\n"
        f"scratch by this project: {encoder} text encoder "
        f"({layers} layers, width {model['text_hidden']}) and a pixel-space diffusers UNet\n"
        f"(channels {model['unet_channels']}, cross-attention at 16x16 and 8x8"
        f"{', x and y input channels' if model.get('coordinates') else ''}), {model['resolution']}x{model['resolution']}, "
        "EMA weights stored in fp16.\n\n"
        f"{first_stage}{_taught_text(info)}"
        f"- Command: `{info['command']}`\n"
        f"- Optimizer steps: {info['steps']} (batch {info['config']['batch']}, {info['samples_seen']} samples)\n"
        f"- Training time: {hours:.2f} h wall clock\n"
        f"- Hardware: {hardware['processor']}, {hardware['cpu_count']} CPU cores, {hardware['torch_threads']} torch thread(s)\n"
        f"- Final loss ({'v' if model.get('prediction') == 'v_prediction' else 'epsilon'} MSE"
        f"{', P2-weighted' if info['config'].get('p2_gamma') else ''}, "
        f"mean of the last logged points): {info['final_loss']}\n\n"
        "Continue training with the same command (with `--resume`; the run folder holds the checkpoint), then\n"
        "`diffatlas train shapes --export-only --out RUN --ship-to generator/weights/shapes`.\n"
    )


def _taught_text(info: dict[str, Any]) -> str:
    """The README line for a text encoder taught apart and kept frozen while the UNet trained (``--text``)."""
    text = info.get("text_encoder")
    if not text:
        return ""
    return (f"- Text encoder: taught word order and layout on its own (`{text.get('command', text['from'])}`, "
            f"{text.get('steps', '?')} steps), then frozen from `{text['from']}` while the UNet trained\n")


def _library_versions() -> dict[str, str]:
    import diffusers
    import transformers

    return {"diffusers": diffusers.__version__, "transformers": transformers.__version__}
