"""Experiments stage: the text view, what the text encoder really sees and what it makes of it.

The tokenizer's own pieces (start/end tokens, padding to the encoder's length, truncation) come from
``adapter.tokenize``; the embeddings are the conditional branch of ``adapter.encode_prompts``, the very
tensors the denoiser's cross-attention reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from generator.models.base import ModelAdapter, TokenPiece
from generator.models.tokens import split_words

MAX_SIMILARITY_TOKENS = 40  # the heat map covers start, the prompt's pieces, end and the first padding token


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
