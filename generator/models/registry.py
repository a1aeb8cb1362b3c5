"""Models stage: model ids, what each supports, and ``load_model`` (built-in ids, local paths, HF cache)."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from generator.builtin.defaults import read_defaults
from generator.builtin.shipped import WEIGHTS_DIR
from generator.devices import resolve_device
from generator.errors import UserError
from generator.models.base import ModelAdapter
from generator.models.common import resolve_dtype
from generator.models.limits import (
    HOW_TO_PROVIDE,
    ModelLimits,
    diffusers_folder_limits,
    inspect_weights,
    local_folder,
    safetensors_problem,
)
from generator.models.memory import MemoryOptions, apply_memory_options, check_memory_options


@dataclass(frozen=True)
class ModelEntry:
    """A model id the registry knows by name.

    ``loader`` is 'module:function(device, dtype) -> ModelAdapter'; ``limits`` is 'module:function() ->
    ModelLimits', which must not load weights. An entry without them is a shipped diffusers folder (``weights``),
    loaded exactly as a user's folder of that kind is: the same code path, the same adapter.
    """

    id: str
    summary: str
    supports: str
    loader: str | None = None
    limits: str | None = None
    weights: str | None = None  # the shipped weights' folder under generator/ (None: random weights built locally)
    pixel_space: bool = False  # denoises pixels (flips and filters act on what the UNet sees), not VAE latents
    judge: str | None = None  # the judge of a shipped diffusers folder's images (generator/evaluate/verdicts.py)

    @property
    def folder(self) -> Path | None:
        """The shipped diffusers folder this id names (None: the id has its own loader)."""
        return WEIGHTS_DIR.parent / self.weights if self.loader is None and self.weights else None


MODELS: dict[str, ModelEntry] = {
    entry.id: entry
    for entry in [
        ModelEntry(
            "embedded:shapes",
            "built-in text-to-image model of coloured shapes, 32x32 pixel space, trained by this project",
            "text, cross-attention (DAAM), pixel space (anagrams, hybrids)",
            "generator.models.shapes:load",
            "generator.models.shapes:limits",
            "weights/shapes",
            pixel_space=True,
        ),
        ModelEntry(
            "embedded:digits",
            "built-in class-conditional MNIST model (prompts are digits '0'..'9'), 28x28, trained by this project",
            "class labels, pixel space",
            "generator.models.digits:load",
            "generator.models.digits:limits",
            "weights/digits",
            pixel_space=True,
        ),
        ModelEntry(
            "embedded:digits-flow",
            "built-in class-conditional MNIST model trained by flow matching (the same UNet as embedded:digits, "
            "predicting velocities; Euler steps), 28x28, trained by this project",
            "class labels, pixel space, flow matching",
            "generator.models.digits:load_flow",
            "generator.models.digits:flow_limits",
            "weights/digits",
            pixel_space=True,
        ),
        ModelEntry(
            "embedded:shapes-latent",
            "built-in latent text-to-image model of coloured shapes (Stable Diffusion anatomy: VAE 128x128 -> "
            "16x16x4 latents, UNet, frozen T5), a standard StableDiffusionPipeline folder trained by this project",
            "text, cross-attention (DAAM), latent space",
            weights="weights/shapes-latent",
            judge="shapes",
        ),
        ModelEntry(
            "testing:tiny-sd",
            "random-weight Stable Diffusion 1.x architecture, built locally (for tests)",
            "text, cross-attention (DAAM), latent space",
            "generator.models.testing.adapters:load_tiny_sd",
            "generator.models.testing.adapters:tiny_limits",
        ),
        ModelEntry(
            "testing:tiny-if",
            "random-weight DeepFloyd IF stage-I architecture (T5 text encoder), 32x32 pixels, built locally (for tests)",
            "text, pixel space (anagrams, hybrids)",
            "generator.models.testing.deepfloyd_if:load_tiny_if",
            "generator.models.testing.deepfloyd_if:tiny_limits",
            pixel_space=True,
        ),
        ModelEntry(
            "testing:tiny-sdxl",
            "random-weight Stable Diffusion XL architecture, built locally (for tests)",
            "text, cross-attention (DAAM), latent space",
            "generator.models.testing.adapters:load_tiny_sdxl",
            "generator.models.testing.adapters:tiny_limits",
        ),
        ModelEntry(
            "testing:tiny-sd3",
            "random-weight Stable Diffusion 3 architecture (MMDiT, CLIP x2 + T5, flow matching), built locally (for tests)",
            "text, joint attention (word maps), latent space, flow matching",
            "generator.models.testing.transformers:load_tiny_sd3",
            "generator.models.testing.transformers:sd3_limits",
        ),
        ModelEntry(
            "testing:tiny-flux",
            "random-weight Flux architecture (double/single-stream blocks, T5, distilled guidance), built locally (for tests)",
            "text, joint attention (word maps), latent space, flow matching",
            "generator.models.testing.transformers:load_tiny_flux",
            "generator.models.testing.transformers:flux_limits",
        ),
    ]
}

def _resolve(reference: str) -> object:
    """The function named by 'module:function'."""
    module_name, function_name = reference.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def model_limits(id_or_path: str) -> ModelLimits:
    """What the model accepts, read from configs and tokenizer only (for validating prompt files first)."""
    if id_or_path in MODELS and MODELS[id_or_path].folder is None:
        entry = MODELS[id_or_path]
        return replace(_resolve(entry.limits)(), pixel_space=entry.pixel_space)
    if id_or_path in MODELS:
        return replace(diffusers_folder_limits(MODELS[id_or_path].folder), pixel_space=False)
    _check_known(id_or_path)
    from generator.models.deepfloyd_if import folder_limits, is_if_folder

    from generator.models.flow import flow_folder_limits, is_flow_folder

    folder = local_folder(id_or_path)
    if is_if_folder(folder):
        return replace(folder_limits(folder), pixel_space=True)
    if is_flow_folder(folder):
        return replace(flow_folder_limits(folder), pixel_space=False)
    return replace(diffusers_folder_limits(folder), pixel_space=False)


def _check_known(id_or_path: str) -> None:
    if ":" in id_or_path and not Path(id_or_path).exists():
        known = ", ".join(MODELS)
        raise UserError(f"unknown model id {id_or_path!r}; known ids: {known}, or a diffusers folder / hub id")


def check_weights(id_or_path: str, allow_pickle: bool = False) -> str:
    """The weights format loading this model reads, checked without loading it (pickles refused unless allowed).

    Built-in models: their shipped safetensors files must be whole. Folders: see ``inspect_weights``.
    """
    if id_or_path in MODELS:
        entry = MODELS[id_or_path]
        if entry.weights is None:
            return "random (built locally)"
        folder = WEIGHTS_DIR.parent / entry.weights
        for file in sorted(folder.rglob("*.safetensors")):
            problem = safetensors_problem(file)
            if problem:
                raise UserError(f"{file} {problem}; reinstall the package (or re-export the model)")
        return "safetensors"
    _check_known(id_or_path)
    return inspect_weights(local_folder(id_or_path), allow_pickle)


def load_model(id_or_path: str, device: str = "auto", dtype: str = "auto", *, allow_pickle: bool = False,
               memory: MemoryOptions = MemoryOptions()) -> ModelAdapter:
    """The adapter for a registry id, a local diffusers folder, or a hub id already in the local cache.

    Folders load safetensors; pickled weights (.bin, .ckpt, .pt, .pth) only with ``allow_pickle``. The format
    read is the adapter's ``weights_format``. ``memory`` turns on diffusers' CPU offload, VAE slicing or tiling
    (generator/models/memory.py).
    """
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    check_memory_options(memory, torch_device)
    weights_format = check_weights(id_or_path, allow_pickle)
    entry = MODELS.get(id_or_path)
    if entry is not None and entry.folder is not None:
        adapter = _load_diffusers(str(entry.folder), torch_device, torch_dtype, id_or_path, False)
        adapter.judge = entry.judge
    elif entry is not None:
        adapter = _resolve(entry.loader)(torch_device, torch_dtype)
    else:
        folder = str(local_folder(id_or_path))
        adapter = _load_diffusers(folder, torch_device, torch_dtype, id_or_path, weights_format != "safetensors")
    adapter.weights_format = weights_format
    return apply_memory_options(adapter, memory)


def _load_diffusers(folder: str, device: torch.device, dtype: torch.dtype, model_id: str,
                    allow_pickle: bool) -> ModelAdapter:
    """A Stable Diffusion 1.x/2.x/XL/3.x, Flux or DeepFloyd IF stage-I pipeline from a folder or the local HF cache."""
    from diffusers import DiffusionPipeline

    from generator.models.deepfloyd_if import DeepFloydIFAdapter, is_if_folder, load_pipeline
    from generator.models.flow import flow_adapter, is_flow_folder, load_flow_pipeline
    from generator.models.stable_diffusion import StableDiffusionAdapter

    # True: safetensors only; None: safetensors where a part has them, its pickle where it has only that
    use_safetensors = None if allow_pickle else True
    diffusers_logger = logging.getLogger("diffusers")
    level = diffusers_logger.level
    if allow_pickle:  # diffusers logs each (expected) missing safetensors file as an error before it takes the pickle
        diffusers_logger.setLevel(logging.CRITICAL)
    try:
        if is_if_folder(Path(folder)):
            return DeepFloydIFAdapter(load_pipeline(folder, device, dtype, use_safetensors), model_id)
        if is_flow_folder(Path(folder)):
            return flow_adapter(load_flow_pipeline(folder, device, dtype, use_safetensors), model_id)
        pipeline = DiffusionPipeline.from_pretrained(folder, torch_dtype=dtype, local_files_only=True, safety_checker=None,
                                                     use_safetensors=use_safetensors)
    except (OSError, ValueError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "Unable to load weights" in first_line:  # the file is there but damaged (checked headers cannot see all)
            raise UserError(f"cannot load model {model_id!r}: {first_line[:240]} (the file is damaged; copy or "
                            "download the model again)") from None
        raise UserError(f"cannot load model {model_id!r} ({first_line[:160]}); {HOW_TO_PROVIDE}") from None
    finally:
        diffusers_logger.setLevel(level)
    if not hasattr(pipeline, "unet") or not hasattr(pipeline, "vae"):
        raise UserError(f"{model_id!r} is a {type(pipeline).__name__}; only Stable Diffusion 1.x/2.x/XL/3.x, Flux "
                        "and DeepFloyd IF stage I are supported")
    pipeline.set_progress_bar_config(disable=True)
    return StableDiffusionAdapter(pipeline.to(device), model_id, **recorded_defaults(Path(folder)))


def recorded_defaults(folder: Path) -> dict:
    """The sampler settings a folder recommends in its ``defaults.json`` (written by our sweeps; a user's folder
    may carry one too), as adapter keyword arguments; none when it has no such file."""
    recorded = read_defaults(folder) if folder.is_dir() else None
    if not recorded:
        return {}
    return {"default_scheduler": str(recorded["scheduler"]), "default_steps": int(recorded["steps"]),
            "default_guidance": float(recorded["guidance"])}
