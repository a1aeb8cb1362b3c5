"""Models stage: what every adapter shares (device/dtype resolution, weight hashing, generate())."""

from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

import torch
from PIL import Image

from generator.errors import UserError
from generator.models.base import to_pil

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DTYPE_NAMES = {**DTYPES, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """'auto' is fp16 on GPUs and fp32 on the CPU; a dtype the device cannot compute in is one clear error."""
    if dtype == "auto":
        return torch.float16 if device.type in ("cuda", "mps") else torch.float32
    if dtype not in DTYPE_NAMES:
        raise UserError(f"unknown dtype {dtype!r}; use auto, fp32 (float32), fp16 (float16) or bf16 (bfloat16)")
    check_dtype_on_device(DTYPE_NAMES[dtype], device, dtype)
    return DTYPE_NAMES[dtype]


def check_dtype_on_device(dtype: torch.dtype, device: torch.device, name: str) -> None:
    """Refuse a dtype the device cannot run: bf16 on a GPU without it (before Ampere), or one whose convolution or
    matrix product fails there (a tiny probe: older CPUs' torch builds, MPS before macOS 14)."""
    if dtype == torch.float32:
        return
    why = ""
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        why = f"{torch.cuda.get_device_name(device)} has no bfloat16"
    else:
        try:
            probe = torch.ones(1, 1, 4, 4, dtype=dtype, device=device)
            torch.nn.functional.conv2d(probe, probe[:, :, :3, :3])
            probe[0, 0] @ probe[0, 0]
        except (RuntimeError, TypeError, NotImplementedError) as error:
            why = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
    if why:
        raise UserError(f"--dtype {name}: this {device.type} device cannot compute in {str(dtype).split('.')[-1]} "
                        f"({why}); use --dtype fp32" + (" or fp16" if dtype == torch.bfloat16 else ""))


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
