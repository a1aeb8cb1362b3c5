"""Built-in models: the "shapes" text-to-image model: word-level tokenizer, text encoder, pixel UNet.

Everything is built from code under a fixed seed: the tokenizer from the world's vocabulary
(``shapes_world.vocabulary``), a tiny text encoder trained from scratch, a diffusers
``UNet2DConditionModel`` in pixel space (3 channels) with cross-attention at two resolutions (so DAAM has coarse
and fine maps), and a DDPM scheduler config. ``save_pipeline_parts`` / ``load_pipeline_parts`` use the
libraries' own ``save_pretrained`` / ``from_pretrained`` so the shipped weights load like any other model.

Two text encoders are available. ``clip`` is causal (CLIP's, read left to right): only the end token has read the
whole caption, and a model trained from scratch learns to take the objects' identity from the end token and the
padding after it, so a word's own cross-attention map says little about where the word is drawn (measured by
``bench/shapes_token_attention.py``). ``t5`` is bidirectional (T5's encoder): every word's vector has read the whole
caption, there is no start token, and padding is masked out of the text encoder and of the UNet's cross-attention,
so the only places the image can read the caption from are its words and one end token.

With ``coordinates`` the UNet also sees two constant channels holding each pixel's x and y in [-1, 1]
(CoordConv, Liu et al. 2018): a convolutional UNet otherwise knows where a pixel is only through the zero
padding at the borders, and the step-8500 model drew "on the left" and "at the top" no better than chance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from generator.builtin.shapes.world import vocabulary

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, UNK_TOKEN, START_TOKEN, END_TOKEN)
MAX_TOKENS = 20  # start and end included; the longest caption has 16 words
TEXT_ENCODERS: tuple[str, ...] = ("clip", "t5")
PREDICTIONS: dict[str, str] = {"epsilon": "epsilon", "v": "v_prediction"}  # CLI name -> diffusers' prediction_type


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
    text_encoder: str = "clip"  # one of TEXT_ENCODERS
    coordinates: bool = False  # two extra UNet input channels with each pixel's x and y
    prediction: str = "epsilon"  # what the UNet predicts: a diffusers prediction_type, "epsilon" or "v_prediction"

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


def build_tokenizer(max_tokens: int = MAX_TOKENS, start_token: bool = True):  # -> PreTrainedTokenizerFast
    """Word-level tokenizer over the world's vocabulary, padding to ``max_tokens``.

    Captions end with the end token, and begin with the start token like CLIP's unless ``start_token`` is off
    (T5's convention). The vocabulary is the same either way.
    """
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *vocabulary()])}
    core = Tokenizer(WordLevel(vocab, unk_token=UNK_TOKEN))
    core.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Strip()])
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single=f"{START_TOKEN} $A {END_TOKEN}" if start_token else f"$A {END_TOKEN}",
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


def build_text_encoder(config: ShapesModelConfig, vocab_size: int):  # -> CLIPTextModel | T5EncoderModel
    """The configured text encoder with random weights (trained from scratch)."""
    if config.text_encoder not in TEXT_ENCODERS:
        raise ValueError(f"unknown text encoder {config.text_encoder!r}; expected one of {TEXT_ENCODERS}")
    if config.text_encoder == "t5":
        from transformers import T5Config, T5EncoderModel

        return T5EncoderModel(T5Config(
            vocab_size=vocab_size,
            d_model=config.text_hidden,
            d_kv=config.text_hidden // config.text_heads,
            d_ff=config.text_hidden * 4,
            num_layers=config.text_layers,
            num_heads=config.text_heads,
            relative_attention_num_buckets=16,
            relative_attention_max_distance=MAX_TOKENS,
            dropout_rate=0.0,
            pad_token_id=SPECIAL_TOKENS.index(PAD_TOKEN),
            eos_token_id=SPECIAL_TOKENS.index(END_TOKEN),
        ))
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


def encode_text(text_encoder, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, tokens, dim) caption vectors and the (B, tokens) cross-attention mask (None: attend to every position).

    A T5 encoder masks padding, in itself and for the UNet; CLIP's causal encoder is used as CLIP is, unmasked.
    """
    if text_encoder.config.model_type != "t5":
        return text_encoder(ids).last_hidden_state, None
    mask = (ids != text_encoder.config.pad_token_id).long()
    return text_encoder(ids, attention_mask=mask).last_hidden_state, mask


def build_unet(config: ShapesModelConfig):  # -> diffusers.UNet2DConditionModel
    """A pixel-space conditional UNet; cross-attention blocks where ``cross_attention_blocks`` says."""
    from diffusers import UNet2DConditionModel

    down = tuple("CrossAttnDownBlock2D" if cross else "DownBlock2D" for cross in config.cross_attention_blocks)
    up = tuple("CrossAttnUpBlock2D" if cross else "UpBlock2D" for cross in reversed(config.cross_attention_blocks))
    return UNet2DConditionModel(
        sample_size=config.resolution,
        in_channels=3 + (2 if config.coordinates else 0),
        out_channels=3,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=config.unet_channels,
        layers_per_block=config.unet_layers_per_block,
        cross_attention_dim=config.text_hidden,
        attention_head_dim=config.attention_heads,  # diffusers reads this as the number of heads
        norm_num_groups=min(32, config.unet_channels[0] // 2),
    )


def unet_input(unet, pixels: torch.Tensor) -> torch.Tensor:
    """What the UNet reads: the (B, 3, H, W) pixels, plus x and y channels when it was built with ``coordinates``."""
    if unet.config.in_channels == pixels.shape[1]:
        return pixels
    batch, _, height, width = pixels.shape
    y, x = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
    grid = torch.stack([x, y]).to(pixels.device, pixels.dtype).expand(batch, 2, height, width)
    return torch.cat([pixels, grid], dim=1)


def build_scheduler(config: ShapesModelConfig):  # -> diffusers.DDPMScheduler
    """DDPM, cosine betas (pixel space at low resolution needs the gentler schedule), the config's prediction type."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=config.num_train_timesteps,
        beta_schedule="squaredcos_cap_v2",
        prediction_type=config.prediction,
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
    tokenizer = build_tokenizer(start_token=config.text_encoder == "clip")
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


def trainable_weights(parts: ShapesParts) -> dict[str, torch.Tensor]:
    """Trainable parameters of both networks, by prefixed name."""
    named = {f"unet.{n}": p for n, p in parts.unet.named_parameters()}
    named.update({f"text_encoder.{n}": p for n, p in parts.text_encoder.named_parameters()})
    return named


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
    import json

    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, PreTrainedTokenizerFast, T5EncoderModel

    _quiet_libraries()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(directory / "tokenizer")
    model_type = json.loads((directory / "text_encoder" / "config.json").read_text()).get("model_type")
    encoder_class = T5EncoderModel if model_type == "t5" else CLIPTextModel
    text_encoder = encoder_class.from_pretrained(directory / "text_encoder", dtype=dtype)
    unet = UNet2DConditionModel.from_pretrained(directory / "unet", torch_dtype=dtype)
    scheduler = DDPMScheduler.from_pretrained(directory / "scheduler")
    return ShapesParts(tokenizer, text_encoder.eval(), unet.eval(), scheduler)
