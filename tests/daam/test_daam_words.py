"""DAAM words: real tokenizer pieces, multi-token words as the mean of their pieces, repeated words apart."""

from __future__ import annotations

import pytest
import torch

from generator.daam import trace
from generator.daam.words import tokens_from_ids
from generator.diffusion.sampling import sample

PROMPT = "cat chewing gum, halloween cat"


@pytest.fixture(scope="module")
def traced(tiny_sd):
    scheduler = tiny_sd.make_scheduler()
    scheduler.set_timesteps(2)
    latents = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(0))
    with trace(tiny_sd, timestep_bins=2) as tc, torch.inference_mode():
        sample(tiny_sd, tiny_sd.encode_prompts([PROMPT]), scheduler, latents, guidance=7.5)
    return tc


def _positions(tc, word_index):
    return [p.index for p in tc.tokens() if p.word_index == word_index]


def test_multi_token_word_is_the_mean_of_its_pieces(traced):
    for word_index, word in ((1, "chewing"), (4, "halloween")):
        positions = _positions(traced, word_index)
        assert len(positions) >= 2, f"the tiny tokenizer should split {word!r}"
        pieces = torch.stack([traced.token_map(p, normalized=False) for p in positions])
        torch.testing.assert_close(traced.word_map(word, normalized=False), pieces.mean(0), atol=1e-6, rtol=1e-5)


def test_repeated_words_are_separate(traced):
    first, second = _positions(traced, 0), _positions(traced, 5)
    assert len(first) == len(second) == 1 and first != second
    torch.testing.assert_close(traced.word_map("cat", 0, normalized=False), traced.token_map(first[0], normalized=False))
    torch.testing.assert_close(traced.word_map("Cat", occurrence=1, normalized=False), traced.token_map(second[0], normalized=False))
    assert not torch.allclose(traced.word_map("cat", 0), traced.word_map("cat", 1))
    with pytest.raises(KeyError, match="occurs 2"):
        traced.word_map("cat", occurrence=2)
    with pytest.raises(KeyError, match="not a word"):
        traced.word_map("dog")


def test_words_punctuation_and_special_tokens(traced):
    assert traced.words() == ["cat", "chewing", "gum", "halloween", "cat"]
    assert traced.words(punctuation=True) == ["cat", "chewing", "gum", ",", "halloween", "cat"]
    pieces = traced.tokens()
    assert pieces[0].special == "start" and pieces[0].word_index is None
    end = next(p for p in pieces if p.special == "end")
    assert traced.token_map(0).shape == traced.token_map(end.index).shape == (64, 64)
    assert traced.word_map(",").shape == (64, 64)
    with pytest.raises(KeyError, match="padding=True"):
        traced.token_map(end.index + 1)


def test_mask_is_tau_times_max(traced):
    heat = traced.word_map("gum")
    for tau in (0.0, 0.4, 1.0):
        assert torch.equal(traced.mask("gum", tau=tau), heat >= tau)
    assert traced.mask("gum", tau=1.0).sum() >= 1


def test_tokens_from_ids_recovers_words_of_a_pipeline_prompt(tiny_sd):
    ids = tiny_sd.tokenizer("A cat, chewing gum.", padding="max_length", max_length=77)["input_ids"]
    tokens = tokens_from_ids(tiny_sd.tokenizer, ids)
    assert [w.word.text for w in tokens.words] == ["a", "cat", ",", "chewing", "gum", "."]
    assert len(tokens.find("chewing").positions) >= 2
