"""Built-in models: the latent model's resumable training loop, shared by its two stages (VAE and UNet).

A stage supplies its trainable weights and a ``batch_loss(position, generator)`` that draws the batch starting at
``position`` of its data stream and returns the loss; the loop does the rest the same way for both: AdamW with a
linear warm-up then a constant rate (optionally falling linearly to zero over the last ``cooldown_steps``),
gradient clipping, an EMA of the weights (what gets exported), a loss history,
and ``checkpoint.pt`` every ``checkpoint_every`` steps. Every random draw comes from the one ``torch.Generator``
whose state is checkpointed, and the data streams are random access, so a resumed run continues the same run bit
for bit on the same device and thread count.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from generator.builtin.checkpoints import load_checkpoint, save_checkpoint
from generator.builtin.ema import Ema
from generator.errors import UserError
from generator.files import write_json
from generator.progress import ProgressCallback, no_progress

CHECKPOINT = "checkpoint.pt"
LOSS_FILE = "loss.json"
CONFIG_FILE = "config.json"
STARTED_FROM = "started_from.json"  # a run started from an exported folder: that folder's record, kept at the start
# what a resumed run may change: it may run longer, and end with a cool-down it did not plan at the start
FREE_FIELDS = ("steps", "cooldown_steps", "checkpoint_every", "log_every")

BatchLoss = Callable[[int, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class LoopSettings:
    """How the optimizer runs (the same fields in both stages' configs)."""

    steps: int
    batch: int
    learning_rate: float
    warmup_steps: int
    cooldown_steps: int
    weight_decay: float
    grad_clip: float
    ema_decay: float
    seed: int
    checkpoint_every: int
    log_every: int


class StageConfig:
    """What a stage's config dataclass shares: its optimizer settings (the ``LoopSettings`` fields it has) and
    its JSON (its ``model`` config through that config's own ``to_json``)."""

    def settings(self) -> LoopSettings:
        """The optimizer's part of the config."""
        return LoopSettings(**{k: getattr(self, k) for k in LoopSettings.__dataclass_fields__})

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {**asdict(self), "model": self.model.to_json()}


@dataclass(frozen=True)
class LoopResult:
    """Summary of a (possibly resumed) run."""

    step: int
    final_loss: float | None
    wall_seconds: float
    run_dir: Path


def learning_rate(settings: LoopSettings, step: int) -> float:
    """The rate for optimizer step ``step`` (0-based): a linear warm-up over ``warmup_steps``, constant, then with
    ``cooldown_steps`` a linear fall towards zero over the run's last steps (the last step takes 1/cooldown)."""
    rate = settings.learning_rate * min(1.0, (step + 1) / max(1, settings.warmup_steps))
    if settings.cooldown_steps > 0:
        rate *= min(1.0, (settings.steps - step) / settings.cooldown_steps)
    return rate


def _same_run(saved: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether ``wanted`` continues the run ``saved`` describes: equal but for ``FREE_FIELDS``, and but for fields
    added to the config since the run started, left off (0, None, False: e.g. ``grounding``), which change nothing."""
    added = {k for k, v in wanted.items() if k not in saved and not v}
    strip = lambda config: {k: v for k, v in config.items() if k not in FREE_FIELDS and k not in added}  # noqa: E731
    return strip(saved) == strip(wanted)


def run_loop(settings: LoopSettings, config_json: dict[str, Any], named: dict[str, torch.Tensor],
             batch_loss: BatchLoss, run_dir: Path, resume: bool = True,
             progress: ProgressCallback = no_progress) -> LoopResult:
    """Train ``named`` with ``batch_loss`` up to ``settings.steps`` optimizer steps, resuming ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = run_dir / CHECKPOINT
    if checkpoint_path.exists() and not resume:
        raise UserError(f"{checkpoint_path} exists; pass --resume to continue it or choose another --out")
    device = next(iter(named.values())).device
    optimizer = torch.optim.AdamW(named.values(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    ema = Ema(named)
    generator = torch.Generator().manual_seed(settings.seed)
    step, position, wall, history = 0, 0, 0.0, []
    if checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path, device)
        if not _same_run(state["config"], config_json):
            raise UserError("the run directory holds a different training configuration; use another --out or match it")
        with torch.no_grad():
            for name, tensor in state["model"].items():
                named[name].copy_(tensor)
        ema.shadow = {k: v.to(device) for k, v in state["ema"].items()}
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        step, position, wall, history = state["step"], state["data_position"], state["wall_seconds"], state["loss_history"]
    write_json(run_dir / CONFIG_FILE, config_json)

    def save() -> None:
        save_checkpoint({
            "config": config_json,
            "model": {k: v.detach().cpu() for k, v in named.items()},
            "ema": {k: v.cpu() for k, v in ema.shadow.items()},
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "step": step,
            "data_position": position,
            "wall_seconds": wall,
            "loss_history": history,
        }, checkpoint_path)
        write_json(run_dir / LOSS_FILE, {"steps": [h[0] for h in history], "loss": [h[1] for h in history]})

    running: list[float] = []
    last = time.monotonic()
    progress(step, settings.steps, "")
    while step < settings.steps:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(settings, step)
        loss = batch_loss(position, generator)
        position += settings.batch
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(named.values()), settings.grad_clip)
        optimizer.step()
        ema.update(named, step, settings.ema_decay)
        step += 1
        running.append(loss.detach().item())
        now = time.monotonic()
        wall, last = wall + now - last, now
        if step % settings.log_every == 0 or step == settings.steps:
            history.append([step, round(sum(running) / len(running), 6)])
            running = []
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            save()
        progress(step, settings.steps, f"loss {history[-1][1]:.4f}" if history else "")
    if not checkpoint_path.exists():
        save()
    return LoopResult(step, history[-1][1] if history else None, wall, run_dir)


def note_start(run_dir: Path, init_from: str | None, part: str) -> None:
    """For a fresh run that starts from an exported folder, keep the folder's record of ``part`` (its training.json
    entry) in the run: the folder may later be overwritten by an export of this very run, and its lineage must
    still name what it started from. A run that starts from another run needs nothing: runs are not overwritten."""
    training = Path(init_from) / "training.json" if init_from else None
    if training is None or not training.exists() or (run_dir / CHECKPOINT).exists():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / STARTED_FROM, json.loads(training.read_text())[part])


def run_weights(run_dir: Path, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The EMA weights under ``prefix`` (prefix removed) of the run in ``run_dir``, and its record."""
    path = run_dir / CHECKPOINT
    if not path.exists():
        raise UserError(f"no {CHECKPOINT} in {run_dir}; train that stage first")
    state = load_checkpoint(path)
    weights = {k[len(prefix):]: v for k, v in state["ema"].items() if k.startswith(prefix)}
    record = {"steps": state["step"], "wall_seconds": round(state["wall_seconds"], 1), "config": state["config"],
              "final_loss": state["loss_history"][-1][1] if state["loss_history"] else None}
    return weights, record
