"""Models stage: `testing:tiny-if`, a random-weight DeepFloyd IF stage-I pipeline built locally from config.

Same layout as IF's UNet (simple cross-attention blocks with added text keys, text embedding added to the time
embedding, 6 output channels for noise and learned variance, squared-cosine DDPM schedule with thresholding),
a two-layer T5 encoder, and a T5 sentencepiece-style (Unigram) tokenizer written here in code: nothing is
downloaded, and the same id gives the same weights on every machine. Images are noise-like by design.
"""

from __future__ import annotations

import torch

from generator.models.deepfloyd_if import MAX_TOKENS, DeepFloydIFAdapter
from generator.models.limits import ModelLimits

# Whole-word pieces for the words tests and the shapes world use; anything else falls back to characters.
WORDS = """a an the of in on at and with high quality photo picture drawing painting oil old man rocket dog hat
campfire people red green blue yellow purple orange white black circle square triangle shape big small left
right top bottom center""".split()
CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789,.'-!?"


def build_tokenizer() -> object:
    """A T5TokenizerFast over a Unigram model (T5's sentencepiece kind): '▁' word pieces, '</s>' at the end."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -3.0)]
    vocab += [("▁" + word, -2.0) for word in WORDS] + [(c, -5.0) for c in CHARACTERS]
    model = Tokenizer(models.Unigram(vocab, unk_id=2, byte_fallback=False))
    model.normalizer = normalizers.Lowercase()
    model.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    model.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    model.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    return T5TokenizerFast(
        tokenizer_object=model, eos_token="</s>", pad_token="<pad>", unk_token="<unk>", extra_ids=0,
        model_max_length=MAX_TOKENS,
    )


def build_tiny_if(device: torch.device, dtype: torch.dtype) -> object:
    """An IFPipeline with stage I's architecture at 32x32 and tiny widths (diffusers' own IF test layout)."""
    from diffusers import DDPMScheduler, IFPipeline, UNet2DConditionModel
    from diffusers.models.attention_processor import AttnAddedKVProcessor
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    text_encoder = T5EncoderModel(
        T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=0)
    ).eval()
    unet = UNet2DConditionModel(
        sample_size=32,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        in_channels=3,
        out_channels=6,
        cross_attention_dim=32,
        encoder_hid_dim=32,
        attention_head_dim=8,
        addition_embed_type="text",
        addition_embed_type_num_heads=2,
        cross_attention_norm="group_norm",
        resnet_time_scale_shift="scale_shift",
        act_fn="gelu",
        norm_num_groups=8,
    ).eval()
    unet.set_attn_processor(AttnAddedKVProcessor())
    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", beta_start=0.0001, beta_end=0.02,
        thresholding=True, dynamic_thresholding_ratio=0.95, sample_max_value=1.0, prediction_type="epsilon",
        variance_type="learned_range",
    )
    pipeline = IFPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False,
    )
    pipeline.set_progress_bar_config(disable=True)
    pipeline.to(device)
    return pipeline.to(dtype=dtype) if dtype != torch.float32 else pipeline


def load_tiny_if(device: torch.device, dtype: torch.dtype) -> DeepFloydIFAdapter:
    """testing:tiny-if, 32x32 pixels, DDIM, 10 steps by default."""
    return DeepFloydIFAdapter(build_tiny_if(device, dtype), "testing:tiny-if", default_steps=10)


def tiny_limits() -> ModelLimits:
    """77 T5 tokens, sizes a multiple of 2 (one downsampling)."""
    return ModelLimits(size_multiple=2, max_tokens=MAX_TOKENS, tokenizer=build_tokenizer)
