"""Models stage: flow-matching diffusion transformers (Stable Diffusion 3 / 3.5, Flux) as ModelAdapters.

These models predict a velocity v = eps - x0 along the straight path x_t = (1 - sigma) x0 + sigma eps from the
image (sigma 0) to noise (sigma 1) (rectified flow, Liu et al. 2023; SD3: Esser et al. 2024, Eq. 2-3), with
timestep = 1000 sigma. Through the adapter protocol they look like every other model: ``denoise`` takes the
variance-preserving x_t the loop records (the flow state divided by sqrt((1 - sigma)^2 + sigma^2), see
``generator.models.schedulers.scale_model_input``) and returns the velocity (prediction type "flow");
``generator.diffusion.sampling.predicted_x0`` turns it into x0 = x_t - sigma v.

Guidance differs: SD3 uses classifier-free guidance like Stable Diffusion; Flux-dev was distilled to take the
guidance scale as an input (one call per step, no unconditional branch; ``Capabilities.guidance``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import torch

from generator.models.base import Capabilities, Embeddings, PromptEmbeddings, TokenPiece
from generator.models.common import SamplingAdapter, weight_hash
from generator.models.limits import ModelLimits, diffusers_folder_limits
from generator.models.schedulers import flow_sigma, make_scheduler
from generator.models.tokens import token_pieces
from generator.models.transformer_denoisers import FluxDenoiser, SD3Denoiser

FLOW_PIPELINES = ("StableDiffusion3Pipeline", "FluxPipeline")


def pipeline_class(folder: Path) -> str | None:
    """The pipeline class named in a diffusers folder's model_index.json (None without one)."""
    index = folder / "model_index.json"
    return json.loads(index.read_text()).get("_class_name") if index.is_file() else None


def is_flow_folder(folder: Path) -> bool:
    """Whether a folder holds an SD3 or Flux pipeline."""
    return pipeline_class(folder) in FLOW_PIPELINES


def flow_state(model_input: torch.Tensor, timestep: torch.Tensor | float, train_timesteps: int) -> torch.Tensor:
    """The flow state (1 - sigma) x0 + sigma eps from the variance-preserving x_t (per row when t is)."""
    sigma = torch.as_tensor(timestep, dtype=torch.float32, device=model_input.device).flatten() / train_timesteps
    scale = ((1 - sigma) ** 2 + sigma**2).sqrt()  # x_flow = x_vp * sqrt((1 - sigma)^2 + sigma^2)
    scale = scale.view(-1, *([1] * (model_input.ndim - 1))) if scale.numel() > 1 else scale.squeeze()
    return (model_input * scale).to(model_input.dtype)


class FlowAdapter(SamplingAdapter):
    """What SD3 and Flux share: flow schedulers, the 16-channel VAE with its shift, velocity outputs."""

    prediction_type = "flow"

    def __init__(self, pipeline: object, model_id: str, denoiser: torch.nn.Module, *, default_steps: int,
                 default_guidance: float, text_tokens: int, max_tokens: int, guidance: str):
        self.pipeline = pipeline
        self.id = model_id
        self.denoiser = denoiser
        self.device = pipeline.transformer.device
        self.dtype = pipeline.transformer.dtype
        self.vae_scale = pipeline.vae_scale_factor
        self.text_tokens = text_tokens  # T5 sequence length given to the transformer
        self.max_tokens = max_tokens
        patch = pipeline.transformer.config.patch_size if hasattr(pipeline.transformer.config, "patch_size") else 1
        self.latent_patch = 2 if isinstance(denoiser, FluxDenoiser) else patch
        self.capabilities = Capabilities(
            conditioning="text", pixel_space=False, cross_attention=True,  # joint attention: generator/daam/joint.py
            size_multiple=self.vae_scale * self.latent_patch, max_tokens=max_tokens, guidance=guidance,
        )
        self.default_steps = default_steps
        self.default_guidance = default_guidance
        self.default_scheduler = "flow-euler" if "Heun" not in type(pipeline.scheduler).__name__ else "flow-heun"
        self.scheduler_config = dict(pipeline.scheduler.config)
        self.train_timesteps = int(self.scheduler_config.get("num_train_timesteps", 1000))
        encoders = [getattr(pipeline, name) for name in ("text_encoder", "text_encoder_2", "text_encoder_3")
                    if getattr(pipeline, name, None) is not None]
        self.weight_hash = weight_hash([pipeline.transformer, pipeline.vae, *encoders])

    def make_scheduler(self, name: str | None = None, *, width: int | None = None, height: int | None = None) -> object:
        """A fresh flow scheduler; Flux's shift is set for the image's token count (default size unless given)."""
        scheduler = make_scheduler(name or self.default_scheduler, self.scheduler_config)
        _, latent_height, latent_width = self.latent_shape(width or self.default_width, height or self.default_height)
        scheduler.image_seq_len = (latent_height // self.latent_patch) * (latent_width // self.latent_patch)
        return scheduler

    def latent_shape(self, width: int, height: int) -> tuple[int, int, int]:
        """(16, H/8, W/8)."""
        self.check_size(width, height)
        return (self.pipeline.vae.config.latent_channels, height // self.vae_scale, width // self.vae_scale)

    def _flow_input(self, model_input: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        return flow_state(model_input, timestep, self.train_timesteps).to(self.dtype)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """VAE decode (latents / scale + shift, as the pipelines do) to [0, 1] floats on the CPU."""
        vae = self.pipeline.vae
        scaled = latents.to(vae.dtype) / vae.config.scaling_factor + (vae.config.shift_factor or 0.0)
        images = vae.decode(scaled, return_dict=False)[0]
        return (images.float() / 2 + 0.5).clamp(0, 1).cpu()

    @torch.no_grad()
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Latents of images in [0, 1]: (posterior mean - shift) * scale."""
        vae = self.pipeline.vae
        posterior = vae.encode((images * 2 - 1).to(self.device, vae.dtype)).latent_dist
        return ((posterior.mean - (vae.config.shift_factor or 0.0)) * vae.config.scaling_factor).to(self.dtype)

    @staticmethod
    def sigma(alpha_bar: float) -> float:
        """The flow sigma of a recorded alpha-bar (see ``generator.models.schedulers.flow_alpha_bar``)."""
        return flow_sigma(alpha_bar)


class SD3Adapter(FlowAdapter):
    """A ``StableDiffusion3Pipeline`` (SD 3 / 3.5): MMDiT, two CLIP encoders and T5, classifier-free guidance."""

    def __init__(self, pipeline: object, model_id: str, *, default_steps: int = 28, default_guidance: float = 7.0,
                 text_tokens: int = 256):
        super().__init__(pipeline, model_id, SD3Denoiser(pipeline.transformer), default_steps=default_steps,
                         default_guidance=default_guidance, text_tokens=text_tokens,
                         max_tokens=pipeline.tokenizer.model_max_length, guidance="classifier-free")
        self.tokenizer = pipeline.tokenizer
        size = pipeline.transformer.config.sample_size * self.vae_scale
        self.default_width = self.default_height = size

    def tokenize(self, prompt: str) -> list[TokenPiece]:
        """The first CLIP encoder's 77 pieces: the first text tokens the joint attention sees (T5's follow)."""
        return token_pieces(self.tokenizer, prompt, self.max_tokens)

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str], negative: str = "") -> PromptEmbeddings:
        """CLIP-L/G tokens padded to T5's width, then T5's tokens; pooled CLIP vectors (the pipeline's own)."""
        prompts = list(prompts)
        negatives = [negative] * len(prompts)
        cond, uncond, pooled, uncond_pooled = self.pipeline.encode_prompt(
            prompt=prompts, prompt_2=None, prompt_3=None, device=self.device, num_images_per_prompt=1,
            do_classifier_free_guidance=True, negative_prompt=negatives, max_sequence_length=self.text_tokens,
        )
        return PromptEmbeddings(Embeddings(cond, {"pooled_projections": pooled}),
                                Embeddings(uncond, {"pooled_projections": uncond_pooled}), tuple(prompts))

    def denoise(self, model_input: torch.Tensor, timestep: torch.Tensor, embeddings: Embeddings) -> torch.Tensor:
        """Velocity from one transformer call on the flow state of ``model_input``."""
        return self.denoiser(self._flow_input(model_input, timestep), timestep, embeddings.hidden,
                             embeddings.added["pooled_projections"])


class FluxAdapter(FlowAdapter):
    """A ``FluxPipeline``: double- and single-stream blocks, T5 tokens, CLIP pooled vector, distilled guidance."""

    def __init__(self, pipeline: object, model_id: str, *, default_steps: int | None = None,
                 default_guidance: float | None = None, text_tokens: int = 512, default_size: int = 1024):
        distilled = bool(pipeline.transformer.config.guidance_embeds)  # dev: yes; schnell: no (4 steps, no guidance)
        super().__init__(
            pipeline, model_id, FluxDenoiser(pipeline.transformer),
            default_steps=default_steps or (28 if distilled else 4),
            default_guidance=(3.5 if distilled else 0.0) if default_guidance is None else default_guidance,
            text_tokens=text_tokens, max_tokens=text_tokens, guidance="distilled" if distilled else "none",
        )
        self.tokenizer = pipeline.tokenizer_2
        self.default_width = self.default_height = default_size  # the transformer has no native size

    def tokenize(self, prompt: str) -> list[TokenPiece]:
        """T5's pieces (no start token; '</s>' ends the prompt), padding to the sequence length included."""
        return token_pieces(self.tokenizer, prompt, self.text_tokens)

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str], negative: str = "") -> PromptEmbeddings:
        """T5 tokens and the pooled CLIP vector (the pipeline's own); the negative only for true CFG."""
        prompts = list(prompts)

        def encode(texts: list[str]) -> Embeddings:
            hidden, pooled, _ = self.pipeline.encode_prompt(prompt=texts, prompt_2=None, device=self.device,
                                                             num_images_per_prompt=1,
                                                             max_sequence_length=self.text_tokens)
            return Embeddings(hidden, {"pooled_projections": pooled})

        return PromptEmbeddings(encode(prompts), encode([negative] * len(prompts)), tuple(prompts))

    def denoise(self, model_input: torch.Tensor, timestep: torch.Tensor, embeddings: Embeddings) -> torch.Tensor:
        """Velocity from one transformer call; ``embeddings.added['guidance']`` is the distilled scale per row."""
        guidance = embeddings.added.get("guidance")
        return self.denoiser(self._flow_input(model_input, timestep), timestep, embeddings.hidden,
                             embeddings.added["pooled_projections"], guidance)


def load_flow_pipeline(folder: str, device: torch.device, dtype: torch.dtype, use_safetensors: bool | None) -> object:
    """An SD3 or Flux pipeline from a local folder or the local HF cache (never downloads)."""
    from diffusers import DiffusionPipeline

    pipeline = DiffusionPipeline.from_pretrained(folder, torch_dtype=dtype, local_files_only=True,
                                                 use_safetensors=use_safetensors)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device)


def flow_folder_limits(folder: Path) -> ModelLimits:
    """Limits of an SD3 or Flux folder from its configs: sizes a multiple of 16 (8x VAE, 2x2 patches); the
    tokenizer whose pieces the word maps use (SD3: CLIP, 77; Flux: T5, ``max_sequence_length`` 512)."""
    from transformers import AutoTokenizer

    limits = diffusers_folder_limits(folder)
    if pipeline_class(folder) == "FluxPipeline":
        return replace(limits, size_multiple=limits.size_multiple * 2, max_tokens=512, flow=True,
                       tokenizer=lambda: AutoTokenizer.from_pretrained(str(folder), subfolder="tokenizer_2"))
    return replace(limits, size_multiple=limits.size_multiple * 2, flow=True)


def flow_adapter(pipeline: object, model_id: str) -> FlowAdapter:
    """The adapter for a loaded SD3 or Flux pipeline."""
    if type(pipeline).__name__.startswith("Flux"):
        return FluxAdapter(pipeline, model_id)
    return SD3Adapter(pipeline, model_id)
