"""Models stage: what every adapter shares (device/dtype resolution, weight hashing, generate())."""

from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

import torch
from PIL import Image

from generator.errors import UserError
from generator.models.base import to_pil

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """'auto' is fp16 on GPUs and fp32 on the CPU."""
    if dtype == "auto":
        return torch.float16 if device.type in ("cuda", "mps") else torch.float32
    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r}; use auto, fp32, fp16 or bf16")
    return DTYPES[dtype]


def weight_hash(modules: Iterable[torch.nn.Module]) -> str:
    """sha256 over every parameter and buffer, in state-dict order (short hex, recorded in manifests)."""
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in module.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class SamplingAdapter:
    """Mixin giving an adapter ``generate()`` through our own sampling loop."""

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
        from generator.diffusion.sampling import initial_noise, sample

        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        width, height = width or self.default_width, height or self.default_height
        schedule = self.make_scheduler(scheduler or self.default_scheduler)
        schedule.set_timesteps(steps or self.default_steps, device=self.device)
        generator = torch.Generator(self.device).manual_seed(seed)
        noise = initial_noise(self, len(prompts), width, height, generator)
        with torch.inference_mode():
            latents = sample(
                self,
                self.encode_prompts(prompts),
                schedule,
                noise * schedule.init_noise_sigma,
                guidance=self.default_guidance if guidance is None else guidance,
                generator=generator,
            )
            images = to_pil(self.decode(latents))
        return images[0] if isinstance(prompt, str) else images

    def check_size(self, width: int, height: int) -> None:
        """Refuse sizes the model cannot produce, with one clear sentence."""
        multiple = self.capabilities.size_multiple
        if width % multiple or height % multiple or width <= 0 or height <= 0:
            raise UserError(f"{self.id} needs width and height that are positive multiples of {multiple}, got {width}x{height}")
