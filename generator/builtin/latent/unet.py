"""Built-in models: the latent model's denoiser, a ``UNet2DConditionModel`` on the autoencoder's latents.

Stable Diffusion 2's anatomy at the shapes world's scale: a frozen text encoder (the shipped shapes model's T5
encoder and word tokenizer, which already knew the world's words, as SD's CLIP knew English; since ``--stage
text``, that encoder taught where each named object goes: ``text.py``), a UNet with
cross-attention at the two finest latent resolutions (16x16 and 8x8, so DAAM has fine and coarse maps), v-prediction
on SD's scaled-linear schedule. The caption's padding is masked inside the text encoder (``use_attention_mask`` in
its config, which ``StableDiffusionPipeline.encode_prompt`` honours) but not in the UNet, exactly as the pipeline
runs it, so the user's path and ours are one.

Latents come from the VAE run on the fly: the posterior sampled under the run's generator and multiplied by the
VAE's measured scaling factor (``scaling_factor``), as SD's training script does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from generator.builtin.latent.grounding import batch_targets, grounding_kl, recorded_attention
from generator.builtin.latent.loop import LoopResult, StageConfig, note_start, run_loop, run_weights
from generator.builtin.latent.vae import (
    VaeConfig,
    build_vae,
    folder_vae,
    held_out,
    is_pipeline_folder,
    latent_std,
    vae_run_weights,
)
from generator.builtin.shapes.world import ShapesStream, model_images
from generator.progress import ProgressCallback, no_progress

SCALING_SCENES = 256  # held-out scenes the latent scaling factor is measured on


@dataclass(frozen=True)
class UnetConfig:
    """The latent UNet's shape and schedule (the defaults are the shipped one)."""

    channels: tuple[int, ...] = (32, 64, 128)
    cross_attention_blocks: tuple[bool, ...] = (True, True, False)
    layers_per_block: int = 1
    attention_heads: int = 4
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085  # Stable Diffusion's scaled-linear schedule
    beta_end: float = 0.012
    prediction: str = "v_prediction"

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class UnetTrainConfig(StageConfig):
    """Everything that defines a UNet training run (``steps`` may grow when a run is resumed)."""

    vae: str = "build/train/shapes-latent-vae"  # the VAE run whose EMA weights give the latents
    steps: int = 20000
    batch: int = 32
    learning_rate: float = 5e-4
    warmup_steps: int = 200
    cooldown_steps: int = 0  # 0: a constant rate to the end
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    cfg_dropout: float = 0.1
    seed: int = 0
    init_from: str | None = None  # an exported folder whose unet/ starts this run (None: random)
    text_encoder: str | None = None  # a text run or folder (None: init_from's, else the shapes model's)
    grounding: float = 0.0  # weight of the attention grounding loss (grounding.py; 0: the diffusion loss alone)
    checkpoint_every: int = 250
    log_every: int = 50
    model: UnetConfig = field(default_factory=UnetConfig)


def build_unet(config: UnetConfig, latent_size: int, latent_channels: int, text_dim: int, seed: int = 0):
    """A fresh latent UNet (diffusers ``UNet2DConditionModel``) with random weights drawn under ``seed``."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    down = tuple("CrossAttnDownBlock2D" if cross else "DownBlock2D" for cross in config.cross_attention_blocks)
    up = tuple("CrossAttnUpBlock2D" if cross else "UpBlock2D" for cross in reversed(config.cross_attention_blocks))
    return UNet2DConditionModel(
        sample_size=latent_size, in_channels=latent_channels, out_channels=latent_channels,
        down_block_types=down, up_block_types=up, block_out_channels=config.channels,
        layers_per_block=config.layers_per_block, cross_attention_dim=text_dim,
        attention_head_dim=config.attention_heads,  # diffusers reads this as the number of heads
        norm_num_groups=32,
    )


def build_scheduler(config: UnetConfig):  # -> diffusers.DDPMScheduler
    """DDPM on SD's scaled-linear betas, the config's prediction type, no clipping (latents are not in [-1, 1]);
    the training schedule does not depend on ``steps_offset``, only how samplers space their steps."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=config.num_train_timesteps, beta_start=config.beta_start,
                         beta_end=config.beta_end, beta_schedule="scaled_linear", prediction_type=config.prediction,
                         clip_sample=False, steps_offset=1)  # SD's own scheduler configs


def text_parts(config: UnetTrainConfig, dtype: torch.dtype = torch.float32):
    """The frozen tokenizer and text encoder of a UNet run: its ``text_encoder`` (a ``--stage text`` run or a
    folder), else the folder it starts from, else the shipped shapes model's; padding masked inside the encoder."""
    from generator.builtin.latent.text import text_parts_of

    return text_parts_of(config.text_encoder or config.init_from, dtype)


def load_vae_run(vae_run: Path):
    """The EMA autoencoder of a VAE run, its config and its measured scaling factor (frozen, eval mode); an
    exported folder's ``vae/`` with the scaling factor it was shipped with."""
    from generator.builtin.checkpoints import load_checkpoint
    from generator.builtin.latent.loop import CHECKPOINT

    if is_pipeline_folder(vae_run):
        vae = folder_vae(vae_run).requires_grad_(False).eval()
        c = vae.config
        config = VaeConfig(resolution=int(c.sample_size), block_channels=tuple(c.block_out_channels),
                           latent_channels=int(c.latent_channels), layers_per_block=int(c.layers_per_block))
        return vae, config, {"folder": str(vae_run)}

    _, record = run_weights(vae_run, "vae.")
    trained = load_checkpoint(vae_run / CHECKPOINT)["config"]
    config = VaeConfig.from_json(trained["model"])
    vae = build_vae(config)
    vae.load_state_dict(vae_run_weights(vae_run))
    vae.requires_grad_(False).eval()
    if trained.get("decoder_only") and trained.get("init_from"):
        # the encoder, and so the latent space the UNet learned, is the starting VAE's: keep its scaling factor
        scaling = float(load_vae_run(Path(trained["init_from"]))[0].config.scaling_factor)
    else:
        images, _ = held_out(config.resolution, SCALING_SCENES)
        scaling = round(1.0 / latent_std(vae, images), 5)
    vae.register_to_config(scaling_factor=scaling)
    return vae, config, record


@torch.no_grad()
def caption_states(tokenizer, text_encoder, captions: list[str]) -> torch.Tensor:
    """(B, tokens, dim) caption vectors as ``StableDiffusionPipeline.encode_prompt`` computes them."""
    encoded = tokenizer(captions, padding="max_length", truncation=True, max_length=tokenizer.model_max_length,
                        return_tensors="pt")
    return text_encoder(encoded.input_ids, attention_mask=encoded.attention_mask)[0]


def diffusion_loss(unet, scheduler, latents: torch.Tensor, states: torch.Tensor,
                   generator: torch.Generator) -> torch.Tensor:
    """MSE of the UNet's v (or epsilon) prediction at uniformly drawn timesteps."""
    batch = latents.shape[0]
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=generator)
    noise = torch.randn(latents.shape, generator=generator).to(latents.device)
    alpha_bar = scheduler.alphas_cumprod[timesteps].view(batch, 1, 1, 1).to(latents.device)
    noisy = alpha_bar.sqrt() * latents + (1 - alpha_bar).sqrt() * noise
    target = noise
    if scheduler.config.prediction_type == "v_prediction":
        target = alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * latents
    predicted = unet(noisy, timesteps.to(latents.device), encoder_hidden_states=states).sample
    return F.mse_loss(predicted.float(), target)


def train_unet(config: UnetTrainConfig, run_dir: Path, device: str = "cpu", resume: bool = True,
               progress: ProgressCallback = no_progress) -> LoopResult:
    """Train (or continue) the latent UNet run in ``run_dir`` on the latents of the VAE run ``config.vae``."""
    vae, vae_config, _ = load_vae_run(Path(config.vae))
    tokenizer, text_encoder = text_parts(config)
    latent_size = vae_config.resolution // vae_config.downsample
    unet = build_unet(config.model, latent_size, vae_config.latent_channels, text_encoder.config.d_model,
                      seed=config.seed)
    if config.init_from is not None:  # a fresh run only: a resumed one takes its checkpoint's weights
        from diffusers import UNet2DConditionModel

        shipped = UNet2DConditionModel.from_pretrained(Path(config.init_from) / "unet", torch_dtype=torch.float32)
        unet.load_state_dict(shipped.state_dict())
    unet.train()
    scheduler = build_scheduler(config.model)
    stream = ShapesStream(seed=config.seed, resolution=vae_config.resolution)
    vae, text_encoder, unet = vae.to(device), text_encoder.to(device), unet.to(device)

    def batch_loss(position: int, generator: torch.Generator) -> torch.Tensor:
        samples = stream.samples(position, config.batch)
        images = model_images(samples)
        drop = torch.rand(config.batch, generator=generator) < config.cfg_dropout
        captions = ["" if d else s.scene.caption for s, d in zip(samples, drop.tolist())]
        with torch.no_grad():
            posterior = vae.encode(torch.from_numpy(images).to(device)).latent_dist
            sample = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator).to(device)
            latents = sample * vae.config.scaling_factor
        states = caption_states(tokenizer, text_encoder, captions).to(device)
        if not config.grounding:
            return diffusion_loss(unet, scheduler, latents, states, generator)
        with recorded_attention(unet) as maps:
            loss = diffusion_loss(unet, scheduler, latents, states, generator)
        targets = batch_targets(tokenizer, samples, drop.tolist())
        return loss + config.grounding * grounding_kl(maps, targets, tuple(latents.shape[-2:]))

    named = {f"unet.{n}": p for n, p in unet.named_parameters()}
    note_start(run_dir, config.init_from, "unet")
    return run_loop(config.settings(), config.to_json(), named, batch_loss, run_dir, resume, progress)
