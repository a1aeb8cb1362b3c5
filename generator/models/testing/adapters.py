"""Models stage: loaders for the `testing:` registry ids (random-weight pipelines wrapped as adapters)."""

from __future__ import annotations

import torch

from generator.models.limits import ModelLimits
from generator.models.stable_diffusion import StableDiffusionAdapter
from generator.models.testing.pipelines import build_tiny_sd, build_tiny_sdxl, load_tokenizer


def load_tiny_sd(device: torch.device, dtype: torch.dtype) -> StableDiffusionAdapter:
    """testing:tiny-sd, 64x64, DDIM, 10 steps by default."""
    return StableDiffusionAdapter(build_tiny_sd(device, dtype), "testing:tiny-sd", default_steps=10)


def load_tiny_sdxl(device: torch.device, dtype: torch.dtype) -> StableDiffusionAdapter:
    """testing:tiny-sdxl, 64x64, Euler, 10 steps by default."""
    return StableDiffusionAdapter(build_tiny_sdxl(device, dtype), "testing:tiny-sdxl", default_steps=10)


def tiny_limits() -> ModelLimits:
    """Both testing models: SD's 8x VAE and a 77-token CLIP-format tokenizer."""
    return ModelLimits(size_multiple=8, max_tokens=77, tokenizer=load_tokenizer)
