"""DAAM test helpers: an independent reference that materialises softmax(QK^T / sqrt(d)) by hand."""

from __future__ import annotations

import math
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F


class HandReference:
    """Per-token DAAM maps (Eq. 6) computed the slow, obvious way: every layer and step upsampled on its own.

    Forward pre-hooks on each cross-attention module read the layer's inputs, compute the probabilities of
    the conditional rows with plain matmul + softmax, upsample each layer's per-token map to the image size
    (bicubic) and add it up. Nothing of generator.daam is used.
    """

    def __init__(self, unet: torch.nn.Module, image_size: tuple[int, int], latent_size: tuple[int, int], guided: bool):
        self.unet, self.image_size, self.latent_size, self.guided = unet, image_size, latent_size, guided
        self.total: torch.Tensor | None = None  # (images, tokens, H, W)

    def _grid(self, length: int) -> tuple[int, int]:
        h, w = self.latent_size
        while h * w > length:
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        assert h * w == length
        return h, w

    def _hook(self, module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        context = kwargs["encoder_hidden_states"]
        if self.guided:
            hidden, context = hidden.chunk(2)[1], context.chunk(2)[1]  # [uncond, cond]
        if hidden.ndim == 4:  # DeepFloyd IF's blocks see (images, channels, h, w)
            hidden = hidden.flatten(2).transpose(1, 2)
        if module.group_norm is not None:
            hidden = module.group_norm(hidden.transpose(1, 2)).transpose(1, 2)
        if module.norm_cross:  # IF normalises the text states (cross_attention_norm="group_norm")
            context = module.norm_encoder_hidden_states(context)
        query = module.to_q(hidden)
        if module.added_kv_proj_dim is not None:  # text keys first, then the image's own keys
            key = torch.cat([module.add_k_proj(context), module.to_k(hidden)], dim=1)
        else:
            key = module.to_k(context)
        images, length, inner = query.shape
        heads = module.heads
        d = inner // heads
        query = query.reshape(images, length, heads, d).permute(0, 2, 1, 3)
        key = key.reshape(images, -1, heads, d).permute(0, 2, 1, 3)
        probabilities = torch.softmax(query @ key.transpose(-1, -2) / math.sqrt(d), dim=-1)  # (i, heads, hw, tokens)
        per_token = probabilities[..., : context.shape[1]].sum(1).permute(0, 2, 1)  # (images, tokens, h*w)
        h, w = self._grid(length)
        up = F.interpolate(per_token.reshape(images, -1, h, w).float(), size=self.image_size, mode="bicubic", align_corners=False)
        self.total = up if self.total is None else self.total + up

    @contextmanager
    def hooked(self):
        handles = [
            m.register_forward_pre_hook(self._hook, with_kwargs=True)
            for m in self.unet.modules()
            if getattr(m, "is_cross_attention", False)
        ]
        try:
            with torch.no_grad():
                yield self
        finally:
            for handle in handles:
                handle.remove()

    def word_map(self, positions: list[int], image_index: int = 0) -> torch.Tensor:
        """Mean of the pieces' maps (raw sums, as ``word_map(normalized=False)``)."""
        return self.total[image_index, positions].mean(0)


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two maps."""
    return float(torch.corrcoef(torch.stack([a.flatten().double(), b.flatten().double()]))[0, 1])


def noise(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Fixed start latents, so batched and single-image runs start from the same noise."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def hand_reference():
    return HandReference


@pytest.fixture
def corr():
    return correlation


@pytest.fixture
def make_noise():
    return noise
