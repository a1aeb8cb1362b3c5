"""Models stage: the built-in 'digits' model (class-conditioned MNIST DDPM) behind the ModelAdapter protocol.

Its flow-matching twin ('embedded:digits-flow', :class:`DigitsFlowAdapter`) is the same UNet trained to predict the
velocity v = eps - x0 along x_t = (1 - t) x0 + t eps (``generator.builtin.digits.flow``). Through the adapter it is
a flow model like SD3 and Flux: prediction type "flow", diffusers' FlowMatchEulerDiscreteScheduler (shift 1: sigma
is not re-spaced) with timestep = 1000 t; ``denoise`` takes the variance-preserving x_t the loop records and returns
the velocity, and the loop's predicted clean image is x0 = x_flow - sigma v.

Prompts are digits: "7" (or "seven"). The model works in pixel space on 28x28 grayscale images in [0, 1]
(the course's data range, not [-1, 1]); ``decode`` repeats the channel to RGB. Its training schedule is
DDPM's linear betas 1e-4..0.02 over T = 300 steps. diffusers indexes training timesteps 0..T-1 while our
training code uses the paper's 1..T (``generator.builtin.digits.ddpm``), so diffusers' timestep k is the
network's t = (k + 1) / T.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from generator.builtin.defaults import read_defaults
from generator.errors import UserError
from generator.models.base import Capabilities, Embeddings, PromptEmbeddings, TokenPiece
from generator.models.common import SamplingAdapter, weight_hash
from generator.models.flow import flow_state
from generator.models.schedulers import make_scheduler

if TYPE_CHECKING:
    from generator.models.limits import ModelLimits

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
IMAGE_SIZE = 28


def parse_digit(prompt: str) -> int:
    """'7', ' 7 ', 'seven' or 'Seven' -> 7; anything else is a user error naming the accepted prompts."""
    text = prompt.strip().lower()
    if len(text) == 1 and text.isdigit():
        return int(text)
    if text in DIGIT_WORDS:
        return DIGIT_WORDS.index(text)
    raise UserError(f"the digits model takes a digit as its prompt ('0'..'9' or 'zero'..'nine'), got {prompt!r}")


class DigitsAdapter(SamplingAdapter):
    """A class- (or time-) conditioned digits UNet with its DDPM schedule, seen through the ModelAdapter protocol.

    With the time-conditioned UNet (the chapter's unconditional model) prompts are ignored, both branches
    are the same and the default guidance is 1 (one denoiser call per step).
    """

    def __init__(self, unet: torch.nn.Module, config: dict[str, Any], *, model_id: str = "embedded:digits",
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, epoch: int | None = None,
                 defaults: dict[str, Any] | None = None):
        self.id = model_id
        self.config = config
        self.epoch = epoch
        self.device = torch.device(device)
        self.dtype = dtype
        self.denoiser = unet.to(self.device, dtype).eval()
        self.num_classes = int(getattr(unet, "num_classes", 10))
        self.class_conditional = hasattr(unet, "forward_class_vector")
        schedule = config.get("schedule", {})
        self.num_train_timesteps = int(schedule.get("num_timesteps", 300))
        self.scheduler_config = {
            "num_train_timesteps": self.num_train_timesteps,
            "beta_start": float(schedule.get("beta_start", 1e-4)),
            "beta_end": float(schedule.get("beta_end", 0.02)),
            "beta_schedule": "linear",
            "prediction_type": "epsilon",
            "clip_sample": True,  # x0 estimates clipped to [-1, 1]; the data lie in [0, 1]
            "clip_sample_range": 1.0,
            "variance_type": "fixed_small",  # DDPM's beta-tilde, as our own sampler's default
            "timestep_spacing": "leading",
            "steps_offset": 0,
        }
        self.prediction_type = "epsilon"
        self.judge = "digits"  # generator/evaluate/verdicts.py: every image this model publishes is judged
        self.capabilities = Capabilities(
            conditioning="class", pixel_space=True, cross_attention=False, size_multiple=IMAGE_SIZE, max_tokens=None
        )
        self.default_width = self.default_height = IMAGE_SIZE
        # measured best settings (`diffatlas eval digits --sweep` writes the folder's defaults.json); without
        # them, the course's own: DDPM over every training timestep, guidance 5 for the class model
        measured = defaults or {"scheduler": "ddpm", "steps": self.num_train_timesteps,
                                "guidance": 5.0 if self.class_conditional else 1.0}
        self.default_scheduler = str(measured["scheduler"])
        self.default_steps = int(measured["steps"])
        self.default_guidance = float(measured["guidance"])
        self.weight_hash = weight_hash([self.denoiser])

    def make_scheduler(self, name: str | None = None) -> object:
        """A fresh diffusers scheduler with the training schedule (DDPM ancestral sampling by default)."""
        return make_scheduler(name or self.default_scheduler, self.scheduler_config)

    def latent_shape(self, width: int, height: int) -> tuple[int, int, int]:
        """(1, 28, 28): the model only makes 28x28 grayscale digits."""
        if (width, height) != (IMAGE_SIZE, IMAGE_SIZE):
            raise UserError(f"{self.id} makes {IMAGE_SIZE}x{IMAGE_SIZE} images only, got {width}x{height}")
        return (1, IMAGE_SIZE, IMAGE_SIZE)

    def tokenize(self, prompt: str) -> list[TokenPiece]:
        """One piece: the class label (the time-conditioned model has no conditioning: no pieces)."""
        if not self.class_conditional:
            return []
        label = parse_digit(prompt)
        return [TokenPiece(index=0, token_id=label, text=prompt.strip(), special="", word_index=0)]

    def class_vectors(self, prompts: Sequence[str]) -> torch.Tensor:
        """(batch, 10) one-hot vectors of the prompts' digits."""
        labels = torch.tensor([parse_digit(p) for p in prompts], dtype=torch.long)
        return torch.nn.functional.one_hot(labels, self.num_classes).to(self.device, self.dtype)

    def encode_prompts(self, prompts: Sequence[str], negative: str = "") -> PromptEmbeddings:
        """One-hot classes; the unconditional branch is the all-zero vector the model saw under label dropout."""
        if negative:
            raise UserError(f"{self.id} has no negative prompts (its unconditional branch is 'no class')")
        prompts = list(prompts)
        if not self.class_conditional:
            empty = torch.zeros(len(prompts), self.num_classes, device=self.device, dtype=self.dtype)
            return PromptEmbeddings(Embeddings(empty), Embeddings(empty), tuple(prompts))
        cond = self.class_vectors(prompts)  # (batch, 10)
        return PromptEmbeddings(Embeddings(cond), Embeddings(torch.zeros_like(cond)), tuple(prompts))

    @torch.no_grad()
    def denoise(self, model_input: torch.Tensor, timestep: torch.Tensor, embeddings: Embeddings) -> torch.Tensor:
        """Predicted noise; diffusers' 0-based timestep k is the network's normalised t = (k + 1) / T."""
        batch = model_input.shape[0]
        t = (torch.as_tensor(timestep, device=self.device).to(self.dtype).reshape(-1) + 1) / self.num_train_timesteps
        t = t.expand(batch) if t.numel() == 1 else t
        if not self.class_conditional:
            return self.denoiser(model_input.to(self.dtype), t)
        return self.denoiser.forward_class_vector(model_input.to(self.dtype), t, embeddings.hidden)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(batch, 1, 28, 28) pixels -> (batch, 3, 28, 28) float32 in [0, 1] on the CPU."""
        return latents.float().clamp(0, 1).repeat(1, 3, 1, 1).cpu()

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(batch, 3, 28, 28) in [0, 1] -> (batch, 1, 28, 28) grayscale (channel mean)."""
        return images.mean(dim=1, keepdim=True).to(self.device, self.dtype)


FLOW_TRAIN_TIMESTEPS = 1000  # diffusers' flow schedulers: timestep = 1000 sigma
FLOW_SCHEDULER_CONFIG = {"num_train_timesteps": FLOW_TRAIN_TIMESTEPS, "shift": 1.0, "use_dynamic_shifting": False}
DEFAULT_EULER_STEPS = 20  # the chapter's and eval's Euler step count (measured in generator/weights/digits/README.md)


class DigitsFlowAdapter(DigitsAdapter):
    """A class- (or time-) conditioned flow-matching digits UNet: velocity outputs, Euler steps from noise."""

    prediction_type = "flow"

    def __init__(self, unet: torch.nn.Module, config: dict[str, Any], *, model_id: str = "embedded:digits-flow",
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, epoch: int | None = None,
                 defaults: dict[str, Any] | None = None):
        class_conditional = hasattr(unet, "forward_class_vector")
        measured = defaults or {"scheduler": "flow-euler", "steps": DEFAULT_EULER_STEPS,
                                "guidance": 5.0 if class_conditional else 1.0}
        super().__init__(unet, config, model_id=model_id, device=device, dtype=dtype, epoch=epoch, defaults=measured)
        self.num_train_timesteps = FLOW_TRAIN_TIMESTEPS
        self.scheduler_config = dict(FLOW_SCHEDULER_CONFIG)
        self.prediction_type = "flow"

    @torch.no_grad()
    def denoise(self, model_input: torch.Tensor, timestep: torch.Tensor, embeddings: Embeddings) -> torch.Tensor:
        """Predicted velocity at the flow state of the loop's x_t; the network reads t = timestep / 1000."""
        batch = model_input.shape[0]
        x_flow = flow_state(model_input, timestep, FLOW_TRAIN_TIMESTEPS).to(self.dtype)
        t = torch.as_tensor(timestep, device=self.device).to(self.dtype).reshape(-1) / FLOW_TRAIN_TIMESTEPS
        t = t.expand(batch) if t.numel() == 1 else t
        if not self.class_conditional:
            return self.denoiser(x_flow, t)
        return self.denoiser.forward_class_vector(x_flow, t, embeddings.hidden)


def load_digits_adapter(stage: str = "class", epoch: int | None = None, model_dir: str | Path | None = None,
                        device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                        objective: str = "ddpm") -> DigitsAdapter:
    """A shipped digits model ('class' or 'time'), optionally a snapshot ``epoch`` (the per-epoch animations).

    ``objective`` 'flow' picks the flow-matching twin (folder ``flow-<stage>``); a ``model_dir`` is read as what
    its config says it is (``objective`` in config.json; older configs are DDPM).
    """
    from generator.builtin.digits.weights import load_digits_unet, shipped_weights_dir

    if stage not in ("class", "time"):
        raise UserError(f"digits adapters exist for the 'class' and 'time' models, not {stage!r}")
    if objective not in ("ddpm", "flow"):
        raise UserError(f"digits models are trained with the 'ddpm' or 'flow' objective, not {objective!r}")
    default_folder = stage if objective == "ddpm" else f"flow-{stage}"
    folder = Path(model_dir) if model_dir is not None else shipped_weights_dir() / default_folder
    unet, config = load_digits_unet(folder, epoch)
    if config.get("stage") != stage:
        raise UserError(f"{folder} holds a {config.get('stage')!r} model, not the {stage!r} model")
    flow = config.get("objective", "ddpm") == "flow"
    model_id = "embedded:digits" + ("-flow" if flow else "") + ("" if stage == "class" else "-time")
    if epoch is not None:
        model_id += f"@epoch{epoch}"
    if flow:
        return DigitsFlowAdapter(unet, config, model_id=model_id, device=device, dtype=dtype, epoch=epoch,
                                 defaults=read_defaults(folder))
    return DigitsAdapter(unet, config, model_id=model_id, device=device, dtype=dtype, epoch=epoch,
                         defaults=read_defaults(folder))


def load(device: torch.device, dtype: torch.dtype) -> DigitsAdapter:
    """Registry loader for 'embedded:digits' (fp32 on the CPU: the model is tiny and fp16 CPU kernels are slow)."""
    if device.type == "cpu":
        dtype = torch.float32
    return load_digits_adapter(device=device, dtype=dtype)


def load_flow(device: torch.device, dtype: torch.dtype) -> DigitsAdapter:
    """Registry loader for 'embedded:digits-flow': the flow-matching class model (fp32 on the CPU)."""
    if device.type == "cpu":
        dtype = torch.float32
    return load_digits_adapter(device=device, dtype=dtype, objective="flow")


def limits(folder_name: str = "class", flow: bool = False) -> "ModelLimits":
    """What 'embedded:digits' accepts, without loading weights: the labels '0'..'9', 28x28, no tokenizer.

    The fingerprint hashes the shipped class model's files (content, not sizes); before the model is
    shipped it is 'absent', and loading then fails with the missing-weights error.
    """
    import hashlib

    from generator.builtin.digits.weights import shipped_weights_dir
    from generator.models.limits import ModelLimits

    folder = shipped_weights_dir() / folder_name
    files = sorted(p for p in folder.glob("*") if p.is_file() and p.suffix in (".safetensors", ".json"))
    fingerprint = hashlib.sha256()
    for path in files:
        fingerprint.update(path.name.encode())
        fingerprint.update(path.read_bytes())
    return ModelLimits(
        size_multiple=IMAGE_SIZE,
        max_tokens=None,
        tokenizer=None,
        labels=tuple(str(d) for d in range(10)),
        fingerprint=fingerprint.hexdigest()[:16] if files else "absent",
        flow=flow,
    )


def flow_limits() -> "ModelLimits":
    """What 'embedded:digits-flow' accepts: as 'embedded:digits', fingerprinted by the flow-class folder."""
    return limits("flow-class", flow=True)
