"""Built-in models: the MNIST training loops of CS180 part B (single-step denoiser, time- and class-conditioned DDPM).

One loop serves the three stages; only the loss differs:

* ``denoiser``: z = x + sigma eps, L2 between UNet(z) and x (sigma = 0.5);
* ``time``: t ~ U{1..T}, x_t from q(x_t | x_0) (DDPM Eq. 4), L2 between UNet(x_t, t/T) and eps
  (DDPM Algorithm 1, the "simple" objective of Eq. 14);
* ``class``: as ``time`` plus a one-hot class that is dropped (masked to zeros) with probability 0.1
  so the same network also learns the unconditional score for classifier-free guidance.

``objective="flow"`` trains the time and class stages by flow matching instead (``flow.py``): t ~ U(0, 1),
x_t = (1 - t) x0 + t eps, L2 between UNet(x_t, t) and the velocity eps - x0; the same UNet, data, label
dropout, optimizer and loop.

Everything random comes from generators seeded by the config: the shuffling of epoch ``e`` from
``seed + e`` and the noise/timesteps/masks from one generator whose state is checkpointed. A run
resumed from a checkpoint therefore continues exactly as the uninterrupted run would have.
With ``ema_decay`` set, an exponential moving average of the weights (torch's ``AveragedModel``, buffers
included so BatchNorm statistics follow) is kept beside the trained weights and saved next to each of
them under ``ema/``; which of the two samples better is measured afterwards, not assumed.
Checkpoints and outputs are written to a temporary file and renamed, so a kill never leaves half a file.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch.optim.swa_utils import AveragedModel

from generator.builtin.checkpoints import load_checkpoint, save_checkpoint
from generator.builtin.digits.ddpm import DDPMSchedule, q_sample
from generator.builtin.digits.flow import FLOW_SCHEDULE, flow_interpolate, flow_target
from generator.builtin.digits.unet import build_unet
from generator.files import atomic_write_with, write_json
from generator.progress import ProgressCallback, no_progress

CHECKPOINT_NAME = "checkpoint.pt"
MODEL_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
LOSSES_NAME = "losses.json"


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training stage (defaults follow CS180 part B unless noted)."""

    stage: str = "class"
    hidden: int = 64  # the course's D
    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 1e-3
    lr_decay_to: float = 0.1  # ExponentialLR with gamma = lr_decay_to ** (1 / epochs): lr ends at 0.1x
    sigma: float = 0.5  # denoiser stage only
    label_dropout: float = 0.1  # class stage only
    num_timesteps: int = 300
    beta_start: float = 1e-4
    beta_end: float = 0.02
    seed: int = 0
    snapshot_epochs: tuple[int, ...] = (1, 5, 10, 15, 20)
    train_subset: int | None = None  # use only the first N training images (tests, quick runs)
    checkpoint_every_steps: int = 200  # also checkpoint at every epoch end
    channels_last: bool = True  # ~25% faster convolutions on CPU
    ema_decay: float | None = None  # also keep an exponential moving average of the weights (e.g. 0.999)
    objective: str = "ddpm"  # time/class stages: "ddpm" (predict the noise) or "flow" (predict the velocity)

    def __post_init__(self) -> None:
        if self.objective not in ("ddpm", "flow"):
            raise ValueError(f"objective must be 'ddpm' or 'flow', got {self.objective!r}")
        if self.objective == "flow" and self.stage == "denoiser":
            raise ValueError("the flow objective applies to the time and class stages, not the denoiser")

    @property
    def schedule(self) -> DDPMSchedule:
        """The DDPM noise schedule of the time/class stages."""
        return DDPMSchedule(self.num_timesteps, self.beta_start, self.beta_end)

    def schedule_config(self) -> dict[str, object]:
        """The noise process stored in a shipped config: the DDPM schedule or the flow-matching path."""
        return dict(FLOW_SCHEDULE) if self.objective == "flow" else self.schedule.to_config()

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        data = asdict(self)
        data["snapshot_epochs"] = list(self.snapshot_epochs)
        return data


def stage_defaults(stage: str) -> TrainConfig:
    """The course's settings per stage: denoiser D=128, lr 1e-4, batch 256, 5 epochs; DDPMs D=64, lr 1e-3, 20 epochs."""
    if stage == "denoiser":
        return TrainConfig(stage="denoiser", hidden=128, epochs=5, batch_size=256, learning_rate=1e-4,
                           lr_decay_to=1.0, snapshot_epochs=(1, 5))
    if stage in ("time", "class"):
        return TrainConfig(stage=stage)
    raise ValueError(f"unknown stage {stage!r}; expected 'denoiser', 'time' or 'class'")


@dataclass
class TrainState:
    """Mutable training progress, saved in every checkpoint."""

    epoch: int = 0  # completed epochs
    step_in_epoch: int = 0  # completed steps of the current epoch
    global_step: int = 0
    step_losses: list[float] = field(default_factory=list)
    lr_replans: list[dict[str, Any]] = field(default_factory=list)  # --epochs changed on --resume
    epoch_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def stage_loss(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """The stage's L2 loss on one batch; images (N, 1, 28, 28) in [0, 1], labels (N,)."""
    n = images.shape[0]
    noise = torch.randn(images.shape, generator=generator).to(images.device)  # (N, 1, 28, 28)
    if config.channels_last:
        noise = noise.contiguous(memory_format=torch.channels_last)
    if config.stage == "denoiser":
        return F.mse_loss(model(images + config.sigma * noise), images)
    if config.objective == "flow":
        t_flow = torch.rand(n, generator=generator).to(images.device)  # (N,) in [0, 1)
        inputs, target = (flow_interpolate(images, t_flow, noise), t_flow), flow_target(images, noise)
        if config.stage == "time":
            return F.mse_loss(model(*inputs), target)
        keep = (torch.rand(n, generator=generator) >= config.label_dropout).to(images.dtype).to(images.device)
        return F.mse_loss(model(*inputs, labels, keep), target)
    t = torch.randint(1, config.num_timesteps + 1, (n,), generator=generator).to(images.device)  # (N,)
    x_t = q_sample(images, t, noise, config.schedule)
    t_norm = t.to(images.dtype) / config.num_timesteps
    if config.stage == "time":
        return F.mse_loss(model(x_t, t_norm), noise)
    keep = (torch.rand(n, generator=generator) >= config.label_dropout).to(images.dtype).to(images.device)
    return F.mse_loss(model(x_t, t_norm, labels, keep), noise)


def model_tensors(model: torch.nn.Module, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """State dict as contiguous CPU tensors (safetensors refuses channels-last views); floats cast to ``dtype``."""
    out = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        out[name] = tensor
    return out


def save_weights(path: Path, model: torch.nn.Module, metadata: dict[str, str] | None = None,
                 dtype: torch.dtype | None = None) -> None:
    """Save model weights as safetensors, atomically."""
    tensors = model_tensors(model, dtype)
    atomic_write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata or {}))


def _save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     scheduler: torch.optim.lr_scheduler.LRScheduler, generator: torch.Generator,
                     state: TrainState, config: TrainConfig, ema: AveragedModel | None) -> None:
    """Everything needed to continue identically: weights, EMA, optimizer, LR schedule, RNG, counters."""
    payload = {
        **({"ema": ema.state_dict()} if ema is not None else {}),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "generator": generator.get_state(),
        "state": asdict(state),
        "config": config.to_json(),
    }
    save_checkpoint(payload, path)


def _losses_json(state: TrainState, config: TrainConfig, steps_per_epoch: int) -> dict[str, Any]:
    """Loss history for the site's curves: every step's batch loss and each epoch's mean."""
    return {
        "stage": config.stage,
        "objective": config.objective,
        "batch_size": config.batch_size,
        "steps_per_epoch": steps_per_epoch,
        "step_losses": [round(v, 6) for v in state.step_losses],
        "epoch_losses": [round(v, 6) for v in state.epoch_losses],
    }


def _num_examples(config: TrainConfig, images: torch.Tensor) -> int:
    """Training-set size after the optional subset."""
    return min(images.shape[0], config.train_subset or images.shape[0])


def _replan_decay(scheduler: torch.optim.lr_scheduler.ExponentialLR, optimizer: torch.optim.Optimizer,
                  config: TrainConfig, state: TrainState, old_epochs: int) -> None:
    """A resumed run with another ``epochs``: decay from the current LR to ``lr_decay_to`` x at the new last epoch."""
    if config.epochs <= state.epoch:
        raise ValueError(f"cannot shorten the run to {config.epochs} epochs: {state.epoch} are already done")
    current = optimizer.param_groups[0]["lr"]
    final = config.learning_rate * config.lr_decay_to
    scheduler.gamma = (final / current) ** (1.0 / (config.epochs - state.epoch))
    state.lr_replans.append({"at_epoch": state.epoch, "step_in_epoch": state.step_in_epoch,
                             "epochs_before": old_epochs, "epochs_after": config.epochs,
                             "lr_now": current, "gamma_after": scheduler.gamma})


def ema_warmup_update(decay: float) -> Any:
    """EMA with warm-up: step n averages with min(decay, (1 + n) / (10 + n)) (as in TensorFlow's
    ExponentialMovingAverage with num_updates), so the average forgets the random initial weights within a few
    hundred steps; a plain 0.999 still holds 0.999^469 = 63% of them after one MNIST epoch. Integer buffers
    (BatchNorm's batch counter) follow the model."""

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        n = float(num_averaged)
        step_decay = min(decay, (1.0 + n) / (10.0 + n))
        if averaged[0].is_floating_point():
            torch._foreach_lerp_(averaged, current, 1.0 - step_decay)
        else:
            for mine, theirs in zip(averaged, current):
                mine.copy_(theirs)

    return update


def _ema_model(model: torch.nn.Module, config: TrainConfig) -> AveragedModel | None:
    """The moving average of ``model``'s weights and buffers, or None when ``ema_decay`` is unset."""
    if config.ema_decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=ema_warmup_update(config.ema_decay), use_buffers=True)


def _save_weights_and_ema(path: Path, model: torch.nn.Module, ema: AveragedModel | None,
                          metadata: dict[str, str]) -> None:
    """The trained weights at ``path`` and, with an EMA, its weights at ``ema/<same name>``."""
    save_weights(path, model, metadata)
    if ema is not None:
        (path.parent / "ema").mkdir(exist_ok=True)
        save_weights(path.parent / "ema" / path.name, ema.module, {**metadata, "ema": "true"})


def train_digits(
    config: TrainConfig,
    images: torch.Tensor,
    labels: torch.Tensor,
    out_dir: str | Path,
    resume: bool = False,
    device: str = "cpu",
    progress: ProgressCallback = no_progress,
    max_steps: int | None = None,
) -> TrainState:
    """Train one stage on ``images`` (N, 28, 28) uint8 and ``labels`` (N,), writing into ``out_dir``.

    Writes ``checkpoint.pt`` (resumable), ``snapshots/epoch_XXX.safetensors`` at ``snapshot_epochs``,
    ``losses.json`` and, when all epochs are done, ``model.safetensors`` + ``config.json``.
    ``max_steps`` stops (after checkpointing) once that many steps have been taken in total.
    """
    out = Path(out_dir)
    (out / "snapshots").mkdir(parents=True, exist_ok=True)
    n = _num_examples(config, images)
    images, labels = images[:n], labels[:n].long()
    steps_per_epoch = math.ceil(n / config.batch_size)

    torch.manual_seed(config.seed)  # weight initialisation
    model = build_unet(config.stage, config.hidden).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = _ema_model(model, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay_to ** (1.0 / config.epochs))
    generator = torch.Generator().manual_seed(config.seed + 1)
    state = TrainState()

    checkpoint_path = out / CHECKPOINT_NAME
    if resume and checkpoint_path.exists():
        payload = load_checkpoint(checkpoint_path, device)
        saved = TrainConfig(**{**payload["config"], "snapshot_epochs": tuple(payload["config"]["snapshot_epochs"])})
        if replace(saved, epochs=config.epochs, snapshot_epochs=config.snapshot_epochs) != config:
            raise ValueError(f"checkpoint {checkpoint_path} was made with a different configuration: {saved}")
        model.load_state_dict(payload["model"])
        if ema is not None:
            ema.load_state_dict(payload["ema"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        generator.set_state(payload["generator"])
        state = TrainState(**payload["state"])
        if saved.epochs != config.epochs:
            _replan_decay(scheduler, optimizer, config, state, saved.epochs)

    total_steps = steps_per_epoch * config.epochs
    model.train()
    while state.epoch < config.epochs:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed + 1000 + state.epoch))
        epoch_start = time.perf_counter()
        for step in range(state.step_in_epoch, steps_per_epoch):
            index = order[step * config.batch_size:(step + 1) * config.batch_size]
            batch = (images[index].to(torch.float32) / 255.0).unsqueeze(1).to(device)  # (B, 1, 28, 28)
            if config.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            loss = stage_loss(model, batch, labels[index].to(device), config, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if ema is not None:
                ema.update_parameters(model)
            state.step_losses.append(float(loss.item()))
            state.step_in_epoch = step + 1
            state.global_step += 1
            progress(state.global_step, total_steps, f"epoch {state.epoch + 1}/{config.epochs} loss {loss.item():.4f}")
            stop = max_steps is not None and state.global_step >= max_steps
            if stop or state.global_step % config.checkpoint_every_steps == 0:
                state.seconds += time.perf_counter() - epoch_start
                epoch_start = time.perf_counter()
                _save_checkpoint(checkpoint_path, model, optimizer, scheduler, generator, state, config, ema)
            if stop:
                write_json(out / LOSSES_NAME, _losses_json(state, config, steps_per_epoch))
                return state
        state.seconds += time.perf_counter() - epoch_start
        epoch_steps = state.step_losses[-steps_per_epoch:]
        state.epoch_losses.append(sum(epoch_steps) / len(epoch_steps))
        state.epoch += 1
        state.step_in_epoch = 0
        scheduler.step()
        if state.epoch in config.snapshot_epochs:  # before the checkpoint, so a kill in between cannot skip it
            _save_weights_and_ema(out / "snapshots" / f"epoch_{state.epoch:03d}.safetensors", model, ema,
                                  {"epoch": str(state.epoch), "stage": config.stage})
        _save_checkpoint(checkpoint_path, model, optimizer, scheduler, generator, state, config, ema)
        write_json(out / LOSSES_NAME, _losses_json(state, config, steps_per_epoch))

    _save_weights_and_ema(out / MODEL_NAME, model, ema, {"epoch": str(state.epoch), "stage": config.stage})
    write_json(out / CONFIG_NAME, run_config(config, state, n, type(model).__name__, device))
    return state


def run_config(config: TrainConfig, state: TrainState, train_examples: int, architecture: str,
               device: str) -> dict[str, Any]:
    """What ``config.json`` records about a run: architecture, settings, noise process, progress, timing."""
    return {
        "architecture": architecture,
        "stage": config.stage,
        "hidden": config.hidden,
        "train": config.to_json(),
        "objective": config.objective,
        "schedule": config.schedule_config(),
        "epochs_completed": state.epoch,
        "lr_replans": state.lr_replans,
        "train_seconds": round(state.seconds, 1),
        "final_epoch_loss": round(state.epoch_losses[-1], 6) if state.epoch_losses else None,
        "train_examples": train_examples,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }


def run_config_so_far(run_dir: str | Path, train_examples: int = 60_000) -> dict[str, Any]:
    """``run_config`` of a run still in progress, from its checkpoint (to ship the snapshots it has so far)."""
    payload = load_checkpoint(Path(run_dir) / CHECKPOINT_NAME, "cpu")
    saved = dict(payload["config"])
    config = TrainConfig(**{**saved, "snapshot_epochs": tuple(saved["snapshot_epochs"])})
    state = TrainState(**payload["state"])
    return {**run_config(config, state, min(train_examples, config.train_subset or train_examples),
                         type(build_unet(config.stage, config.hidden)).__name__, "cpu"),
            "in_progress": f"{state.epoch} of {config.epochs} epochs done; shipped from the running run's snapshots"}
