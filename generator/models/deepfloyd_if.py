"""Models stage: DeepFloyd IF stage I (pixel-space text-to-image with a T5 text encoder) as a ModelAdapter.

Stage I denoises 64x64 RGB pixels in [-1, 1] directly, so flips and filters act on what the UNet sees: visual
anagrams and hybrid images work as in the course project. Its UNet predicts noise plus a learned variance
(6 channels); our loop keeps the noise half and samples with DDIM by default (``ddpm`` uses the fixed
variance of its schedule instead of the learned one, since the loop passes only epsilon to the scheduler).
Stages II/III (super-resolution) are not part of the experiments: everything happens at stage I's size.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from generator.models.base import Capabilities, Embeddings, PromptEmbeddings, TokenPiece
from generator.models.common import SamplingAdapter, weight_hash
from generator.models.limits import PICKLE_SUFFIXES, ModelLimits
from generator.models.schedulers import make_scheduler
from generator.models.tokens import token_pieces

MAX_TOKENS = 77  # IFPipeline.encode_prompt pads and truncates T5 input to 77 tokens


def is_if_folder(folder: Path) -> bool:
    """Whether a diffusers folder holds a DeepFloyd IF (stage I) pipeline."""
    index = folder / "model_index.json"
    return index.is_file() and json.loads(index.read_text()).get("_class_name") == "IFPipeline"


class DeepFloydIFAdapter(SamplingAdapter):
    """An ``IFPipeline`` (stage I) seen through the ModelAdapter protocol."""

    def __init__(self, pipeline: object, model_id: str, *, default_steps: int = 50, default_guidance: float = 7.0):
        self.pipeline = pipeline
        self.id = model_id
        self.denoiser = pipeline.unet
        self.device = pipeline.unet.device
        self.dtype = pipeline.unet.dtype
        self.tokenizer = pipeline.tokenizer
        config = pipeline.scheduler.config
        self.prediction_type = config.get("prediction_type", "epsilon")
        # the loop hands the scheduler epsilon only; a learned variance would need the other 3 channels
        self.scheduler_config = {**dict(config), "variance_type": "fixed_small"}
        self.capabilities = Capabilities(
            conditioning="text",
            pixel_space=True,
            # IF's UNet attends with AttnAddedKVProcessor (text keys added to the image's own keys);
            # DAAM's recorder reads the text-key columns of those probabilities
            cross_attention=True,
            size_multiple=2 ** (len(pipeline.unet.config.block_out_channels) - 1),
            max_tokens=MAX_TOKENS,
        )
        self.default_width = self.default_height = int(pipeline.unet.config.sample_size)
        self.default_steps = default_steps
        self.default_guidance = default_guidance
        self.default_scheduler = "ddim"
        self.weight_hash = weight_hash([pipeline.unet, pipeline.text_encoder])

    def make_scheduler(self, name: str | None = None) -> object:
        """A fresh scheduler of that name on IF's training schedule (squared-cosine betas)."""
        return make_scheduler(name or self.default_scheduler, self.scheduler_config)

    def latent_shape(self, width: int, height: int) -> tuple[int, int, int]:
        """(3, H, W): stage I works on pixels."""
        self.check_size(width, height)
        return (self.pipeline.unet.config.in_channels, height, width)

    def tokenize(self, prompt: str) -> list[TokenPiece]:
        """T5 sentencepiece pieces (no start token; '</s>' ends the prompt), padding to 77 included."""
        return token_pieces(self.tokenizer, prompt, MAX_TOKENS)

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str], negative: str = "") -> PromptEmbeddings:
        """T5 embeddings through the pipeline's own ``encode_prompt`` (captions not cleaned: no bs4/ftfy)."""
        prompts = list(prompts)
        cond, uncond = self.pipeline.encode_prompt(
            prompts, do_classifier_free_guidance=True, num_images_per_prompt=1, device=self.device,
            negative_prompt=[negative] * len(prompts), clean_caption=False,
        )
        return PromptEmbeddings(Embeddings(cond.to(self.dtype)), Embeddings(uncond.to(self.dtype)), tuple(prompts))

    def denoise(self, model_input: torch.Tensor, timestep: torch.Tensor, embeddings: Embeddings) -> torch.Tensor:
        """One UNet call; the noise half of its (noise, learned variance) output."""
        output = self.denoiser(
            model_input.to(self.dtype), timestep, encoder_hidden_states=embeddings.hidden, return_dict=False
        )[0]
        return output[:, : model_input.shape[1]]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """[-1, 1] pixels -> [0, 1] float32 on the CPU."""
        return (latents.float() / 2 + 0.5).clamp(0, 1).cpu()

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] images -> [-1, 1] pixels."""
        return (images * 2 - 1).to(self.device, self.dtype)


def load_pipeline(folder: str, device: torch.device, dtype: torch.dtype, use_safetensors: bool | None = True) -> object:
    """An IFPipeline from a local folder or the local HF cache, without safety checker or watermarker.

    ``use_safetensors``: True reads safetensors only; None also pickles (the registry checked they are allowed).
    """
    from diffusers import IFPipeline

    pipeline = IFPipeline.from_pretrained(
        folder, torch_dtype=dtype, local_files_only=True, safety_checker=None, watermarker=None,
        feature_extractor=None, requires_safety_checker=False, use_safetensors=use_safetensors,
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device)


def folder_limits(folder: Path) -> ModelLimits:
    """Limits of an IF folder from its configs (size multiple of the UNet, 77 T5 tokens)."""
    import hashlib

    from transformers import AutoTokenizer

    unet_config = json.loads((folder / "unet" / "config.json").read_text())
    weights = sorted(p for p in folder.rglob("*") if p.suffix in (".safetensors", ".json", *PICKLE_SUFFIXES))
    fingerprint = ";".join(f"{p.relative_to(folder)}:{p.stat().st_size}" for p in weights)
    return ModelLimits(
        size_multiple=2 ** (len(unet_config["block_out_channels"]) - 1),
        max_tokens=MAX_TOKENS,
        tokenizer=lambda: AutoTokenizer.from_pretrained(str(folder), subfolder="tokenizer"),
        fingerprint=hashlib.sha256(fingerprint.encode()).hexdigest()[:16],
    )
