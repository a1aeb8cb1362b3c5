"""Models stage: `testing:tiny-sd3` and `testing:tiny-flux`, random-weight diffusion transformers built locally.

The real architectures at tiny widths: SD3's MMDiT (``SD3Transformer2DModel``: joint attention over image
and text tokens, two CLIP encoders with projections and a T5 encoder) and Flux (``FluxTransformer2DModel``:
double-stream joint blocks, then single-stream blocks, rotary positions, distilled guidance input; a CLIP
encoder for the pooled vector and T5 for the tokens), both over a 16-channel ``AutoencoderKL`` with Stable
Diffusion's 8x downsampling, and flow-matching Euler schedulers configured as the released models are
(SD3: static shift 3; Flux: resolution-dependent shift). Built from config under a fixed seed with the
locally written CLIP and T5 tokenizers: nothing is downloaded, the same id gives the same weights everywhere.
"""

from __future__ import annotations

import torch

from generator.models.flow import FluxAdapter, SD3Adapter
from generator.models.limits import ModelLimits
from generator.models.testing.deepfloyd_if import build_tokenizer as build_t5_tokenizer
from generator.models.testing.pipelines import load_tokenizer

T5_TOKENS = 32  # T5 sequence length of the tiny models (the released ones: 256 for SD3, 512 for Flux-dev)


def _clip(tokenizer: object, *, projection: bool) -> torch.nn.Module:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=77, projection_dim=32, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def _t5(tokenizer: object, width: int) -> torch.nn.Module:
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(
        T5Config(vocab_size=len(tokenizer), d_model=width, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=0)
    ).eval()


def _vae(shift_factor: float, scaling_factor: float) -> torch.nn.Module:
    from diffusers import AutoencoderKL

    # the 16-channel latent space SD3 and Flux share, with their shift and scale; four blocks: 8x downsampling
    return AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 16, 16), latent_channels=16,
        norm_num_groups=4, sample_size=64, shift_factor=shift_factor, scaling_factor=scaling_factor,
        use_quant_conv=False, use_post_quant_conv=False,
    ).eval()


def build_tiny_sd3(device: torch.device, dtype: torch.dtype) -> object:
    """A StableDiffusion3Pipeline: 2 MMDiT blocks (the last one context-pre-only, as in SD3; q/k RMS norms as in
    SD 3.5), 64x64 images."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    torch.manual_seed(0)
    tokenizer, t5_tokenizer = load_tokenizer(), build_t5_tokenizer()
    transformer = SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=8,
        num_attention_heads=4, joint_attention_dim=64, caption_projection_dim=32, pooled_projection_dim=64,
        pos_embed_max_size=16, qk_norm="rms_norm",  # SD 3.5's per-head query/key norms
    ).eval()
    pipeline = StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0),
        vae=_vae(shift_factor=0.0609, scaling_factor=1.5305),
        text_encoder=_clip(tokenizer, projection=True), tokenizer=tokenizer,
        text_encoder_2=_clip(tokenizer, projection=True), tokenizer_2=load_tokenizer(),
        text_encoder_3=_t5(t5_tokenizer, 64), tokenizer_3=t5_tokenizer,
    )
    return _placed(pipeline, device, dtype)


def build_tiny_flux(device: torch.device, dtype: torch.dtype) -> object:
    """A FluxPipeline (guidance-distilled, like Flux-dev): 1 double-stream and 2 single-stream blocks, 64x64."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    torch.manual_seed(0)
    tokenizer, t5_tokenizer = load_tokenizer(), build_t5_tokenizer()
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=64, out_channels=None, num_layers=1, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True,
        axes_dims_rope=(4, 6, 6),
    ).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
        base_image_seq_len=256, max_image_seq_len=4096,
    )
    pipeline = FluxPipeline(
        transformer=transformer, scheduler=scheduler, vae=_vae(shift_factor=0.1159, scaling_factor=0.3611),
        text_encoder=_clip(tokenizer, projection=False), tokenizer=tokenizer,
        text_encoder_2=_t5(t5_tokenizer, 32), tokenizer_2=t5_tokenizer,
    )
    return _placed(pipeline, device, dtype)


def _placed(pipeline: object, device: torch.device, dtype: torch.dtype) -> object:
    """Move to the device, casting only when the dtype changes (a no-op cast makes diffusers warn)."""
    pipeline.set_progress_bar_config(disable=True)
    pipeline.to(device)
    return pipeline.to(dtype=dtype) if dtype != torch.float32 else pipeline


def load_tiny_sd3(device: torch.device, dtype: torch.dtype) -> SD3Adapter:
    """testing:tiny-sd3, 64x64, flow-matching Euler, 10 steps by default."""
    return SD3Adapter(build_tiny_sd3(device, dtype), "testing:tiny-sd3", default_steps=10, text_tokens=T5_TOKENS)


def load_tiny_flux(device: torch.device, dtype: torch.dtype) -> FluxAdapter:
    """testing:tiny-flux, 64x64, flow-matching Euler with Flux's shift, 10 steps by default."""
    return FluxAdapter(build_tiny_flux(device, dtype), "testing:tiny-flux", default_steps=10, text_tokens=T5_TOKENS,
                       default_size=64)


def sd3_limits() -> ModelLimits:
    """SD3's words are checked against its CLIP encoders' 77 tokens (T5 reads longer prompts)."""
    return ModelLimits(size_multiple=16, max_tokens=77, tokenizer=load_tokenizer, flow=True)


def flux_limits() -> ModelLimits:
    """Flux's tokens are T5's (CLIP gives only the pooled vector)."""
    return ModelLimits(size_multiple=16, max_tokens=T5_TOKENS, tokenizer=build_t5_tokenizer, flow=True)
