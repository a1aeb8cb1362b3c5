"""Models stage: `testing:` models, random-weight pipelines of the real architectures built locally.

Built from config under a fixed seed with the locally written tokenizer (``tokenizers/tiny-clip``): the same id
gives the same weights on every machine, and nothing is downloaded. Their images are noise-like by design; they
exist so every code path that real Stable Diffusion takes can run in tests and CI.
"""

from __future__ import annotations

import torch

from generator.models.testing.tokenizer import TOKENIZER_DIR

SD_SCHEDULE = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
}


def load_tokenizer() -> object:
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR))


def _text_encoder(tokenizer: object, *, projection: bool = False) -> torch.nn.Module:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
        projection_dim=32,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def _vae() -> torch.nn.Module:
    from diffusers import AutoencoderKL

    # four blocks: the same 8x downsampling as Stable Diffusion's VAE, with tiny widths
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
    ).eval()


def build_tiny_sd(device: torch.device, dtype: torch.dtype) -> object:
    """A StableDiffusionPipeline with SD 1.x's layout (cross-attention at three resolutions), 64x64 images."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    tokenizer = load_tokenizer()
    text_encoder = _text_encoder(tokenizer)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    ).eval()
    pipeline = StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(**SD_SCHEDULE),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.set_progress_bar_config(disable=True)
    return _placed(pipeline, device, dtype)


def build_tiny_sdxl(device: torch.device, dtype: torch.dtype) -> object:
    """A StableDiffusionXLPipeline (two text encoders, pooled and size conditioning), 64x64 images."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    tokenizer = load_tokenizer()
    text_encoder, text_encoder_2 = _text_encoder(tokenizer), _text_encoder(tokenizer, projection=True)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8 + 32,  # six time ids of width 8 + pooled text (32)
        cross_attention_dim=64,  # both encoders' hidden states side by side
        norm_num_groups=8,
    ).eval()
    schedule = {k: v for k, v in SD_SCHEDULE.items() if k not in ("clip_sample", "set_alpha_to_one")}
    pipeline = StableDiffusionXLPipeline(
        vae=_vae(),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=load_tokenizer(),
        unet=unet,
        scheduler=EulerDiscreteScheduler(**schedule),
    )
    pipeline.set_progress_bar_config(disable=True)
    return _placed(pipeline, device, dtype)


def _placed(pipeline: object, device: torch.device, dtype: torch.dtype) -> object:
    """Move to the device, casting only when the dtype changes (a no-op cast makes diffusers warn)."""
    pipeline.to(device)
    return pipeline.to(dtype=dtype) if dtype != torch.float32 else pipeline
