"""Models stage: the memory options users of diffusers expect, applied through diffusers' own mechanisms.

- ``cpu_offload``: ``DiffusionPipeline.enable_model_cpu_offload`` (accelerate hooks): every part (text encoders,
  denoiser, VAE) waits in CPU memory and moves to the GPU when its ``forward`` (or the VAE's ``encode``/``decode``)
  runs, the previous part going back; the GPU holds one part at a time. Our adapters call the parts themselves
  (our own sampling loop), which is exactly what the hooks watch. It needs an accelerator: on the CPU there is
  nothing to offload to, and asking for it there is one clear error (decided for issue 20: a flag that silently
  does nothing would let a user believe their GPU bake is protected when it runs on the CPU).
- ``vae_slicing``: ``AutoencoderKL.enable_slicing``: a batch of latents decodes one image at a time.
- ``vae_tiling``: ``AutoencoderKL.enable_tiling``: a large image decodes in overlapping tiles, blended (for large
  previews and finals: SDXL at 1024^2 and more).

The dtype (``--dtype``) is chosen when the weights load (``generator.models.common.resolve_dtype``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from generator.errors import UserError

if TYPE_CHECKING:
    import torch

OFFLOAD_NEEDS_GPU = ("--cpu-offload keeps the weights in CPU memory and moves each part to the GPU when it runs; "
                     "this bake runs on the CPU, so there is nothing to offload (drop --cpu-offload, or use "
                     "--device cuda)")


@dataclass(frozen=True)
class MemoryOptions:
    """Which of diffusers' memory mechanisms a loaded model uses (all off: the model as it loads)."""

    cpu_offload: bool = False
    vae_slicing: bool = False
    vae_tiling: bool = False

    def names(self) -> list[str]:
        """The options that are on, as their command-line flags ('--vae-tiling', ...)."""
        return ["--" + f.name.replace("_", "-") for f in fields(self) if getattr(self, f.name)]

    def __bool__(self) -> bool:
        return bool(self.names())


def check_memory_options(options: MemoryOptions, device: torch.device) -> None:
    """Refuse what cannot work on this device before anything loads (one line)."""
    if options.cpu_offload and device.type == "cpu":
        raise UserError(OFFLOAD_NEEDS_GPU)


def apply_memory_options(adapter: object, options: MemoryOptions) -> object:
    """Turn the options on in the adapter's diffusers pipeline; returns the adapter.

    A model without a diffusers pipeline (the built-in shapes and digits models, a few MB) or, for the VAE options,
    without a VAE (DeepFloyd IF works in pixels) is refused with one line naming the option.
    """
    if not options:
        return adapter
    model_id = getattr(adapter, "id", "this model")
    pipeline = getattr(adapter, "pipeline", None)
    if pipeline is None:
        raise UserError(f"{' and '.join(options.names())}: {model_id} is not a diffusers pipeline (the built-in models "
                        "are a few MB and need no memory options); they apply to Stable Diffusion, SDXL, SD3, Flux and "
                        "DeepFloyd IF")
    vae = getattr(pipeline, "vae", None)
    if (options.vae_slicing or options.vae_tiling) and vae is None:
        asked = [name for name in options.names() if name.startswith("--vae")]
        raise UserError(f"{' and '.join(asked)}: {model_id} has no VAE (it denoises pixels), so there is no VAE "
                        "decode to slice or tile")
    if options.vae_slicing:
        vae.enable_slicing()
    if options.vae_tiling:
        vae.enable_tiling()
    if options.cpu_offload:
        check_memory_options(options, adapter.device)
        # the adapter keeps its execution device: inputs go there, the hooks bring each part to it
        pipeline.enable_model_cpu_offload(device=adapter.device)
    return adapter
