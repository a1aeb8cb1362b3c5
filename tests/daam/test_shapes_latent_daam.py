"""DAAM on the shipped latent model: maps at its latent attention resolutions (16x16 and 8x8), upscaled to the
image as the paper does, equal to the hand-computed Eq. 6 reference."""

from __future__ import annotations

import torch

from generator.daam import trace
from generator.diffusion.sampling import sample
from generator.models.registry import load_model
from generator.models.tokens import split_words

PROMPT = "a small green triangle on the left"


def test_latent_model_word_maps_match_hand_computed_attention(hand_reference, corr, make_noise):
    model = load_model("embedded:shapes-latent", device="cpu", dtype="fp32")
    reference = hand_reference(model.denoiser, (128, 128), (16, 16), guided=True)
    scheduler = model.make_scheduler()
    scheduler.set_timesteps(3)
    with trace(model, timestep_bins=3) as tc, reference.hooked(), torch.inference_mode():
        sample(model, model.encode_prompts([PROMPT]), scheduler, make_noise((1, 4, 16, 16)) * scheduler.init_noise_sigma,
               guidance=3.0)
    assert tc.image_size == (128, 128)
    pieces = model.tokenize(PROMPT)
    for word in split_words(PROMPT):
        where = [p.index for p in pieces if p.word_index == word.index]
        ours = tc.word_map(word.text, normalized=False)
        assert ours.shape == (128, 128)
        assert corr(ours, reference.word_map(where)) >= 0.999, word.text
        torch.testing.assert_close(ours, reference.word_map(where), rtol=1e-3, atol=1e-4)
