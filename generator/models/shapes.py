"""Models stage: the built-in 'shapes' model (pixel-space text-to-image with cross-attention) as a ModelAdapter.

Its parts are saved in the libraries' own format under ``generator/weights/shapes/`` (``unet/``,
``text_encoder/``, ``tokenizer/``, ``scheduler/``, ``training.json``) and load with ``from_pretrained``, the same
path a user's own pixel-space model would take. Pixels are the model's latents: [-1, 1], 3 channels, so
flips and filters (visual anagrams, hybrid images) act on what the UNet sees.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import torch

from generator.builtin.defaults import read_defaults
from generator.builtin.shapes.model import encode_text, unet_input
from generator.builtin.shipped import shipped_weights
from generator.errors import UserError
from generator.models.base import Capabilities, Embeddings, PromptEmbeddings, TokenPiece
from generator.models.common import SamplingAdapter, weight_hash
from generator.models.limits import ModelLimits
from generator.models.schedulers import make_scheduler
from generator.models.tokens import token_pieces

MODEL_ID = "embedded:shapes"
# for a folder without a measured defaults.json (a fresh training export): what every earlier eval report used
FALLBACK_DEFAULTS = {"scheduler": "ddpm", "steps": 50, "guidance": 3.0}


def shipped_weights_dir() -> Path:
    """Where the package keeps the shipped shapes model."""
    return shipped_weights("shapes")


def _require(folder: Path) -> Path:
    if not (folder / "unet" / "config.json").exists():
        raise UserError(
            f"the shapes model is missing from {folder}; train and export it with "
            f"`diffatlas train shapes --ship-to {folder}` (or reinstall the package)"
        )
    return folder


class ShapesAdapter(SamplingAdapter):
    """The shapes UNet + text encoder (CLIP or T5) + word-level tokenizer, seen through the ModelAdapter protocol."""

    def __init__(self, folder: Path, *, model_id: str = MODEL_ID, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        from generator.builtin.shapes.model import load_parts

        parts = load_parts(_require(folder), dtype=dtype)
        self.id = model_id
        self.folder = folder
        self.device = torch.device(device)
        self.dtype = dtype
        self.tokenizer = parts.tokenizer
        self.text_encoder = parts.text_encoder.to(self.device)
        self.denoiser = parts.unet.to(self.device)
        self.scheduler_config = dict(parts.scheduler.config)
        self.prediction_type = self.scheduler_config.get("prediction_type", "epsilon")
        self.max_tokens = int(self.tokenizer.model_max_length)
        channels = self.denoiser.config.block_out_channels
        self.judge = "shapes"  # generator/evaluate/verdicts.py: every image this model publishes is judged
        self.capabilities = Capabilities(
            conditioning="text",
            pixel_space=True,
            cross_attention=True,
            size_multiple=2 ** (len(channels) - 1),
            max_tokens=self.max_tokens,
        )
        self.default_width = self.default_height = int(self.denoiser.config.sample_size)
        # the sampler settings measured best for these weights (`diffatlas eval shapes --sweep` writes them)
        measured = read_defaults(folder) or FALLBACK_DEFAULTS
        self.default_scheduler = str(measured["scheduler"])
        self.default_steps = int(measured["steps"])
        self.default_guidance = float(measured["guidance"])
        self.weight_hash = weight_hash([self.denoiser, self.text_encoder])

    def make_scheduler(self, name: str | None = None) -> object:
        """A fresh scheduler of that name with the training schedule (cosine betas, the trained prediction type)."""
        return make_scheduler(name or self.default_scheduler, self.scheduler_config)

    def latent_shape(self, width: int, height: int) -> tuple[int, int, int]:
        """(3, H, W): pixel space (trained at 32x32; other multiples of 4 run but were never trained)."""
        self.check_size(width, height)
        return (3, height, width)

    def tokenize(self, prompt: str) -> list[TokenPiece]:
        """Word-level pieces: start, one piece per word or comma, end, padding to the full length."""
        return token_pieces(self.tokenizer, prompt, self.max_tokens)

    @torch.no_grad()
    def _embed(self, prompts: Sequence[str]) -> Embeddings:
        ids = self.tokenizer(
            list(prompts), padding="max_length", truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).input_ids.to(self.device)
        hidden, mask = encode_text(self.text_encoder, ids)  # (batch, tokens, dim); the padding mask of a T5 encoder
        added = {} if mask is None else {"encoder_attention_mask": mask.to(self.dtype)}
        return Embeddings(hidden.to(self.dtype), added)

    def encode_prompts(self, prompts: Sequence[str], negative: str = "") -> PromptEmbeddings:
        """Text embeddings; the unconditional branch is the empty caption the model saw under caption dropout."""
        prompts = list(prompts)
        return PromptEmbeddings(self._embed(prompts), self._embed([negative] * len(prompts)), tuple(prompts))

    def denoise(self, model_input: torch.Tensor, timestep: torch.Tensor, embeddings: Embeddings) -> torch.Tensor:
        """One UNet call: predicted noise (padding masked out of cross-attention when the text encoder masks it)."""
        return self.denoiser(
            unet_input(self.denoiser, model_input.to(self.dtype)), timestep, encoder_hidden_states=embeddings.hidden,
            encoder_attention_mask=embeddings.added.get("encoder_attention_mask"), return_dict=False,
        )[0]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """[-1, 1] pixels -> [0, 1] float32 on the CPU."""
        return (latents.float() / 2 + 0.5).clamp(0, 1).cpu()

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] images -> [-1, 1] pixels (the identity up to range)."""
        return (images * 2 - 1).to(self.device, self.dtype)


def load(device: torch.device, dtype: torch.dtype) -> ShapesAdapter:
    """Registry loader for 'embedded:shapes' (fp32 on the CPU: the model is small and fp16 CPU kernels are slow)."""
    if device.type == "cpu":
        dtype = torch.float32
    return ShapesAdapter(shipped_weights_dir(), device=device, dtype=dtype)


def limits() -> ModelLimits:
    """Sizes and token limit from the shipped configs, without loading weights."""
    folder = _require(shipped_weights_dir())
    unet_config = json.loads((folder / "unet" / "config.json").read_text())
    tokenizer_config = json.loads((folder / "tokenizer" / "tokenizer_config.json").read_text())
    # eval.json (`diffatlas eval shapes` writes it here) measures the weights; it does not change what they draw
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".safetensors", ".json")
                   and p.relative_to(folder).as_posix() != "eval.json")
    fingerprint = hashlib.sha256()  # content, not sizes: every export of the same architecture has the same sizes
    for path in files:
        fingerprint.update(str(path.relative_to(folder)).encode())
        fingerprint.update(path.read_bytes())

    def tokenizer() -> object:
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer")

    return ModelLimits(
        size_multiple=2 ** (len(unet_config["block_out_channels"]) - 1),
        max_tokens=int(tokenizer_config.get("model_max_length", 20)),
        tokenizer=tokenizer,
        fingerprint=fingerprint.hexdigest()[:16],
    )
