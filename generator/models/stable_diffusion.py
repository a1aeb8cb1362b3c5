"""Models stage: the adapter for diffusers latent text-to-image pipelines (Stable Diffusion 1.x/2.x and XL)."""

from __future__ import annotations

from typing import Sequence

import torch

from generator.models.base import Capabilities, Embeddings, PromptEmbeddings, TokenPiece
from generator.models.common import SamplingAdapter, weight_hash
from generator.models.schedulers import SCHEDULERS, make_scheduler
from generator.models.tokens import token_pieces


class StableDiffusionAdapter(SamplingAdapter):
    """A ``StableDiffusionPipeline`` or ``StableDiffusionXLPipeline`` seen through the ModelAdapter protocol."""

    def __init__(self, pipeline: object, model_id: str, *, default_steps: int = 30, default_guidance: float = 7.5,
                 default_scheduler: str | None = None):
        self.pipeline = pipeline
        self.id = model_id
        self.is_xl = hasattr(pipeline, "text_encoder_2")
        self.denoiser = pipeline.unet
        self.device = pipeline.unet.device
        self.dtype = pipeline.unet.dtype
        self.vae_scale = pipeline.vae_scale_factor
        self.prediction_type = pipeline.scheduler.config.get("prediction_type", "epsilon")
        self.tokenizer = pipeline.tokenizer
        self.max_tokens = pipeline.tokenizer.model_max_length
        self.capabilities = Capabilities(
            conditioning="text",
            pixel_space=False,
            cross_attention=True,
            size_multiple=self.vae_scale,
            max_tokens=self.max_tokens,
        )
        size = pipeline.unet.config.sample_size * self.vae_scale
        self.default_width = self.default_height = size
        self.default_steps = default_steps
        self.default_guidance = default_guidance
        self.default_scheduler = default_scheduler or _scheduler_name(pipeline.scheduler)
        encoders = [pipeline.unet, pipeline.vae, pipeline.text_encoder] + ([pipeline.text_encoder_2] if self.is_xl else [])
        self.weight_hash = weight_hash(encoders)

    def make_scheduler(self, name: str | None = None) -> object:
        """A fresh scheduler of that name sharing this model's training schedule."""
        return make_scheduler(name or self.default_scheduler, self.pipeline.scheduler.config)

    def latent_shape(self, width: int, height: int) -> tuple[int, int, int]:
        """(4, H/8, W/8) for SD."""
        return (self.pipeline.unet.config.in_channels, height // self.vae_scale, width // self.vae_scale)

    def tokenize(self, prompt: str) -> list[TokenPiece]:
        """The pieces of the (first) text encoder, padding to its full length included."""
        return token_pieces(self.tokenizer, prompt, self.max_tokens)

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str], negative: str = "") -> PromptEmbeddings:
        """Text embeddings through the pipeline's own ``encode_prompt`` (SDXL: with pooled embeddings)."""
        prompts = list(prompts)
        negatives = [negative] * len(prompts)
        if self.is_xl:
            cond, uncond, pooled, uncond_pooled = self.pipeline.encode_prompt(
                prompt=prompts, device=self.device, num_images_per_prompt=1,
                do_classifier_free_guidance=True,
                negative_prompt=negatives if negative else None,  # None: SDXL's zero embedding for "no prompt"
            )
            return PromptEmbeddings(
                Embeddings(cond, {"text_embeds": pooled}),
                Embeddings(uncond, {"text_embeds": uncond_pooled}),
                tuple(prompts),
            )
        cond, uncond = self.pipeline.encode_prompt(prompts, self.device, 1, True, negative_prompt=negatives)
        return PromptEmbeddings(Embeddings(cond), Embeddings(uncond), tuple(prompts))

    def _time_ids(self, model_input: torch.Tensor) -> torch.Tensor:
        """SDXL micro-conditioning: original size, crop (0, 0), target size, all the image size."""
        height, width = (s * self.vae_scale for s in model_input.shape[-2:])
        ids = torch.tensor([[height, width, 0, 0, height, width]], dtype=model_input.dtype, device=model_input.device)
        return ids.repeat(model_input.shape[0], 1)

    def denoise(self, model_input: torch.Tensor, timestep: torch.Tensor, embeddings: Embeddings) -> torch.Tensor:
        """One UNet call."""
        added = None
        if self.is_xl:
            added = {"text_embeds": embeddings.added["text_embeds"], "time_ids": self._time_ids(model_input)}
        return self.denoiser(
            model_input, timestep, encoder_hidden_states=embeddings.hidden, added_cond_kwargs=added, return_dict=False
        )[0]

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """VAE decode to [0, 1] floats on the CPU (upcast where the VAE overflows in fp16, as SDXL's does)."""
        vae = self.pipeline.vae
        upcast = vae.dtype == torch.float16 and vae.config.get("force_upcast", False)
        if upcast:
            vae.to(torch.float32)
        scaled = latents.to(vae.dtype) / vae.config.scaling_factor
        if vae.config.get("shift_factor") is not None:
            scaled = scaled + vae.config.shift_factor
        images = vae.decode(scaled, return_dict=False)[0]
        if upcast:
            vae.to(torch.float16)
        return (images.float() / 2 + 0.5).clamp(0, 1).cpu()

    @torch.no_grad()
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Latents of images in [0, 1]: the mean of the VAE posterior (deterministic), scaled."""
        vae = self.pipeline.vae
        posterior = vae.encode((images * 2 - 1).to(self.device, vae.dtype)).latent_dist
        return (posterior.mean * vae.config.scaling_factor).to(self.dtype)


def _scheduler_name(scheduler: object) -> str:
    """Our name for a pipeline's scheduler class ('ddim' when we do not list it)."""
    for name, (scheduler_class, _) in SCHEDULERS.items():
        if type(scheduler) is scheduler_class:
            return name
    return "ddim"
