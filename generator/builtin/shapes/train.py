"""Built-in models: train the "shapes" model from scratch (text encoder + pixel UNet), resumably.

Recipe: epsilon-prediction DDPM loss on the procedural world (Ho et al. 2020, L_simple; Min-SNR weighting,
Hang et al. 2023, is available but off: with epsilon prediction it starves the low-noise steps, and a short
CPU run then leaves visible noise in DDIM samples; P2 weighting, Choi et al. 2022, is the opposite: it turns
down the low-noise steps, where the layout is already visible in the noisy image, so the high-noise steps
that decide where and how large to draw weigh more), classifier-free guidance training (the
caption is replaced by the empty string with probability ``cfg_dropout``; Ho & Salimans 2022), AdamW with a
linear warm-up then a constant rate, gradient clipping, and an EMA of the weights (what gets exported).
A run may start from another run's UNet (``init_from``: its EMA weights), so a model with a new text encoder
does not have to learn to draw again; the text encoder and the optimizer start fresh.

Exporting a run's EMA weights as the shipped folder is generator/builtin/shapes/export.py.

A run directory holds ``checkpoint.pt`` (model, EMA, optimizer, step, RNG state, data-stream position, loss
history, wall time), ``loss.json`` and ``config.json``. Every random draw comes from one ``torch.Generator`` whose
state is checkpointed, and the data stream is random access (``ShapesStream``), so a resumed run continues the
same run bit for bit on the same device and thread count.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from generator.builtin.checkpoints import load_checkpoint, save_checkpoint
from generator.builtin.ema import Ema
from generator.builtin.shapes.model import (
    ShapesModelConfig,
    ShapesParts,
    build_parts,
    encode_text,
    tokenize,
    trainable_weights,
    unet_input,
)
from generator.builtin.shapes.world import ShapesStream
from generator.errors import UserError
from generator.files import write_json
from generator.progress import ProgressCallback, no_progress

CHECKPOINT = "checkpoint.pt"
LOSS_FILE = "loss.json"
CONFIG_FILE = "config.json"
NOISY_FROM = 0.7  # "noisy" timesteps: the last 30% of the schedule (cosine: alpha_bar < 0.2)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (``steps`` may grow when a run is resumed)."""

    steps: int = 20000
    batch: int = 32
    learning_rate: float = 5e-4
    warmup_steps: int = 500
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    cfg_dropout: float = 0.1
    min_snr_gamma: float | None = None  # None: plain epsilon MSE
    p2_gamma: float | None = None  # P2 weighting 1 / (1 + SNR)^gamma (Choi et al. 2022); None: off
    noisy_share: float = 0.0  # share of each batch whose timestep comes from the noisiest NOISY_FROM.. of the schedule
    seed: int = 0
    bf16: bool = True  # autocast matmuls/convs to bfloat16 (about 20% faster on CPUs with avx512_bf16)
    checkpoint_every: int = 250
    log_every: int = 50
    init_from: str | None = None  # a run folder (or exported weights) whose EMA UNet starts this run (None: random)
    text_from: str | None = None  # a taught text encoder (``diffatlas train shapes-latent --stage text`` run, or a
    # folder with one), used frozen; None: the text encoder is trained with the UNet
    layout_weights: dict[str, float] | None = None  # how often each scene layout is drawn (None: the world's own)
    model: ShapesModelConfig = field(default_factory=ShapesModelConfig)

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        data = asdict(self)
        data["model"] = self.model.to_json()
        return data

    @staticmethod
    def from_json(data: dict[str, Any]) -> TrainConfig:
        """Inverse of ``to_json``."""
        return TrainConfig(**{**data, "model": ShapesModelConfig.from_json(data["model"])})


@dataclass(frozen=True)
class TrainResult:
    """Summary of a (possibly resumed) run."""

    step: int
    final_loss: float | None
    wall_seconds: float
    run_dir: Path


def _check_compatible(saved: TrainConfig, wanted: TrainConfig) -> None:
    """A resumed run may only change its length (and how often it checkpoints or logs)."""
    free = {"steps": 0, "checkpoint_every": 0, "log_every": 0}
    if replace(saved, **free) != replace(wanted, **free):
        raise UserError("the run directory holds a different training configuration; use another --out or match it")


def diffusion_loss(parts: ShapesParts, images: torch.Tensor, captions: list[str], generator: torch.Generator,
                   config: TrainConfig) -> torch.Tensor:
    """MSE of the UNet's prediction (epsilon or v) on one batch, optionally Min-SNR or P2 weighted, with
    classifier-free caption dropout. Timesteps are uniform, except that a ``noisy_share`` of the batch draws
    from the noisiest 30% of the schedule, where the layout (position, relations, count) is decided.

    In x0 terms the epsilon loss weighs an error by SNR and the v loss by 1 + SNR: at the noisiest steps, where
    the layout is decided, v keeps a weight of about 1 where epsilon's falls towards 0."""
    device = images.device
    batch = images.shape[0]
    drop = torch.rand(batch, generator=generator, device="cpu") < config.cfg_dropout
    captions = ["" if d else c for c, d in zip(captions, drop.tolist())]
    steps = config.model.num_train_timesteps
    timesteps = torch.randint(0, steps, (batch,), generator=generator, device="cpu")
    if config.noisy_share > 0:  # drawn only when asked, so runs without it replay the same random numbers
        noisy_rows = torch.rand(batch, generator=generator, device="cpu") < config.noisy_share
        noisy_steps = torch.randint(int(NOISY_FROM * steps), steps, (batch,), generator=generator, device="cpu")
        timesteps = torch.where(noisy_rows, noisy_steps, timesteps)
    noise = torch.randn(images.shape, generator=generator, device="cpu").to(device)
    alphas_cumprod = parts.scheduler.alphas_cumprod.to(device)[timesteps.to(device)].view(batch, 1, 1, 1)
    noisy = alphas_cumprod.sqrt() * images + (1 - alphas_cumprod).sqrt() * noise  # DDPM Eq. 4
    ids = tokenize(parts.tokenizer, captions).to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if config.bf16 else contextlib.nullcontext()
    with autocast:
        hidden, mask = encode_text(parts.text_encoder, ids)  # (B, tokens, dim), padding mask or None
        predicted = parts.unet(unet_input(parts.unet, noisy), timesteps.to(device), encoder_hidden_states=hidden,
                               encoder_attention_mask=mask).sample
    target = noise
    if config.model.prediction == "v_prediction":  # v = sqrt(a) eps - sqrt(1-a) x0 (Salimans & Ho 2022, Sec. 4)
        target = alphas_cumprod.sqrt() * noise - (1 - alphas_cumprod).sqrt() * images
    per_sample = F.mse_loss(predicted.float(), target, reduction="none").mean(dim=(1, 2, 3))
    snr = alphas_cumprod.view(batch) / (1 - alphas_cumprod.view(batch))
    weight = torch.ones_like(snr)
    if config.min_snr_gamma is not None:
        weight = weight * torch.clamp(snr, max=config.min_snr_gamma) / snr  # Min-SNR (Hang et al. 2023, Eq. 10)
    if config.p2_gamma is not None:
        weight = weight / (1 + snr) ** config.p2_gamma  # P2 (Choi et al. 2022, Eq. 8, k = 1)
    return (weight * per_sample).mean()


def _start_from(named: dict[str, torch.Tensor], run_dir: Path) -> dict[str, Any]:
    """Copy the EMA UNet of the run in ``run_dir`` into ``named`` (the same UNet architecture is required).

    The one exception: a UNet that gained input channels (``coordinates``) takes the old input weights for
    the pixel channels and zeros for the new ones, so it starts out computing exactly what the old one did.
    The text encoder is copied too when it is the same architecture; another kind starts fresh.

    Returns where it came from: the run, its step and its training time (and where that run started from),
    for the exported weights' record.
    """
    path = run_dir / CHECKPOINT
    if (run_dir / "unet" / "config.json").exists() and not path.exists():
        state = _exported_state(run_dir)
    elif not path.exists():
        raise UserError(f"--init-from: no {CHECKPOINT} (a run) or unet/ (exported weights) in {run_dir}")
    else:
        state = load_checkpoint(path)
    ema = state["ema"]
    unet = {name: tensor for name, tensor in ema.items() if name.startswith("unet.")}
    mine = {name for name in named if name.startswith("unet.")}

    def fits(name: str, tensor: torch.Tensor) -> bool:
        wanted = named[name].shape
        if name == "unet.conv_in.weight":  # (out, in, k, k): more input channels are allowed
            return wanted[:1] + wanted[2:] == tensor.shape[:1] + tensor.shape[2:] and wanted[1] >= tensor.shape[1]
        return wanted == tensor.shape

    if set(unet) != mine or not all(fits(n, t) for n, t in unet.items()):
        raise UserError(f"--init-from: the UNet in {run_dir} has another architecture than this run's")
    text = {name: tensor for name, tensor in ema.items() if name.startswith("text_encoder.")}
    same_text = set(text) == {n for n in named if n.startswith("text_encoder.")} and all(
        named[n].shape == t.shape for n, t in text.items())
    with torch.no_grad():
        for name, tensor in {**unet, **(text if same_text else {})}.items():
            if named[name].shape != tensor.shape:
                named[name].zero_()
                named[name][:, : tensor.shape[1]].copy_(tensor)
            else:
                named[name].copy_(tensor)
    command = run_dir / "command.txt"
    return {
        "run": str(run_dir),
        "step": state["step"],
        "wall_seconds": round(state["wall_seconds"], 1),
        "command": command.read_text().strip() if command.exists() else state.get("command"),
        "text_encoder": same_text,
        "started_from": state.get("started_from"),
    }


def _exported_state(folder: Path) -> dict[str, Any]:
    """Exported weights (``--ship-to``, e.g. the shipped model) seen as a run's checkpoint: their (EMA) weights
    as ``ema``, and the steps, time and origin from their training.json, so a continued run keeps its history."""
    import json

    from generator.builtin.shapes.model import load_parts

    parts = load_parts(folder)
    record = json.loads((folder / "training.json").read_text()) if (folder / "training.json").exists() else {}
    return {"ema": {name: tensor.detach() for name, tensor in trainable_weights(parts).items()},
            "step": int(record.get("steps", 0)), "wall_seconds": float(record.get("wall_seconds", 0.0)),
            "started_from": record.get("started_from"), "command": record.get("command")}


def training_parts(config: TrainConfig) -> tuple[ShapesParts, dict[str, torch.Tensor]]:
    """The run's model and the weights it trains: both networks, or only the UNet when ``text_from`` names a taught
    text encoder (loaded frozen, with its tokenizer, in place of the random one)."""
    parts = build_parts(config.model, seed=config.seed)
    named = trainable_weights(parts)
    if config.text_from is None:
        return parts, named
    from generator.builtin.latent.text import text_parts_of

    parts.tokenizer, parts.text_encoder = text_parts_of(config.text_from)
    width = parts.text_encoder.config.d_model
    if config.model.text_encoder != "t5" or width != config.model.text_hidden:
        raise UserError(f"--text: {config.text_from} holds a T5 encoder of width {width}; this run needs "
                        f"{config.model.text_encoder} of width {config.model.text_hidden}")
    return parts, {name: weight for name, weight in named.items() if name.startswith("unet.")}


def _lr_at(step: int, config: TrainConfig) -> float:
    return config.learning_rate * min(1.0, (step + 1) / max(1, config.warmup_steps))


def train(config: TrainConfig, run_dir: Path, device: str = "cpu", resume: bool = True,
          progress: ProgressCallback = no_progress) -> TrainResult:
    """Train (or continue) the run in ``run_dir`` up to ``config.steps`` optimizer steps."""
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = run_dir / CHECKPOINT
    if checkpoint_path.exists() and not resume:
        raise UserError(f"{checkpoint_path} exists; pass --resume to continue it or choose another --out")
    torch_device = torch.device(device)
    parts, named = training_parts(config)
    parts.unet.to(torch_device).train()
    parts.text_encoder.to(torch_device).train(config.text_from is None)
    started_from = None
    if config.init_from is not None and not checkpoint_path.exists():
        started_from = _start_from(named, Path(config.init_from))
    optimizer = torch.optim.AdamW(named.values(), lr=config.learning_rate, weight_decay=config.weight_decay)
    ema = Ema(named)
    generator = torch.Generator().manual_seed(config.seed)
    stream = ShapesStream(seed=config.seed, resolution=config.model.resolution, layouts=config.layout_weights)
    step, data_position, wall, history = 0, 0, 0.0, []

    if checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path, torch_device)
        _check_compatible(TrainConfig.from_json(state["config"]), config)
        for name, tensor in state["model"].items():
            named[name].data.copy_(tensor)
        ema.shadow = {k: v.to(torch_device) for k, v in state["ema"].items()}
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        step, data_position, wall, history = state["step"], state["data_position"], state["wall_seconds"], state["loss_history"]
        started_from = state.get("started_from")
    write_json(run_dir / CONFIG_FILE, config.to_json())

    def save() -> None:
        save_checkpoint({
            "config": config.to_json(),
            "model": {k: v.detach().cpu() for k, v in named.items()},
            "ema": {k: v.cpu() for k, v in ema.shadow.items()},
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "step": step,
            "data_position": data_position,
            "wall_seconds": wall,
            "loss_history": history,
            "started_from": started_from,
        }, checkpoint_path)
        write_json(run_dir / LOSS_FILE, {"steps": [h[0] for h in history], "loss": [h[1] for h in history]})

    running: list[float] = []
    last = time.monotonic()
    progress(step, config.steps, "")
    while step < config.steps:
        images_np, captions = stream.batch(data_position, config.batch)
        data_position += config.batch
        images = torch.from_numpy(images_np).to(torch_device)
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config)
        loss = diffusion_loss(parts, images, captions, generator, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(named.values()), config.grad_clip)
        optimizer.step()
        ema.update(named, step, config.ema_decay)
        step += 1
        running.append(loss.detach().item())
        now = time.monotonic()
        wall += now - last
        last = now
        if step % config.log_every == 0 or step == config.steps:
            history.append([step, round(sum(running) / len(running), 6)])
            running = []
        if step % config.checkpoint_every == 0 or step == config.steps:
            save()
        progress(step, config.steps, f"loss {history[-1][1]:.4f}" if history else "")
    if not checkpoint_path.exists():
        save()
    return TrainResult(step, history[-1][1] if history else None, wall, run_dir)
