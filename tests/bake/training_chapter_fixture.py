"""Fixture for the training-chapter tests: a tiny weights folder (random D=4 UNets) and a prompt file using it.

Nothing here reads MNIST or the shipped weights: every model is built from config under a fixed seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from generator.builtin.digits.ddpm import DDPMSchedule
from generator.builtin.digits.train import save_weights
from generator.builtin.digits.unet import build_unet

SNAPSHOTS = {"class": (1, 3), "time": (1, 2, 4), "denoiser": (1, 5), "flow-class": (1, 2), "flow-time": (2,)}
FLOW = ("flow-class", "flow-time")  # the flow-matching twins: written only when asked (test_training_flow_chapter.py)
STEPS_PER_EPOCH = {"class": 250, "time": 50, "denoiser": 3, "flow-class": 250, "flow-time": 50}
PROMPT_FILE = """\
title: Digits fixture
model: embedded:digits
training:
  title: Training fixture
  weights: weights
  steps: 4
  frames: 3
  test_digits: 3
  samples_per_digit: 4
  time_samples: 6
  guidances: [0, 5, 10]
  guidance_samples: 1
"""


def step_losses(stage: str) -> list[float]:
    """A decaying, wiggly loss history (deterministic)."""
    count = STEPS_PER_EPOCH[stage] * SNAPSHOTS[stage][-1]
    return [round(0.03 + 0.9 / (1 + i / 7) + 0.01 * ((i * 37) % 11) / 11, 6) for i in range(count)]


def write_weights(folder: Path, flow: bool = False) -> Path:
    """class/, time/, denoiser/ with snapshots, config.json, losses.json, plus eval.json and a classifier config."""
    torch.manual_seed(0)
    for name, epochs in SNAPSHOTS.items():
        if name in FLOW and not flow:
            continue
        stage_dir = folder / name
        stage_dir.mkdir(parents=True)
        stage = name.removeprefix("flow-")  # flow-*: the flow-matching twins (same UNet, objective flow)
        for epoch in epochs:
            save_weights(stage_dir / f"epoch_{epoch:03d}.safetensors", build_unet(stage, 4), dtype=torch.float16)
        config = {"stage": stage, "hidden": 4, "schedule": DDPMSchedule().to_config(), "epochs_completed": epochs[-1],
                  "snapshot_epochs": list(epochs), "command": f"diffatlas train digits --stage {stage}", "hardware": "test"}
        if name != stage:
            config.update({"objective": "flow", "schedule": {"type": "flow"},
                           "command": f"diffatlas train digits --stage {stage} --objective flow"})
        (stage_dir / "config.json").write_text(json.dumps(config))
        losses = step_losses(name)
        per = STEPS_PER_EPOCH[name]
        epoch_means = [round(sum(losses[e * per:(e + 1) * per]) / per, 6) for e in range(epochs[-1])]
        (stage_dir / "losses.json").write_text(json.dumps({
            "stage": stage, "batch_size": 8, "steps_per_epoch": per, "step_losses": losses, "epoch_losses": epoch_means}))
    (folder / "classifier").mkdir()
    (folder / "classifier" / "config.json").write_text(json.dumps({"test_accuracy": 0.985}))
    (folder / "eval.json").write_text(json.dumps({
        "seed": 0, "confidence_threshold": 0.9, "classifier_test_accuracy": 0.985,
        "class": {"gamma": 5.0, "target": 0.95, "label_accuracy": 0.9712, "n": 500, "meets_target": True,
                  "per_class_accuracy": {str(d): 0.97 for d in range(10)}},
        "time": {"target": 0.8, "confident_fraction": 0.8433, "mean_confidence": 0.93, "n": 500, "meets_target": True},
    }))
    return folder


def write_prompt_file(root: Path, flow: bool = False) -> Path:
    """root/weights (tiny models) and root/digits.yaml whose training: section points at them."""
    write_weights(root / "weights", flow)
    path = root / "digits.yaml"
    path.write_text(PROMPT_FILE)
    return path


def bake_fixture(root: Path, flow: bool = False) -> Path:
    """Bake the fixture prompt file into root/generated; returns the generated folder."""
    from generator.bake.runner import bake
    from generator.spec.prompt_set import load_prompt_set

    generated = root / "generated"
    bake(load_prompt_set(write_prompt_file(root, flow)), generated, device="cpu", dtype="fp32")
    return generated
