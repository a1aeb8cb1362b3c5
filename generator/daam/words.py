"""DAAM stage: which token positions make up each word of a prompt (real tokenizer pieces, not spaces).

A word split into several pieces ("chewing" -> "c", "h", "e", "wing</w>") maps to all of them and its heat
map is their mean; a repeated word is addressed by occurrence; punctuation marks are words of their own;
start, end and padding tokens belong to no word but stay addressable by position.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from generator.models.base import TokenPiece
from generator.models.tokens import Word, split_words, token_pieces


@dataclass(frozen=True)
class WordTokens:
    """One word of the prompt and the token positions of its pieces."""

    word: Word
    positions: tuple[int, ...]

    @property
    def is_punctuation(self) -> bool:
        """True for a word with no letter or digit."""
        return not any(c.isalnum() for c in self.word.text)


@dataclass(frozen=True)
class PromptTokens:
    """A prompt's words aligned with the pieces its text encoder saw."""

    prompt: str
    pieces: tuple[TokenPiece, ...]
    words: tuple[WordTokens, ...]

    @staticmethod
    def from_pieces(prompt: str, pieces: list[TokenPiece]) -> PromptTokens:
        """Group pieces by their word index (words whose pieces were truncated away get none)."""
        words = []
        for word in split_words(prompt):
            positions = tuple(p.index for p in pieces if p.word_index == word.index)
            words.append(WordTokens(word, positions))
        return PromptTokens(prompt, tuple(pieces), tuple(words))

    @property
    def end_position(self) -> int:
        """Position of the end token (the last one the recorder keeps by default)."""
        return next((p.index for p in self.pieces if p.special == "end"), len(self.pieces) - 1)

    def find(self, word: str | int, occurrence: int = 0) -> WordTokens:
        """A word by text (case-insensitive) and occurrence, or by its index among the prompt's words."""
        if isinstance(word, int):
            if not 0 <= word < len(self.words):
                raise KeyError(f"word index {word} out of range: the prompt has {len(self.words)} words")
            found = self.words[word]
        else:
            matches = [w for w in self.words if w.word.text.lower() == word.strip().lower()]
            if not matches:
                known = ", ".join(repr(w.word.text) for w in self.words if not w.is_punctuation)
                raise KeyError(f"{word!r} is not a word of {self.prompt!r} (words: {known})")
            if not 0 <= occurrence < len(matches):
                raise KeyError(f"{word!r} occurs {len(matches)} time(s) in {self.prompt!r}; occurrence {occurrence} does not exist")
            found = matches[occurrence]
        if not found.positions:
            raise KeyError(f"{found.word.text!r} was cut off by the text encoder's token limit; it has no attention")
        return found

    def weights(self, positions: tuple[int, ...], kept_tokens: int) -> torch.Tensor:
        """(kept_tokens,) weights averaging the given positions (the mean of a word's pieces)."""
        weights = torch.zeros(kept_tokens)
        for position in positions:
            if position >= kept_tokens:
                raise KeyError(f"token position {position} was not recorded (kept {kept_tokens}; trace with padding=True)")
            weights[position] = 1.0 / len(positions)
        return weights


def tokens_from_ids(tokenizer: object, ids: list[int]) -> PromptTokens:
    """Words and pieces of a prompt known only by its token ids (a diffusers pipeline called directly).

    The text is decoded (CLIP lower-cases it and spaces out punctuation); when re-tokenizing it does not
    reproduce the ids, pieces are grouped into words by CLIP's end-of-word marker instead.
    """
    special_ids = set(getattr(tokenizer, "all_special_ids", []))
    text = tokenizer.decode([i for i in ids if i not in special_ids], skip_special_tokens=True).strip()
    pieces = token_pieces(tokenizer, text, len(ids))
    if [p.token_id for p in pieces] == list(ids):
        return PromptTokens.from_pieces(text, pieces)
    return _grouped_by_word_end(tokenizer, ids)


def _grouped_by_word_end(tokenizer: object, ids: list[int]) -> PromptTokens:
    """Fallback alignment: a word ends at a piece ending in '</w>' (CLIP's BPE convention)."""
    texts = tokenizer.convert_ids_to_tokens(list(ids))
    end_id = tokenizer.eos_token_id
    first_end = ids.index(end_id, 1) if end_id in ids[1:] else len(ids)
    pieces, word_texts, current, word_index = [], [], "", 0
    for index, (token_id, text) in enumerate(zip(ids, texts)):
        if index == 0 and token_id == tokenizer.bos_token_id:
            pieces.append(TokenPiece(index, token_id, text, "start", None))
            continue
        if index >= first_end:
            pieces.append(TokenPiece(index, token_id, text, "end" if index == first_end else "pad", None))
            continue
        pieces.append(TokenPiece(index, token_id, text, "", word_index))
        current += text.removesuffix("</w>")
        if text.endswith("</w>") or index + 1 == first_end:
            word_texts.append(current)
            current, word_index = "", word_index + 1
    prompt = " ".join(word_texts)
    seen: dict[str, int] = {}
    words, start = [], 0
    for index, text in enumerate(word_texts):
        positions = tuple(p.index for p in pieces if p.word_index == index)
        words.append(WordTokens(Word(index, text, start, start + len(text), seen.get(text.lower(), 0)), positions))
        seen[text.lower()] = seen.get(text.lower(), 0) + 1
        start += len(text) + 1
    return PromptTokens(prompt, tuple(pieces), tuple(words))
