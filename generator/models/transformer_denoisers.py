"""Models stage: SD3's and Flux's transformers behind one UNet-like call, ``denoiser(sample, timestep, ...)``.

Every hook in this project (DAAM's pre-hook reads the call's sample and timestep; attention recorders are
installed by processor name) expects the denoiser to take the latent grid (batch, c, h, w) and a timestep on
the 0..1000 training scale, as a UNet does. SD3's transformer already does; Flux's takes 2x2-packed tokens,
position ids and timestep / 1000. These wrappers hold the diffusers model unchanged (its weights, its
processors) and do exactly what the pipelines do around it. Processor names are the model's own, prefixed
with ``transformer.``, so ``get_submodule(name)`` finds each attention layer on the wrapper.
"""

from __future__ import annotations

import torch

PREFIX = "transformer."


class TransformerDenoiser(torch.nn.Module):
    """Base: holds the diffusers transformer and forwards the attention-processor API to it."""

    def __init__(self, transformer: torch.nn.Module):
        super().__init__()
        self.transformer = transformer

    @property
    def config(self) -> object:
        """The transformer's config."""
        return self.transformer.config

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.dtype

    @property
    def device(self) -> torch.device:
        return self.transformer.device

    @property
    def attn_processors(self) -> dict[str, object]:
        """Processor name (a path on this module) -> processor, as diffusers' ``attn_processors``."""
        return {PREFIX + name: processor for name, processor in self.transformer.attn_processors.items()}

    def set_attn_processor(self, processor: object | dict[str, object]) -> None:
        """Install processors by name (or one for all), through the transformer's public ``set_attn_processor``."""
        if isinstance(processor, dict):
            processor = {name.removeprefix(PREFIX): value for name, value in processor.items()}
        self.transformer.set_attn_processor(processor)


class SD3Denoiser(TransformerDenoiser):
    """``SD3Transformer2DModel`` as ``StableDiffusion3Pipeline.__call__`` calls it."""

    @property
    def patch_size(self) -> int:
        """Latent pixels per image token along each side."""
        return int(self.transformer.config.patch_size)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor,
                pooled_projections: torch.Tensor) -> torch.Tensor:
        """Velocity (batch, 16, h, w) for the flow state ``sample`` at ``timestep`` = 1000 sigma."""
        timestep = torch.as_tensor(timestep, device=sample.device).expand(sample.shape[0])
        return self.transformer(hidden_states=sample, timestep=timestep, encoder_hidden_states=encoder_hidden_states,
                                pooled_projections=pooled_projections, return_dict=False)[0]


def pack(latents: torch.Tensor) -> torch.Tensor:
    """(batch, c, h, w) -> (batch, h/2 * w/2, 4c): Flux's 2x2 patches (``FluxPipeline._pack_latents``)."""
    batch, channels, height, width = latents.shape
    patches = latents.view(batch, channels, height // 2, 2, width // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return patches.reshape(batch, (height // 2) * (width // 2), channels * 4)


def unpack(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of ``pack`` for a (height, width) latent grid."""
    batch, _, features = tokens.shape
    patches = tokens.view(batch, height // 2, width // 2, features // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return patches.reshape(batch, features // 4, height, width)


def image_ids(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(h/2 * w/2, 3) rotary position ids of the image tokens: (0, row, column)."""
    ids = torch.zeros(height // 2, width // 2, 3)
    ids[..., 1] += torch.arange(height // 2)[:, None]
    ids[..., 2] += torch.arange(width // 2)[None, :]
    return ids.reshape(-1, 3).to(device=device, dtype=dtype)


class FluxDenoiser(TransformerDenoiser):
    """``FluxTransformer2DModel`` as ``FluxPipeline.__call__`` calls it, on the unpacked latent grid."""

    patch_size = 2  # latent pixels per image token along each side (the 2x2 packing)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor,
                pooled_projections: torch.Tensor, guidance: torch.Tensor | None = None) -> torch.Tensor:
        """Velocity (batch, 16, h, w); ``guidance`` (batch,) is the distilled guidance scale (None: not embedded)."""
        batch, _, height, width = sample.shape
        timestep = torch.as_tensor(timestep, device=sample.device).expand(batch).to(sample.dtype)
        if not self.transformer.config.guidance_embeds:
            guidance = None
        text_ids = torch.zeros(encoder_hidden_states.shape[1], 3, device=sample.device, dtype=sample.dtype)
        tokens = self.transformer(
            hidden_states=pack(sample), timestep=timestep / 1000, guidance=guidance,
            pooled_projections=pooled_projections, encoder_hidden_states=encoder_hidden_states, txt_ids=text_ids,
            img_ids=image_ids(height, width, sample.device, sample.dtype), return_dict=False,
        )[0]
        return unpack(tokens, height, width)
