"""DAAM stage: recording cross-attention processors, installed through diffusers' public processor API.

Locating the layers (``cross_attention_layers``) is kept apart from hooking them (``capture``). The recorder
wraps a layer's original processor: the layer's output is always the original's (SDPA, group norm,
residual and rescale untouched); the recorder only additionally computes softmax(QK^T / sqrt(d)) for the
conditional rows of the batch and the prompt's tokens, and adds it to the running sums. Self-attention
layers keep their original processor object. Everything is restored in ``finally``.
"""

from __future__ import annotations

import fnmatch
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from generator.daam.aggregate import Accumulator, grid_size, timestep_bin
from generator.daam.joint import JointRecordingProcessor, joint_attention_layers


@dataclass(frozen=True)
class Layout:
    """The rows of one denoiser call: CFG branches in batch order and one prompt per image of a branch."""

    branches: tuple[str, ...]
    prompts: tuple[str, ...]

    def conditional_rows(self, batch: int) -> slice | None:
        """The batch rows of the conditional branch (None when the call has none, e.g. guidance 0)."""
        if "cond" not in self.branches or batch % len(self.branches):
            return None
        per_branch = batch // len(self.branches)
        start = self.branches.index("cond") * per_branch
        return slice(start, start + per_branch)


@dataclass(frozen=True)
class Step:
    """What the recorders need during one denoiser call."""

    rows: slice
    bin_index: int
    latent_size: tuple[int, int]
    accumulator: Accumulator


def cross_attention_layers(denoiser: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """Processor name -> attention module, for every cross-attention layer of a diffusers denoiser."""
    processors = getattr(denoiser, "attn_processors", None)
    if processors is None:
        raise TypeError(f"{type(denoiser).__name__} has no diffusers attention processors to hook")
    layers = {}
    for name in processors:
        module = denoiser.get_submodule(name.removesuffix(".processor"))
        if getattr(module, "is_cross_attention", False):
            layers[name] = module
    return layers


def location_of(name: str) -> str:
    """'down', 'mid' or 'up': the UNet part a layer sits in (from its module path)."""
    head = name.split(".", 1)[0]
    return {"down_blocks": "down", "mid_block": "mid", "up_blocks": "up"}.get(head, "other")


def attention_scores(attn, queries_in: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, int]:
    """softmax's input QK^T / sqrt(d) of an attention layer, per head, in fp32: (images, heads, queries, keys),
    and the head dimension. ``queries_in`` (images, queries, channels) and ``context`` are the layer's inputs after
    its own norms. Differentiable: the latent model's grounding loss trains through it (builtin/latent/grounding.py).
    """
    query = attn.to_q(queries_in)
    if attn.added_kv_proj_dim is not None:
        # DeepFloyd IF's blocks: text keys from add_k_proj, followed (unless cross-only) by the image's own
        # keys; the softmax runs over both, and the text tokens are the first positions
        key = attn.add_k_proj(context)
        if not attn.only_cross_attention:
            key = torch.cat([key, attn.to_k(queries_in)], dim=1)
    else:
        key = attn.to_k(context)
    images, heads = query.shape[0], attn.heads
    head_dim = key.shape[-1] // heads
    query = query.view(images, -1, heads, head_dim).transpose(1, 2)  # (images, heads, h*w, d)
    key = key.view(images, -1, heads, head_dim).transpose(1, 2)  # (images, heads, keys, d)
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    return torch.matmul(query.float(), key.float().transpose(-1, -2)) * attn.scale, head_dim


class RecordingProcessor:
    """Delegates to the original processor and records the conditional cross-attention probabilities."""

    def __init__(self, original: object, name: str, current_step: Callable[[], Step | None]):
        self.original = original
        self.name = name
        self.location = location_of(name)
        self.current_step = current_step

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, **kwargs):
        step = self.current_step()
        if step is not None and encoder_hidden_states is not None:
            with torch.no_grad():
                self._record(step, attn, hidden_states, encoder_hidden_states, attention_mask, kwargs.get("temb"))
        return self.original(
            attn, hidden_states, encoder_hidden_states=encoder_hidden_states, attention_mask=attention_mask, **kwargs
        )

    def _record(self, step: Step, attn, hidden_states, context, attention_mask, temb) -> None:
        """softmax(QK^T * scale) of the conditional rows, per head (DAAM Eq. 5, before Eq. 6's sum over heads)."""
        if isinstance(context, tuple):  # IP-adapter: (text, image) embeddings; the text is what words attend
            context = context[0]
        rows = step.rows
        queries_in = hidden_states[rows]
        if attn.spatial_norm is not None:
            queries_in = attn.spatial_norm(queries_in, temb[rows] if temb is not None else None)
        if queries_in.ndim == 4:  # (images, channels, h, w)
            images, channels, height, width = queries_in.shape
            queries_in = queries_in.view(images, channels, height * width).transpose(1, 2)
        else:
            height, width = grid_size(queries_in.shape[1], *step.latent_size)
        if attn.group_norm is not None:
            queries_in = attn.group_norm(queries_in.transpose(1, 2)).transpose(1, 2)
        context = context[rows]
        if attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        scores, head_dim = attention_scores(attn, queries_in, context)
        images, heads = scores.shape[:2]
        if attention_mask is not None:
            target = queries_in.shape[1] if attn.added_kv_proj_dim is not None else context.shape[1]
            mask = attn.prepare_attention_mask(attention_mask, target, hidden_states.shape[0], out_dim=4)
            scores = scores + mask[rows].float()
        kept = step.accumulator.columns(context.shape[1])  # text tokens come first among the keys
        probabilities = scores.softmax(dim=-1)[..., :kept]  # (images, heads, h*w, kept)
        if step.accumulator.value_norm:  # ||v_k|| per head: what each key can move the output by (Kobayashi 2020)
            value = (attn.add_v_proj if attn.added_kv_proj_dim is not None else attn.to_v)(context[:, :kept])
            norms = value.float().view(images, kept, heads, head_dim).norm(dim=-1).transpose(1, 2)  # (images, heads, kept)
            probabilities = probabilities * norms[:, :, None, :]
        # summed over heads unless the capture keeps heads (or layers) apart: Accumulator.add_layer
        step.accumulator.add_layer(self.location, self.name, height, width, step.bin_index, probabilities)


class CaptureSession:
    """Shared state of one capture: the current denoiser call's step, set by a pre-hook on the denoiser.

    ``layout`` tells the rows of a call from its batch size; ``accumulator_for(layout, images, latent_size)``
    returns the sums for a layout (a new one when the prompts change); ``keep_timestep`` filters steps (capture-time timestep range).
    """

    def __init__(
        self,
        layout: Callable[[int], Layout | None],
        accumulator_for: Callable[[Layout, int, tuple[int, int]], Accumulator],
        train_timesteps: int,
        bins: int,
        keep_timestep: Callable[[float], bool] = lambda t: True,
    ):
        self.layout = layout
        self.accumulator_for = accumulator_for
        self.train_timesteps = train_timesteps
        self.bins = bins
        self.keep_timestep = keep_timestep
        self.step: Step | None = None

    def current_step(self) -> Step | None:
        return self.step

    def before_denoiser(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        """Work out the conditional rows and the timestep bin of this call (None: record nothing)."""
        self.step = None
        sample = args[0] if args else kwargs.get("sample")
        timestep = args[1] if len(args) > 1 else kwargs.get("timestep")
        if sample is None or timestep is None:
            return
        batch = sample.shape[0]
        layout = self.layout(batch)
        rows = layout.conditional_rows(batch) if layout is not None else None
        if rows is None:
            return
        timestep_value = float(torch.as_tensor(timestep).flatten()[0])
        if not self.keep_timestep(timestep_value):
            return
        latent_size = (sample.shape[-2], sample.shape[-1])
        accumulator = self.accumulator_for(layout, rows.stop - rows.start, latent_size)
        bin_index = timestep_bin(timestep_value, self.train_timesteps, self.bins)
        accumulator.note_step(bin_index, timestep_value)
        self.step = Step(rows, bin_index, latent_size, accumulator)

    def after_denoiser(self, module: torch.nn.Module, args: tuple, kwargs: dict, output: object) -> None:
        self.step = None


def matches(name: str, patterns: str | tuple[str, ...] | None) -> bool:
    """Whether a layer name matches any glob pattern (None: every layer)."""
    if patterns is None:
        return True
    patterns = (patterns,) if isinstance(patterns, str) else patterns
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(location_of(name), p) for p in patterns)


@contextmanager
def capture(
    denoiser: torch.nn.Module,
    session: CaptureSession,
    layers: str | tuple[str, ...] | None = None,
    extra_hooks: Callable[[ExitStack], None] | None = None,
) -> Iterator[list[str]]:
    """Install recorders on the cross-attention layers (matching ``layers``) and restore the originals after.

    Yields the recorded layer names. ``extra_hooks`` registers further hooks (removed on exit as well).
    """
    originals = dict(denoiser.attn_processors)
    joint = joint_attention_layers(denoiser)  # issue 21: diffusion transformers (generator/daam/joint.py)
    recorded = [name for name in (joint or cross_attention_layers(denoiser)) if matches(name, layers)]
    if not recorded:
        raise ValueError(f"{type(denoiser).__name__} has no cross-attention layer to record" + (f" matching {layers!r}" if layers else ""))
    replacement = dict(originals)
    for name in recorded:
        replacement[name] = RecordingProcessor(originals[name], name, session.current_step) if name not in joint else \
            JointRecordingProcessor(originals[name], name, joint[name], getattr(denoiser, "patch_size", 1), session.current_step)
    with ExitStack() as hooks:
        try:
            hooks.callback(denoiser.set_attn_processor, dict(originals))  # first: also undoes a partial install
            denoiser.set_attn_processor(replacement)
            hooks.enter_context(denoiser.register_forward_pre_hook(session.before_denoiser, with_kwargs=True))
            hooks.enter_context(denoiser.register_forward_hook(session.after_denoiser, with_kwargs=True))
            if extra_hooks is not None:
                extra_hooks(hooks)
            yield recorded
        finally:
            session.step = None
