"""Models stage: the ModelAdapter protocol every experiment depends on, and the data it passes around.

Experiments never touch diffusers classes directly: Stable Diffusion, the built-in pixel-space models and a
formula denoiser in a test all look the same through this protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping, Protocol, Sequence, runtime_checkable

import torch
from PIL import Image

Conditioning = Literal["text", "class"]
# how a model is guided: classifier-free (two branches combined), distilled (the scale is a denoiser input, one
# branch: Flux-dev), none (one branch, the scale unused: Flux-schnell)
Guidance = Literal["classifier-free", "distilled", "none"]


@dataclass(frozen=True)
class Capabilities:
    """What a model can do; experiments check these instead of the model's class."""

    conditioning: Conditioning
    pixel_space: bool  # flips and filters commute with decoding only in pixel space (anagrams, hybrids)
    cross_attention: bool  # DAAM needs cross-attention layers over text tokens
    size_multiple: int  # width and height must be multiples of this
    max_tokens: int | None  # text encoder's token limit, start/end tokens included; None without text
    guidance: Guidance = "classifier-free"


@dataclass(frozen=True)
class Embeddings:
    """Conditioning for one branch (conditional or unconditional) of a batch of prompts.

    ``hidden`` is (batch, tokens, dim) text embeddings or (batch, classes) class vectors; ``added`` holds extra
    denoiser inputs of some architectures (SDXL's pooled text embeddings and time ids), batch first.
    """

    hidden: torch.Tensor
    added: Mapping[str, torch.Tensor] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        """Number of prompts in the batch."""
        return self.hidden.shape[0]

    def repeat(self, times: int) -> Embeddings:
        """Each prompt ``times`` times in a row (several images per prompt)."""
        return Embeddings(
            self.hidden.repeat_interleave(times, dim=0),
            {k: v.repeat_interleave(times, dim=0) for k, v in self.added.items()},
        )

    def select(self, index: Sequence[int] | torch.Tensor) -> Embeddings:
        """The prompts at ``index``, in that order."""
        index = torch.as_tensor(index, device=self.hidden.device)
        return Embeddings(self.hidden[index], {k: v[index.to(v.device)] for k, v in self.added.items()})

    def with_added(self, **added: torch.Tensor) -> Embeddings:
        """The same embeddings with further denoiser inputs (batch first), e.g. Flux's distilled guidance."""
        return Embeddings(self.hidden, {**self.added, **added})

    @staticmethod
    def cat(parts: Sequence[Embeddings]) -> Embeddings:
        """Concatenate along the batch."""
        keys = parts[0].added.keys()
        return Embeddings(
            torch.cat([p.hidden for p in parts]),
            {k: torch.cat([p.added[k] for p in parts]) for k in keys},
        )


@dataclass(frozen=True)
class PromptEmbeddings:
    """Conditional and unconditional (empty prompt / null class) embeddings of the same prompts."""

    cond: Embeddings
    uncond: Embeddings
    prompts: tuple[str, ...]

    def repeat(self, times: int) -> PromptEmbeddings:
        """Each prompt ``times`` times in a row."""
        prompts = tuple(p for p in self.prompts for _ in range(times))
        return PromptEmbeddings(self.cond.repeat(times), self.uncond.repeat(times), prompts)


@dataclass(frozen=True)
class TokenPiece:
    """One token of a tokenized prompt, as the model's tokenizer produced it."""

    index: int
    token_id: int
    text: str  # the tokenizer's piece, e.g. "gum</w>"
    special: Literal["start", "end", "pad", ""]
    word_index: int | None  # which word of the prompt this piece belongs to; None for special tokens


@runtime_checkable
class ModelAdapter(Protocol):
    """A denoiser with its text/class encoder, decoder and schedule, seen the same way for every model."""

    id: str
    capabilities: Capabilities
    prediction_type: str  # "epsilon", "v_prediction", "sample" or "flow" (velocity eps - x0, SD3 and Flux)
    default_width: int
    default_height: int
    default_steps: int
    default_guidance: float
    default_scheduler: str
    device: torch.device
    dtype: torch.dtype
    weight_hash: str  # sha256 over the weights, recorded in manifests
    denoiser: torch.nn.Module  # the UNet (or a transformer called like one); DAAM hooks its attention processors

    def make_scheduler(self, name: str | None = None) -> object:
        """A fresh diffusers scheduler of that name (``SCHEDULERS``) configured for this model."""
        ...

    def latent_shape(self, width: int, height: int) -> tuple[int, int, int]:
        """(channels, h, w) of the denoiser's input for an image of that size."""
        ...

    def encode_prompts(self, prompts: Sequence[str], negative: str = "") -> PromptEmbeddings:
        """Conditional and unconditional embeddings for each prompt."""
        ...

    def tokenize(self, prompt: str) -> list[TokenPiece]:
        """The real pieces the text encoder sees (start/end/padding included), for the text view and DAAM."""
        ...

    def denoise(self, model_input: torch.Tensor, timestep: torch.Tensor, embeddings: Embeddings) -> torch.Tensor:
        """Raw model output (in ``prediction_type``) for an already scaled input, batch aligned with embeddings."""
        ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images (batch, 3, H, W) float32 in [0, 1] on the CPU."""
        ...

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Latents for images (batch, 3, H, W) in [0, 1] (identity-like for pixel-space models)."""
        ...

    def generate(
        self,
        prompt: str | Sequence[str],
        *,
        seed: int = 0,
        steps: int | None = None,
        guidance: float | None = None,
        width: int | None = None,
        height: int | None = None,
        scheduler: str | None = None,
    ) -> Image.Image | list[Image.Image]:
        """Sample with the model's recommended settings; a list in gives a list out."""
        ...


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """(batch, 3, H, W) floats in [0, 1] to PIL images (round half to even, like numpy)."""
    array = (images.clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy() * 255).round().astype("uint8")
    return [Image.fromarray(a) for a in array]
