"""Models stage: real tokenizer pieces of a prompt, aligned with the prompt's words.

Words are runs of letters/digits or single punctuation marks, numbered in order; a repeated word gets one
index per occurrence. Pieces map to words through the tokenizer's character offsets, so a word split into
several pieces ("chewing" -> "c", "h", "e", "wing</w>") keeps every piece's word index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from generator.models.base import TokenPiece

WORD_PATTERN = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class Word:
    """One word of a prompt with its character span and its occurrence number among equal words."""

    index: int
    text: str
    start: int
    end: int
    occurrence: int


def split_words(prompt: str) -> list[Word]:
    """The prompt's words in order (case kept, punctuation as separate words)."""
    seen: dict[str, int] = {}
    words = []
    for index, match in enumerate(WORD_PATTERN.finditer(prompt)):
        key = match.group().lower()
        words.append(Word(index, match.group(), match.start(), match.end(), seen.get(key, 0)))
        seen[key] = seen.get(key, 0) + 1
    return words


def token_pieces(tokenizer: object, prompt: str, max_length: int) -> list[TokenPiece]:
    """Every position the text encoder sees, padding included, with its word index (None for specials)."""
    encoded = tokenizer(
        prompt,
        padding="max_length",
        max_length=max_length,
        truncation=True,
        return_offsets_mapping=True,
    )
    ids = list(encoded["input_ids"])
    pieces_text = tokenizer.convert_ids_to_tokens(ids)
    words = split_words(prompt)
    end_id = tokenizer.eos_token_id
    first = 1 if ids and ids[0] == tokenizer.bos_token_id else 0  # CLIP may pad with its end token; T5 has no start
    first_end = ids.index(end_id, first) if end_id in ids[first:] else len(ids)
    pieces = []
    for index, (token_id, text, (start, end)) in enumerate(zip(ids, pieces_text, encoded["offset_mapping"])):
        if index == 0 and token_id == tokenizer.bos_token_id:
            special = "start"
        elif index == first_end:
            special = "end"
        elif index > first_end:
            special = "pad"
        else:
            special = ""
        word_index = None
        while start < end and prompt[start].isspace():  # sentencepiece pieces ('▁red') start at the space
            start += 1
        if not special:
            word_index = next((w.index for w in words if w.start <= start < w.end), None)
        pieces.append(TokenPiece(index, int(token_id), text, special, word_index))
    return pieces


def truncated_words(tokenizer: object, prompt: str, max_length: int) -> list[str]:
    """Words that would not fit in the text encoder's ``max_length`` tokens (start and end included)."""
    ids = tokenizer(prompt, truncation=False, return_offsets_mapping=True)
    offsets = ids["offset_mapping"]
    if len(offsets) <= max_length:
        return []
    last_kept_char = offsets[max_length - 2][1]  # the final slot is the end token
    return [w.text for w in split_words(prompt) if w.end > last_kept_char]
