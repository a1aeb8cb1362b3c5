"""Training stage: the "shapes" text-to-image model: word-level tokenizer, CLIP text encoder, pixel UNet.

Everything is built from code under a fixed seed: the tokenizer from the world's vocabulary
(``shapes_world.vocabulary``), a tiny ``CLIPTextModel`` trained from scratch, a diffusers
``UNet2DConditionModel`` in pixel space (3 channels) with cross-attention at two resolutions (so DAAM has coarse
and fine maps), and a DDPM scheduler config. ``save_pipeline_parts`` / ``load_pipeline_parts`` use the
libraries' own ``save_pretrained`` / ``from_pretrained`` so the shipped weights load like any other model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from generator.training.shapes_world import vocabulary

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, UNK_TOKEN, START_TOKEN, END_TOKEN)
MAX_TOKENS = 20  # start and end included; the longest caption has 16 words


@dataclass(frozen=True)
class ShapesModelConfig:
    """Sizes of the text encoder and UNet (the defaults are the shipped model)."""

    resolution: int = 32
    text_hidden: int = 128
    text_layers: int = 2
    text_heads: int = 4
    unet_channels: tuple[int, ...] = (32, 64, 128)
    unet_layers_per_block: int = 1
    attention_heads: int = 2  # per transformer block (diffusers calls this `attention_head_dim`, a known misnomer)
    cross_attention_blocks: tuple[bool, ...] = (False, True, True)  # cross-attention at 16x16 and 8x8 (+ mid)
    num_train_timesteps: int = 1000

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @staticmethod
    def from_json(data: dict[str, Any]) -> ShapesModelConfig:
        """Inverse of ``to_json``."""
        return ShapesModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


TINY_CONFIG = ShapesModelConfig(
    text_hidden=32, text_layers=1, text_heads=2, unet_channels=(16, 32), attention_heads=2,
    cross_attention_blocks=(False, True),
)


def build_tokenizer(max_tokens: int = MAX_TOKENS):  # -> transformers.PreTrainedTokenizerFast
    """Word-level tokenizer over the world's vocabulary; pads to ``max_tokens`` with start/end tokens like CLIP."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *vocabulary()])}
    core = Tokenizer(WordLevel(vocab, unk_token=UNK_TOKEN))
    core.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Strip()])
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single=f"{START_TOKEN} $A {END_TOKEN}",
        special_tokens=[(START_TOKEN, vocab[START_TOKEN]), (END_TOKEN, vocab[END_TOKEN])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=START_TOKEN,
        eos_token=END_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        model_max_length=max_tokens,
        padding_side="right",
    )


def tokenize(tokenizer, captions: list[str]) -> torch.Tensor:
    """(B, MAX_TOKENS) int64 token ids, padded and truncated to the tokenizer's maximum length."""
    encoded = tokenizer(
        captions, padding="max_length", truncation=True, max_length=tokenizer.model_max_length, return_tensors="pt"
    )
    return encoded.input_ids


def build_text_encoder(config: ShapesModelConfig, vocab_size: int):  # -> transformers.CLIPTextModel
    """A CLIP text encoder with random weights (trained from scratch)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    text_config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=config.text_hidden,
        intermediate_size=config.text_hidden * 4,
        num_hidden_layers=config.text_layers,
        num_attention_heads=config.text_heads,
        max_position_embeddings=MAX_TOKENS,
        pad_token_id=SPECIAL_TOKENS.index(PAD_TOKEN),
        bos_token_id=SPECIAL_TOKENS.index(START_TOKEN),
        eos_token_id=SPECIAL_TOKENS.index(END_TOKEN),
        projection_dim=config.text_hidden,
    )
    return CLIPTextModel(text_config)


def build_unet(config: ShapesModelConfig):  # -> diffusers.UNet2DConditionModel
    """A pixel-space conditional UNet; cross-attention blocks where ``cross_attention_blocks`` says."""
    from diffusers import UNet2DConditionModel

    down = tuple("CrossAttnDownBlock2D" if cross else "DownBlock2D" for cross in config.cross_attention_blocks)
    up = tuple("CrossAttnUpBlock2D" if cross else "UpBlock2D" for cross in reversed(config.cross_attention_blocks))
    return UNet2DConditionModel(
        sample_size=config.resolution,
        in_channels=3,
        out_channels=3,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=config.unet_channels,
        layers_per_block=config.unet_layers_per_block,
        cross_attention_dim=config.text_hidden,
        attention_head_dim=config.attention_heads,  # diffusers reads this as the number of heads
        norm_num_groups=min(32, config.unet_channels[0] // 2),
    )


def build_scheduler(config: ShapesModelConfig):  # -> diffusers.DDPMScheduler
    """DDPM, cosine betas (pixel space at low resolution needs the gentler schedule), epsilon prediction."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=config.num_train_timesteps,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="epsilon",
        clip_sample=True,
        clip_sample_range=1.0,
    )


@dataclass
class ShapesParts:
    """The four parts of the model, as the libraries' own objects."""

    tokenizer: Any
    text_encoder: Any
    unet: Any
    scheduler: Any


def build_parts(config: ShapesModelConfig, seed: int = 0) -> ShapesParts:
    """Fresh parts with random weights drawn under ``seed``."""
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    text_encoder = build_text_encoder(config, len(tokenizer))
    unet = build_unet(config)
    return ShapesParts(tokenizer, text_encoder, unet, build_scheduler(config))


def _quiet_libraries() -> None:
    """Library code never prints: silence the libraries' own tqdm bars and info logs."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()


def save_parts(parts: ShapesParts, directory: Path, half: bool = True) -> None:
    """Write ``unet/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/`` in save_pretrained format."""
    import copy

    _quiet_libraries()
    directory.mkdir(parents=True, exist_ok=True)
    for name, module in (("unet", parts.unet), ("text_encoder", parts.text_encoder)):
        module = copy.deepcopy(module).to(torch.float16 if half else torch.float32)
        module.save_pretrained(directory / name, safe_serialization=True)
    parts.tokenizer.save_pretrained(directory / "tokenizer")
    parts.scheduler.save_pretrained(directory / "scheduler")


def load_parts(directory: Path, dtype: torch.dtype = torch.float32) -> ShapesParts:
    """Load parts written by ``save_parts`` (weights are stored in fp16 and cast to ``dtype``)."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, PreTrainedTokenizerFast

    _quiet_libraries()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(directory / "tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(directory / "text_encoder", dtype=dtype)
    unet = UNet2DConditionModel.from_pretrained(directory / "unet", torch_dtype=dtype)
    scheduler = DDPMScheduler.from_pretrained(directory / "scheduler")
    return ShapesParts(tokenizer, text_encoder.eval(), unet.eval(), scheduler)
