"""Experiments stage: the text view, what the text encoder really sees and what it makes of it.

The tokenizer's own pieces (start/end tokens, padding to the encoder's length, truncation) come from
``adapter.tokenize``; the embeddings are the conditional branch of ``adapter.encode_prompts``, the very
tensors the denoiser's cross-attention reads.

Models with two or three text encoders (SDXL: two CLIPs; SD3: two CLIPs and T5; Flux: CLIP and T5) also get
each encoder's own pieces (``encoder_tokens``): the encoders have different tokenizers and lengths, and each
feeds the denoiser in its own way (tokens it attends to, or one pooled vector for the whole prompt).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from generator.models.base import ModelAdapter, TokenPiece
from generator.models.tokens import split_words, token_pieces

MAX_SIMILARITY_TOKENS = 40
# (tokenizer, text encoder) attribute pairs of diffusers pipelines, in their order
ENCODER_SLOTS = (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2"), ("tokenizer_3", "text_encoder_3"))
# what the denoiser takes from each encoder, by pipeline class (the pipelines' encode_prompt): "tokens" (a
# sequence it attends to), "pooled" (one vector for the whole prompt), or both; unlisted pipelines: "tokens"
ENCODER_ROLES: dict[str, dict[str, str]] = {
    "StableDiffusion3Pipeline": {"text_encoder": "tokens+pooled", "text_encoder_2": "tokens+pooled",
                                 "text_encoder_3": "tokens"},
    "FluxPipeline": {"text_encoder": "pooled", "text_encoder_2": "tokens"},
    "StableDiffusionXLPipeline": {"text_encoder": "tokens", "text_encoder_2": "tokens+pooled"},
}  # the heat map covers start, the prompt's pieces, end and the first padding token


@dataclass(frozen=True)
class TextView:
    """Tokenization and a compact summary of the text embeddings of one prompt."""

    pieces: tuple[TokenPiece, ...]
    truncated: tuple[str, ...]  # words that did not fit into the encoder's length
    norms: tuple[float, ...]  # L2 norm of each position's embedding, padding included
    similarity_tokens: tuple[int, ...]  # positions in the heat map
    similarity: torch.Tensor  # (n, n) cosine similarity of those positions' embeddings
    dim: int


def text_view(adapter: ModelAdapter, prompt: str) -> TextView:
    """Tokenize and encode ``prompt`` with the model's own tokenizer and text encoder."""
    pieces = tuple(adapter.tokenize(prompt))
    with torch.inference_mode():
        hidden = adapter.encode_prompts([prompt]).cond.hidden[0].float().cpu()  # (tokens, dim)
    count = min(len(pieces), hidden.shape[0])
    hidden = hidden[:count]
    seen_words = {p.word_index for p in pieces if p.word_index is not None}
    words = split_words(prompt)
    last_seen = max(seen_words, default=-1)
    truncated = tuple(w.text for w in words if w.index > last_seen)
    shown = [p.index for p in pieces[:count] if p.special != "pad"]
    first_pad = next((p.index for p in pieces[:count] if p.special == "pad"), None)
    if first_pad is not None:
        shown.append(first_pad)
    shown = shown[:MAX_SIMILARITY_TOKENS]
    unit = torch.nn.functional.normalize(hidden[shown].double(), dim=1)
    return TextView(
        pieces=pieces,
        truncated=truncated,
        norms=tuple(float(v) for v in hidden.double().norm(dim=1)),
        similarity_tokens=tuple(shown),
        similarity=(unit @ unit.T).float(),
        dim=int(hidden.shape[1]),
    )


@dataclass(frozen=True)
class EncoderTokens:
    """One of several text encoders: its own tokenizer's pieces of the prompt and what the denoiser takes from it."""

    slot: str  # the pipeline attribute, e.g. "text_encoder_3"
    encoder_class: str  # e.g. "T5EncoderModel"
    family: str  # "clip", "t5" or "other"
    role: str  # "tokens", "pooled" or "tokens+pooled"
    max_length: int
    pieces: tuple[TokenPiece, ...]  # padding included
    shown: bool  # the encoder whose pieces the main text view and the word maps use


def _family(encoder: object) -> str:
    """clip, t5 or other, from the encoder's transformers model_type."""
    model_type = getattr(getattr(encoder, "config", None), "model_type", "")
    return "clip" if model_type.startswith("clip") else "t5" if model_type.endswith("t5") else "other"


def encoder_tokens(adapter: ModelAdapter, prompt: str) -> tuple[EncoderTokens, ...]:
    """Every text encoder's pieces of ``prompt`` where the model has two or more encoders (else empty).

    The encoders live on the adapter's diffusers pipeline (as ``bake.prompt.tokens.text_encoders`` finds them);
    a T5 reads the adapter's ``text_tokens`` positions (SD3 256, Flux 512), a CLIP its tokenizer's 77.
    """
    pipeline = getattr(adapter, "pipeline", None)
    slots = [(getattr(pipeline, t, None), getattr(pipeline, e, None), e) for t, e in ENCODER_SLOTS]
    slots = [(tokenizer, encoder, name) for tokenizer, encoder, name in slots if tokenizer is not None and encoder is not None]
    if len(slots) < 2:
        return ()
    roles = ENCODER_ROLES.get(type(pipeline).__name__, {})
    main = getattr(adapter, "tokenizer", None)
    result = []
    for tokenizer, encoder, name in slots:
        family = _family(encoder)
        length = int(getattr(adapter, "text_tokens", 0) or 0) if family == "t5" else 0
        length = length or min(int(tokenizer.model_max_length), 512)
        result.append(EncoderTokens(slot=name, encoder_class=type(encoder).__name__, family=family,
                                    role=roles.get(name, "tokens"), max_length=length,
                                    pieces=tuple(token_pieces(tokenizer, prompt, length)), shown=tokenizer is main))
    return tuple(result)
