"""DAAM stage: word maps from joint attention (SD3's MMDiT blocks, Flux's double- and single-stream blocks).

Diffusion transformers have no cross-attention: image and text tokens are concatenated and attend together,
softmax(Q K^T / sqrt(d)) over *all* keys (Esser et al. 2024, Fig. 2). The part a word map needs is the block of
probabilities from image queries to text keys, each row normalised over every key as the model computes it
(so the maps keep the share of attention that goes to the text, as DAAM's cross-attention maps do). It is
summed over heads and accumulated per layer group and timestep bin exactly like cross-attention (DAAM Eq. 6,
``generator.daam.aggregate``).

Token layout: SD3 puts the image first, then the text (CLIP-L/G padded to T5's width, then T5); Flux puts
the text (T5) first and applies rotary positions to queries and keys; Flux's single-stream blocks see one
sequence [text, image] with no separate text input, so the text length is the rest after the image tokens.

The recorder wraps the layer's original processor, whose output is always what the layer returns; it only
recomputes the queries and keys from the layer's own public modules (projections, q/k norms, rotary
embedding) and never holds the (image + text)^2 matrix: image queries are taken ``chunk_size`` at a time.
Installed and restored by ``generator.daam.capture.capture``, through ``set_attn_processor``.

A second map kind, ``"concept-output"`` (``trace(..., map_kind="concept-output")``, read from the accumulator at
record time), is ConceptAttention's output-space variant (Helbling et al. 2025): the same recorder calls the
original processor first and compares the image tokens' attention outputs with the prompt tokens' outputs
(``output_space_maps``); the layer's output is returned untouched. SD3's last block (``context_pre_only``) gives
back the text tokens' outputs without their output projection, so they are not in the image outputs' space: that
layer records nothing for this kind.
"""

from __future__ import annotations

from typing import Callable

import torch

from generator.daam.aggregate import LayerGroup, grid_size

CHUNK_SIZE = 1024  # image queries per chunk: (batch, heads, 1024, image + text) scores at a time
JOINT, DOUBLE, SINGLE = "joint", "double", "single"  # SD3 MMDiT; Flux double-stream; Flux single-stream
ATTENTION, CONCEPT_OUTPUT = "attention", "concept-output"  # the word-map kinds (Accumulator.map_kind)
MAP_KINDS = (ATTENTION, CONCEPT_OUTPUT)


def joint_attention_layers(denoiser: torch.nn.Module) -> dict[str, str]:
    """Processor name -> kind ('joint', 'double', 'single') for every layer where image tokens attend to text.

    SD3.5's extra self-attention (``attn2``, no text projections) is left out: its keys hold no text.
    """
    processors = getattr(denoiser, "attn_processors", None)
    if processors is None:
        return {}
    layers = {}
    for name in processors:
        module = denoiser.get_submodule(name.removesuffix(".processor"))
        flux = type(module).__name__ == "FluxAttention"
        text_projections = getattr(module, "added_kv_proj_dim", None) is not None
        if flux and text_projections:
            layers[name] = DOUBLE
        elif text_projections and getattr(module, "context_pre_only", None) is not None:
            # MMDiT blocks set context_pre_only (True in the last block); DeepFloyd IF's added-KV cross-attention
            # leaves it None and stays with the cross-attention recorder
            layers[name] = JOINT
        elif flux and "single_transformer_blocks" in name:
            layers[name] = SINGLE
    return layers


def checked_map_kind(map_kind: str, denoiser: torch.nn.Module | None = None) -> str:
    """``map_kind`` if it is one of MAP_KINDS (and, given the denoiser, one it has the layers for); else ValueError."""
    if map_kind not in MAP_KINDS:
        raise ValueError(f"map_kind must be one of {', '.join(MAP_KINDS)}, got {map_kind!r}")
    if denoiser is not None and map_kind != ATTENTION and not joint_attention_layers(denoiser):
        raise ValueError(f"map_kind {map_kind!r} reads joint attention (SD3, Flux); {type(denoiser).__name__} has "
                         "cross-attention: use map_kind 'attention'")
    return map_kind


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(batch, tokens, heads * d) -> (batch, tokens, heads, d)."""
    return x.unflatten(-1, (heads, x.shape[-1] // heads))


def _norm(norm: torch.nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    return x if norm is None else norm(x)


def queries_and_keys(attn: torch.nn.Module, kind: str, hidden_states: torch.Tensor, context: torch.Tensor | None,
                     rotary: object, text_tokens: int) -> tuple[torch.Tensor, torch.Tensor, slice]:
    """The layer's image queries (batch, heads, image, d), all its keys (batch, heads, keys, d), the text keys.

    As JointAttnProcessor2_0 (SD3) and FluxAttnProcessor compute them: projections, per-head RMS norms, and for
    Flux the rotary embedding over the whole [text, image] sequence.
    """
    heads = attn.heads
    query = _norm(attn.norm_q, _heads(attn.to_q(hidden_states), heads))  # (batch, tokens, heads, d)
    key = _norm(attn.norm_k, _heads(attn.to_k(hidden_states), heads))
    if kind == SINGLE:  # one sequence [text, image]
        text, image = slice(0, text_tokens), slice(text_tokens, hidden_states.shape[1])
    else:
        text_key = _norm(attn.norm_added_k, _heads(attn.add_k_proj(context), heads))
        text_query = _norm(attn.norm_added_q, _heads(attn.add_q_proj(context), heads))
        if kind == JOINT:  # SD3: [image, text]
            query, key = torch.cat([query, text_query], 1), torch.cat([key, text_key], 1)
            image, text = slice(0, hidden_states.shape[1]), slice(hidden_states.shape[1], key.shape[1])
        else:  # Flux double-stream: [text, image]
            query, key = torch.cat([text_query, query], 1), torch.cat([text_key, key], 1)
            text, image = slice(0, context.shape[1]), slice(context.shape[1], key.shape[1])
    if rotary is not None:
        from diffusers.models.embeddings import apply_rotary_emb

        query = apply_rotary_emb(query, rotary, sequence_dim=1)
        key = apply_rotary_emb(key, rotary, sequence_dim=1)
    return query[:, image].transpose(1, 2), key.transpose(1, 2), text


def image_to_text_probabilities(query: torch.Tensor, key: torch.Tensor, text: slice, kept: int,
                                chunk_size: int = CHUNK_SIZE) -> torch.Tensor:
    """(batch, image, kept): softmax(Q K^T / sqrt(d)) over all keys, text columns, summed over heads.

    ``query`` (batch, heads, image, d), ``key`` (batch, heads, keys, d); computed ``chunk_size`` image queries
    at a time in float32, so at most (batch, heads, chunk, keys) scores exist at once.
    """
    scale = query.shape[-1] ** -0.5  # scaled_dot_product_attention's default, as both processors use
    keys = key.float().transpose(-1, -2)  # (batch, heads, d, keys)
    columns = slice(text.start, text.start + kept)
    parts = []
    for start in range(0, query.shape[2], chunk_size):
        # the query is scaled before the product (a chunk of d columns, not of all keys), and the chunk's scores are
        # dropped before the next chunk's exist: at most two chunk-sized tensors at once (the scores, their softmax)
        scores = torch.matmul(query[:, :, start : start + chunk_size].float() * scale, keys)  # (b, h, c, keys)
        parts.append(scores.softmax(dim=-1)[..., columns].sum(dim=1))  # (batch, c, kept)
        del scores
    return torch.cat(parts, dim=1)


class JointRecordingProcessor:
    """Delegates to the original processor and records image -> text probabilities of the conditional rows."""

    def __init__(self, original: object, name: str, kind: str, patch_size: int, current_step: Callable[[], object],
                 chunk_size: int = CHUNK_SIZE):
        self.original = original
        self.name = name
        self.kind = kind
        self.patch_size = patch_size
        self.current_step = current_step
        self.chunk_size = chunk_size

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, image_rotary_emb=None,
                 **kwargs):
        step = self.current_step()
        record = step is not None and (encoder_hidden_states is not None or self.kind == SINGLE)
        concept = record and getattr(step.accumulator, "map_kind", ATTENTION) == CONCEPT_OUTPUT
        if record and not concept:
            with torch.no_grad():
                self._record(step, attn, hidden_states, encoder_hidden_states, image_rotary_emb)
        extra = (image_rotary_emb,) if image_rotary_emb is not None else ()  # Flux's processors take it positionally
        output = self.original(attn, hidden_states, encoder_hidden_states, attention_mask, *extra, **kwargs)
        if concept and not (self.kind == JOINT and attn.context_pre_only):
            with torch.no_grad():
                self._record_outputs(step, hidden_states, encoder_hidden_states, output)
        return output

    def _text_tokens(self, step, hidden_states, context) -> int:
        """Text tokens of this call: the context's, or (single-stream) the sequence's beyond the image tokens."""
        latent_height, latent_width = step.latent_size
        image_tokens = (latent_height // self.patch_size) * (latent_width // self.patch_size)
        return hidden_states.shape[1] - image_tokens if self.kind == SINGLE else context.shape[1]

    def _record_outputs(self, step, hidden_states, context, output) -> None:
        """Add this layer's output-space concept maps (ConceptAttention) of the conditional rows to its group."""
        text_tokens = self._text_tokens(step, hidden_states, context)
        image, text = split_outputs(self.kind, output, text_tokens)
        kept = min(step.accumulator.tokens, text_tokens)
        maps = output_space_maps(image[step.rows], text[step.rows], kept)  # (images, h*w, kept)
        if kept < step.accumulator.tokens:
            maps = torch.nn.functional.pad(maps, (0, step.accumulator.tokens - kept))
        height, width = grid_size(image.shape[1], *step.latent_size)
        step.accumulator.add(LayerGroup(self.kind, height, width), step.bin_index, maps)

    def _record(self, step, attn, hidden_states, context, rotary) -> None:
        """Add this layer's head-summed image -> text probabilities to its group (location = the block kind)."""
        rows = step.rows
        latent_height, latent_width = step.latent_size
        text_tokens = self._text_tokens(step, hidden_states, context)
        query, key, text = queries_and_keys(attn, self.kind, hidden_states[rows],
                                            None if context is None else context[rows], rotary, text_tokens)
        kept = min(step.accumulator.tokens, text.stop - text.start)
        probabilities = image_to_text_probabilities(query, key, text, kept, self.chunk_size)  # (images, h*w, kept)
        if kept < step.accumulator.tokens:
            probabilities = torch.nn.functional.pad(probabilities, (0, step.accumulator.tokens - kept))
        height, width = grid_size(query.shape[2], latent_height, latent_width)
        step.accumulator.add(LayerGroup(self.kind, height, width), step.bin_index, probabilities)


def split_outputs(kind: str, output: object, text_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A joint layer's attention output as (image (batch, image, dim), text (batch, text, dim)).

    SD3's JointAttnProcessor2_0 and Flux's double-stream processor return (image, text) after their output
    projections; Flux's single-stream processor returns the one sequence [text, image].
    """
    if kind == SINGLE:
        return output[:, text_tokens:], output[:, :text_tokens]
    image, text = output
    return image, text


def output_space_maps(image_output: torch.Tensor, concept_output: torch.Tensor, kept: int) -> torch.Tensor:
    """(batch, image, kept): ConceptAttention's output-space maps, softmax over concepts of o_x . o_c.

    Helbling et al. 2025 (ConceptAttention, Sec. 3, output-space variant): each image token's attention output
    o_x is compared by dot product with each concept's attention output o_c of the same layer, and the
    similarities are normalised over the concepts. Here the concepts are the first ``kept`` text tokens of the
    prompt (the words a map is asked for), not a separate concept stream run beside the prompt: the maps read
    the layer's own outputs and leave them unchanged. Dot products in float32.
    """
    concepts = concept_output[:, :kept].float()  # (batch, kept, dim)
    scores = torch.matmul(image_output.float(), concepts.transpose(1, 2))  # (batch, image, kept)
    return scores.softmax(dim=-1)
