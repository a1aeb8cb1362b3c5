"""Built-in models: the latent model's autoencoder, a diffusers ``AutoencoderKL`` trained from scratch on the world.

Stable Diffusion's anatomy at the shapes world's scale: each halving of resolution is one encoder block, so
``len(block_channels) - 1`` halvings; the default (4 blocks, 128x128 pixels) downsamples 8x like SD, to 16x16x4
latents. Training is plain reconstruction (L1 + MSE on pixels in [-1, 1]) with a small KL term that keeps the
posterior close to a unit Gaussian (SD's VAE adds a perceptual and an adversarial loss; flat-coloured shapes are
reconstructed sharply without them). The scaling factor is measured after training, as SD's was: one over the
standard deviation of the posterior means on fresh scenes, so the diffusion model sees latents of unit variance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from generator.builtin.latent.loop import LoopResult, StageConfig, note_start, run_loop
from generator.builtin.shapes.world import ShapesStream
from generator.progress import ProgressCallback, no_progress

HELD_OUT_SEED = 777  # scenes no training run draws (training streams use the run's seed)


@dataclass(frozen=True)
class VaeConfig:
    """The autoencoder's shape (the defaults are the shipped one)."""

    resolution: int = 128
    block_channels: tuple[int, ...] = (16, 32, 64, 128)
    latent_channels: int = 4
    layers_per_block: int = 1

    @property
    def downsample(self) -> int:
        """How many pixels one latent cell covers along a side."""
        return 2 ** (len(self.block_channels) - 1)

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @staticmethod
    def from_json(data: dict[str, Any]) -> VaeConfig:
        """Inverse of ``to_json``."""
        return VaeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class VaeTrainConfig(StageConfig):
    """Everything that defines a VAE training run (``steps`` may grow when a run is resumed)."""

    steps: int = 4000
    batch: int = 16
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    cooldown_steps: int = 0  # 0: a constant rate to the end
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    kl_weight: float = 1e-6
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 25
    init_from: str | None = None  # a VAE run whose EMA weights this run starts from
    decoder_only: bool = False  # train the decoder alone: the encoder, and so the latent space, stays as it was
    model: VaeConfig = field(default_factory=VaeConfig)


def build_vae(config: VaeConfig, seed: int = 0):  # -> diffusers.AutoencoderKL
    """A fresh AutoencoderKL with random weights drawn under ``seed`` (scaling factor 1 until measured)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    blocks = len(config.block_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=config.latent_channels,
        down_block_types=("DownEncoderBlock2D",) * blocks, up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=config.block_channels, layers_per_block=config.layers_per_block,
        norm_num_groups=min(32, config.block_channels[0]), sample_size=config.resolution, scaling_factor=1.0,
    )


def reconstruction_loss(vae, images: torch.Tensor, generator: torch.Generator, kl_weight: float) -> torch.Tensor:
    """L1 + MSE of a posterior sample's decoding, plus ``kl_weight`` times the KL to a unit Gaussian."""
    posterior = vae.encode(images).latent_dist
    noise = torch.randn(posterior.mean.shape, generator=generator).to(images.device)
    decoded = vae.decode(posterior.mean + posterior.std * noise).sample
    kl = posterior.kl().mean() / posterior.mean[0].numel()
    return F.l1_loss(decoded, images) + F.mse_loss(decoded, images) + kl_weight * kl


def train_vae(config: VaeTrainConfig, run_dir: Path, device: str = "cpu", resume: bool = True,
              progress: ProgressCallback = no_progress) -> LoopResult:
    """Train (or continue) the autoencoder run in ``run_dir``.

    With ``decoder_only`` (and ``init_from``) only the decoder learns, as Stable Diffusion's improved decoders
    were made: latents of the encoder, and every UNet trained on them, stay valid."""
    vae = build_vae(config.model, seed=config.seed)
    if config.init_from is not None:
        vae.load_state_dict(vae_run_weights(Path(config.init_from)))
    vae = vae.to(device).train()
    stream = ShapesStream(seed=config.seed, resolution=config.model.resolution)

    def batch_loss(position: int, generator: torch.Generator) -> torch.Tensor:
        images, _ = stream.batch(position, config.batch)
        return reconstruction_loss(vae, torch.from_numpy(images).to(device), generator, config.kl_weight)

    named = {f"vae.{n}": p for n, p in vae.named_parameters()
             if not config.decoder_only or n.startswith(DECODER_PARTS)}
    if config.decoder_only:
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    note_start(run_dir, config.init_from, "vae")
    return run_loop(config.settings(), config.to_json(), named, batch_loss, run_dir, resume, progress)


DECODER_PARTS = ("decoder.", "post_quant_conv.")


def vae_run_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The full EMA state of a VAE run (a decoder-only run's decoder over the encoder of the run it started from),
    or of an exported folder's ``vae/`` (so training continues from shipped weights)."""
    from generator.builtin.checkpoints import load_checkpoint
    from generator.builtin.latent.loop import CHECKPOINT, run_weights

    if is_pipeline_folder(run_dir):
        return {k: v.float() for k, v in folder_vae(run_dir).state_dict().items()}
    weights, _ = run_weights(run_dir, "vae.")
    base = load_checkpoint(run_dir / CHECKPOINT)["config"].get("init_from")
    return {**vae_run_weights(Path(base)), **weights} if base else weights


@torch.no_grad()
def round_trip(vae, images: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """Decode(encode mean) of (B, 3, H, W) images in [-1, 1], clamped to [-1, 1]."""
    out = [vae.decode(vae.encode(images[i:i + batch]).latent_dist.mean).sample.clamp(-1, 1)
           for i in range(0, len(images), batch)]
    return torch.cat(out)


def psnr(reference: torch.Tensor, reconstructed: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [-1, 1], on the [0, 1] scale, over the whole set."""
    mse = F.mse_loss((reconstructed + 1) / 2, (reference + 1) / 2).item()
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


@torch.no_grad()
def latent_std(vae, images: torch.Tensor, batch: int = 32) -> float:
    """Standard deviation of the posterior means of ``images`` (before scaling)."""
    means = torch.cat([vae.encode(images[i:i + batch]).latent_dist.mean for i in range(0, len(images), batch)])
    return float(means.std())


def held_out(resolution: int, n: int, seed: int = HELD_OUT_SEED) -> tuple[torch.Tensor, list]:
    """``n`` held-out scenes rendered at ``resolution``: (n, 3, H, W) in [-1, 1] and their ``Scene``s."""
    stream = ShapesStream(seed=seed, resolution=resolution)
    images, _ = stream.batch(0, n)
    return torch.from_numpy(images), [stream.scene(i) for i in range(n)]


def is_pipeline_folder(path: Path) -> bool:
    """An exported Stable Diffusion folder (``vae/``, ``unet/``...) rather than a training run."""
    return (path / "vae" / "config.json").exists() and not (path / "checkpoint.pt").exists()


def folder_part(model_class, part: Path):
    """A diffusers model saved in a part of an exported folder (``vae/``, ``unet/``), in fp32. Built from its config
    and weights rather than ``from_pretrained``, which would record the local path in a re-exported config."""
    from safetensors.torch import load_file

    model = model_class.from_config(model_class.load_config(part))
    model.load_state_dict(load_file(part / "diffusion_pytorch_model.safetensors"))
    return model.float()


def folder_vae(folder: Path):  # -> diffusers.AutoencoderKL
    """The autoencoder of an exported folder in fp32, its stored scaling factor included."""
    from diffusers import AutoencoderKL

    return folder_part(AutoencoderKL, folder / "vae")
