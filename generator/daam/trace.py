"""DAAM stage: the public ``trace`` API over a diffusers pipeline or a ModelAdapter.

    with trace(pipe_or_adapter, timestep_bins=10) as tc:
        image = pipe_or_adapter(prompt, ...)      # or adapter.generate(prompt, ...)
    tc.word_map("cat")                           # (H, W) in [0, 1] at image size (DAAM Eq. 6)
    tc.mask("cat", tau=0.4)                      # bool (H, W) (DAAM Eq. 7)

``keep="layers"`` or ``keep="heads"`` keeps each layer (and head) apart, for ``word_map(layer_names=...,
heads=...)`` and ``generator.daam.components``; the default sums them as they arrive (cheap, as the site needs).

Which rows of the denoiser's batch are conditional comes from our sampling loop's announcement
(``generator.diffusion.sampling.CURRENT_BATCH``: CFG on, off, or unconditional only) or, for a diffusers pipeline called
directly, from its ``do_classifier_free_guidance`` and the prompt token ids its text encoder received. The
trace keeps the maps of the latest prompts traced; generating the same prompts again adds to them.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from generator.daam.aggregate import KEEP, Accumulator, coarse_fine, heat_maps, normalize, select_groups, threshold
from generator.daam.capture import CaptureSession, Layout, capture
from generator.daam.joint import checked_map_kind
from generator.daam.words import PromptTokens, tokens_from_ids
from generator.diffusion.sampling import CURRENT_BATCH
from generator.models.base import TokenPiece

Resolutions = str | Sequence[tuple[int, int]] | None  # "fine", "coarse", explicit (h, w) list, or None (all)


@dataclass
class _Record:
    """The sums for one set of prompts (one row per image)."""

    prompts: tuple[str, ...]
    tokens: tuple[PromptTokens, ...]
    accumulator: Accumulator
    image_size: tuple[int, int]  # (H, W)


class Trace:
    """A DAAM capture and its results; use through ``trace(...)`` as a context manager."""

    def __init__(
        self,
        target: Any,
        timestep_bins: int = 10,
        *,
        layers: str | tuple[str, ...] | None = None,
        timesteps: tuple[float, float] | None = None,
        padding: bool | str = False,
        keep: str = "summed",
        value_norm: bool = False,
        map_kind: str = "attention",
    ):
        self.map_kind = checked_map_kind(map_kind)
        if padding not in (False, True, "folded"):
            raise ValueError(f"padding must be True, False or 'folded', got {padding!r}")
        if timestep_bins < 1:
            raise ValueError("timestep_bins must be >= 1")
        if keep not in KEEP:
            raise ValueError(f"keep must be one of {', '.join(KEEP)}, got {keep!r}")
        self.timestep_bins = timestep_bins
        self.layer_patterns = layers
        self.timestep_range = timesteps
        self.padding = padding
        self.keep = keep
        self.value_norm = value_norm
        self.layers: list[str] = []
        self._record: _Record | None = None
        self._stack: ExitStack | None = None
        self._prompt_ids: list[list[int]] | None = None
        self._awaiting_denoiser = False
        self._encoder_calls = 0  # first-text-encoder calls of the current generation (2: negatives encoded too)
        self._tokens_cache: dict[str, PromptTokens] = {}
        self._ids_cache: dict[tuple[int, ...], str] = {}
        self._resolve(target)

    # -- target ---------------------------------------------------------------------------------------------

    def _resolve(self, target: Any) -> None:
        """Find the denoiser, tokenizer, image scale and training schedule length of an adapter or pipeline."""
        if hasattr(target, "denoiser") and hasattr(target, "tokenize"):  # a ModelAdapter
            # no capability check here: entering the trace fails clearly when the denoiser has no
            # cross-attention layer (the class-conditional digits model)
            self.denoiser = target.denoiser
            self.pipeline = getattr(target, "pipeline", None)
            self._tokenize = target.tokenize
            _, latent_height, latent_width = target.latent_shape(target.default_width, target.default_height)
            self.image_scale = (target.default_height / latent_height, target.default_width / latent_width)
            self.train_timesteps = target.make_scheduler(target.default_scheduler).config.num_train_timesteps
        elif hasattr(target, "unet") and hasattr(target, "scheduler"):  # a diffusers pipeline
            self.denoiser = target.unet
            self.pipeline = target
            self._tokenize = None
            scale = getattr(target, "vae_scale_factor", 1) if getattr(target, "vae", None) is not None else 1
            self.image_scale = (scale, scale)
            self.train_timesteps = target.scheduler.config.num_train_timesteps
        else:
            raise TypeError(f"trace() needs a diffusers UNet pipeline or a ModelAdapter, got {type(target).__name__}")
        self.device = next(self.denoiser.parameters()).device

    def _text_encoder(self) -> tuple[torch.nn.Module, object] | None:
        """The pipeline's first text encoder and its tokenizer (the prompt's ids are read from its input)."""
        for encoder, tokenizer in (("text_encoder", "tokenizer"), ("text_encoder_2", "tokenizer_2")):
            module = getattr(self.pipeline, encoder, None)
            if module is not None and getattr(self.pipeline, tokenizer, None) is not None:
                return module, getattr(self.pipeline, tokenizer)
        return None

    # -- capture --------------------------------------------------------------------------------------------

    def __enter__(self) -> Trace:
        checked_map_kind(self.map_kind, self.denoiser)
        lo, hi = self.timestep_range or (float("-inf"), float("inf"))
        session = CaptureSession(
            self._layout, self._accumulator_for, self.train_timesteps, self.timestep_bins,
            keep_timestep=lambda t: lo <= t <= hi,
        )
        self._stack = ExitStack()
        try:
            self.layers = self._stack.enter_context(
                capture(self.denoiser, session, self.layer_patterns, self._install_text_hook)
            )
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def _install_text_hook(self, hooks: ExitStack) -> None:
        found = self._text_encoder() if self.pipeline is not None else None
        if found is not None:
            module, self._tokenizer = found
            hooks.enter_context(module.register_forward_pre_hook(self._before_text_encoder, with_kwargs=True))

    def _before_text_encoder(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        """The first text-encoder call of a generation carries the prompts (later ones: negatives, encoder 2)."""
        if self._awaiting_denoiser:
            self._encoder_calls += 1
            return
        ids = args[0] if args else kwargs.get("input_ids")
        self._encoder_calls = 1
        if ids is not None:
            self._prompt_ids = [list(map(int, row)) for row in ids.tolist()]
            self._awaiting_denoiser = True

    def _layout(self, batch: int) -> Layout | None:
        """The rows of this denoiser call: announced by our sampling loop, else read from the pipeline."""
        self._awaiting_denoiser = False
        announced = CURRENT_BATCH.get()
        if announced is not None:
            return Layout(announced.branches, announced.prompts)
        if self.pipeline is None or self._prompt_ids is None:
            return None
        guided = getattr(self.pipeline, "do_classifier_free_guidance", None)
        if guided is None:  # pipelines without the property (DeepFloyd IF): negatives encoded means CFG
            guided = self._encoder_calls >= 2
        branches = ("uncond", "cond") if bool(guided) else ("cond",)
        per_branch, prompts = batch // len(branches), len(self._prompt_ids)
        if batch % len(branches) or per_branch % prompts:
            return None
        texts = []
        for ids in self._prompt_ids:
            key = tuple(ids)
            if key not in self._ids_cache:  # decode once per prompt, not once per step
                tokens = tokens_from_ids(self._tokenizer, ids)
                self._tokens_cache[tokens.prompt] = tokens
                self._ids_cache[key] = tokens.prompt
            texts.append(self._ids_cache[key])
        images_per_prompt = per_branch // prompts
        return Layout(branches, tuple(texts[i // images_per_prompt] for i in range(per_branch)))

    def _prompt_tokens(self, prompt: str) -> PromptTokens:
        if prompt not in self._tokens_cache:
            if self._tokenize is None:
                raise RuntimeError(f"no tokenization known for {prompt!r}")
            self._tokens_cache[prompt] = PromptTokens.from_pieces(prompt, self._tokenize(prompt))
        return self._tokens_cache[prompt]

    def _accumulator_for(self, layout: Layout, images: int, latent_size: tuple[int, int]) -> Accumulator:
        """The running sums for these prompts (new ones, replacing the old, when the prompts change)."""
        record = self._record
        height = round(latent_size[0] * self.image_scale[0])
        width = round(latent_size[1] * self.image_scale[1])
        if record is not None and record.prompts == layout.prompts and record.image_size == (height, width):
            return record.accumulator
        tokens = tuple(self._prompt_tokens(p) for p in layout.prompts)
        # padding="folded": one more column after the end token, holding all the padding summed (Accumulator.fold)
        kept = max(len(t.pieces) if self.padding is True else t.end_position + 1 + (self.padding == "folded") for t in tokens)
        accumulator = Accumulator(self.timestep_bins, images, kept, self.device, keep=self.keep, value_norm=self.value_norm, map_kind=self.map_kind,
                                  fold_padding=self.padding == "folded")
        self._record = _Record(layout.prompts, tokens, accumulator, (height, width))
        return accumulator

    # -- results --------------------------------------------------------------------------------------------

    @property
    def record(self) -> _Record:
        if self._record is None or not self._record.accumulator.sums:
            raise RuntimeError(
                "nothing was recorded: generate inside the `with trace(...)` block, with a conditional branch "
                "(guidance 0 evaluates only the unconditional one)"
            )
        return self._record

    @property
    def prompts(self) -> tuple[str, ...]:
        """The prompt of each traced image."""
        return self.record.prompts

    @property
    def image_count(self) -> int:
        """How many images have maps (prompts times images per prompt)."""
        return len(self.record.prompts)

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the maps: the generated image's size."""
        return self.record.image_size

    @property
    def bin_timesteps(self) -> list[list[float]]:
        """The timesteps that fell into each bin (bin 0: the noisiest)."""
        return [list(b) for b in self.record.accumulator.bin_timesteps]

    def resolutions(self) -> list[tuple[int, int]]:
        """Distinct (h, w) of the recorded cross-attention layers, finest first."""
        return self.record.accumulator.resolutions()

    def levels(self) -> dict[str, list[tuple[int, int]]]:
        """The finer and the coarser half of the resolutions, for ``resolutions="fine"`` / ``"coarse"``."""
        return coarse_fine(self.resolutions())

    @property
    def kept_tokens(self) -> int:
        """How many token positions were recorded (start through the last end token; all with padding)."""
        return self.record.accumulator.tokens

    def prompt_tokens(self, image_index: int = 0) -> PromptTokens:
        """This image's prompt with its words aligned to token positions."""
        return self._tokens(image_index)

    def tokens(self, image_index: int = 0) -> tuple[TokenPiece, ...]:
        """Every token position the text encoder saw for this image's prompt (specials included)."""
        return self._tokens(image_index).pieces

    def words(self, image_index: int = 0, *, punctuation: bool = False) -> list[str]:
        """The prompt's words, in order (punctuation marks only when asked)."""
        return [w.word.text for w in self._tokens(image_index).words if punctuation or not w.is_punctuation]

    def word_map(
        self,
        word: str | int,
        occurrence: int = 0,
        image_index: int = 0,
        *,
        locations: Sequence[str] | None = None,
        resolutions: Resolutions = None,
        timesteps: tuple[float, float] | None = None,
        normalized: bool = True,
        size: tuple[int, int] | None = None,
        layer_names: Sequence[str] | None = None,
        heads: Sequence[tuple[str, int]] | None = None,
    ) -> torch.Tensor:
        """(H, W) heat map of a word (DAAM Eq. 6; several pieces: their mean), min-max scaled to [0, 1].

        ``locations`` ('down', 'mid', 'up'), ``resolutions`` ('fine', 'coarse' or (h, w) list) and
        ``timesteps`` (lo, hi; whole bins) restrict the sum; ``size`` (H, W) upsamples to another size than
        the image's; ``normalized=False`` gives the raw sums. ``layer_names`` / ``heads`` ((layer, head) pairs)
        restrict it to some layers or heads of a ``keep="layers"`` / ``keep="heads"`` capture.
        """
        weights = self._word_weights(word, occurrence, image_index)
        heat = self._maps(weights, image_index, locations, resolutions, timesteps, per_bin=False, size=size,
                          layer_names=layer_names, heads=heads)
        return (normalize(heat) if normalized else heat).cpu()

    def word_maps_over_time(
        self,
        word: str | int,
        occurrence: int = 0,
        image_index: int = 0,
        *,
        locations: Sequence[str] | None = None,
        resolutions: Resolutions = None,
        size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """(bins, H, W): the word's map per timestep bin, each scaled to [0, 1] (bins without steps are 0)."""
        weights = self._word_weights(word, occurrence, image_index)
        return normalize(self._maps(weights, image_index, locations, resolutions, None, per_bin=True, size=size)).cpu()

    def token_map(
        self,
        position: int,
        image_index: int = 0,
        *,
        locations: Sequence[str] | None = None,
        resolutions: Resolutions = None,
        timesteps: tuple[float, float] | None = None,
        normalized: bool = True,
        size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """(H, W) map of one token position, special tokens included (the start token soaks up attention)."""
        weights = self._tokens(image_index).weights((position,), self.kept_tokens)
        heat = self._maps(weights, image_index, locations, resolutions, timesteps, per_bin=False, size=size)
        return (normalize(heat) if normalized else heat).cpu()

    def token_maps_over_time(
        self,
        position: int,
        image_index: int = 0,
        *,
        locations: Sequence[str] | None = None,
        resolutions: Resolutions = None,
        size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """(bins, H, W): one token position's map per timestep bin, each scaled to [0, 1]."""
        weights = self._tokens(image_index).weights((position,), self.kept_tokens)
        return normalize(self._maps(weights, image_index, locations, resolutions, None, per_bin=True, size=size)).cpu()

    def mask(self, word: str | int, tau: float = 0.4, occurrence: int = 0, image_index: int = 0, **filters: Any) -> torch.Tensor:
        """bool (H, W): where the word's min-max normalized map reaches ``tau`` (DAAM Eq. 7, see ``normalize``)."""
        return threshold(self.word_map(word, occurrence, image_index, **filters), tau)

    # -- helpers --------------------------------------------------------------------------------------------

    def _tokens(self, image_index: int) -> PromptTokens:
        record = self.record
        if not 0 <= image_index < len(record.tokens):
            raise IndexError(f"image_index {image_index} out of range: {len(record.tokens)} image(s) traced")
        return record.tokens[image_index]

    def _word_weights(self, word: str | int, occurrence: int, image_index: int) -> torch.Tensor:
        tokens = self._tokens(image_index)
        found = tokens.find(word, occurrence)
        return tokens.weights(found.positions, self.kept_tokens)

    def _maps(
        self,
        weights: torch.Tensor,
        image_index: int,
        locations: Sequence[str] | None,
        resolutions: Resolutions,
        timesteps: tuple[float, float] | None,
        *,
        per_bin: bool,
        size: tuple[int, int] | None = None,
        layer_names: Sequence[str] | None = None,
        heads: Sequence[tuple[str, int]] | None = None,
    ) -> torch.Tensor:
        accumulator = self.record.accumulator
        if isinstance(resolutions, str):
            levels = self.levels()
            if resolutions not in levels:
                raise ValueError(f"resolutions must be 'fine', 'coarse' or a list of (h, w), got {resolutions!r}")
            resolutions = levels[resolutions]
        groups = select_groups(accumulator.groups, locations, resolutions, layer_names, heads)
        if not groups:
            raise ValueError(f"no recorded layer in locations={locations!r}, resolutions={resolutions!r}")
        if per_bin:
            bins = list(range(accumulator.bins))
        else:
            lo, hi = timesteps or (float("-inf"), float("inf"))
            bins = [i for i, seen in enumerate(accumulator.bin_timesteps) if any(lo <= t <= hi for t in seen)]
            if not bins:
                raise ValueError(f"no traced step has a timestep in {timesteps}")
        return heat_maps(accumulator, groups, bins, image_index, weights, size or self.record.image_size, per_bin=per_bin)


def trace(
    target: Any,
    timestep_bins: int = 10,
    *,
    layers: str | tuple[str, ...] | None = None,
    timesteps: tuple[float, float] | None = None,
    padding: bool | str = False,
    keep: str = "summed",
    value_norm: bool = False,
    map_kind: str = "attention",
) -> Trace:
    """Record DAAM heat maps while ``target`` (a diffusers pipeline or a ModelAdapter) generates.

    ``layers``: glob patterns over layer names or 'down'/'mid'/'up' (default: every cross-attention layer);
    ``timesteps``: record only steps with lo <= t <= hi; ``padding``: also keep the padding positions ("folded":
    all of them summed into the position after the end token, ``token_map(end + 1)``);
    ``keep``: "summed" (default), "layers" or "heads" (each layer, or each layer's head, kept apart);
    ``value_norm``: weight each token's probability by the norm of its value vector (Kobayashi et al. 2020);
    ``map_kind``: "attention" (default) or, on SD3/Flux, "concept-output" (ConceptAttention, generator/daam/joint.py).
    """
    return Trace(target, timestep_bins, layers=layers, timesteps=timesteps, padding=padding, keep=keep,
                 value_norm=value_norm, map_kind=map_kind)
