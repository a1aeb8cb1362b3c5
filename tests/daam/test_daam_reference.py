"""DAAM against a hand-materialised reference, and tracing leaves the model's output and processors alone."""

from __future__ import annotations

import pytest
import torch

from generator.daam import trace
from generator.daam.capture import RecordingProcessor
from generator.diffusion.sampling import sample
from generator.models.tokens import split_words

PROMPT = "a cat chewing gum on halloween"


def _word_positions(adapter, prompt):
    pieces = adapter.tokenize(prompt)
    return {w.text: [p.index for p in pieces if p.word_index == w.index] for w in split_words(prompt)}


def _sample_adapter(adapter, prompts, latents, guidance, steps=2):
    """Our own sampling loop (announces the batch layout) from fixed latents."""
    scheduler = adapter.make_scheduler()
    scheduler.set_timesteps(steps)
    with torch.inference_mode():
        return sample(adapter, adapter.encode_prompts(prompts), scheduler, latents * scheduler.init_noise_sigma, guidance=guidance)


@pytest.mark.parametrize(  # both entry points, both batch layouts ([uncond, cond] and cond only)
    "path, guidance",
    [("pipeline", 7.5), ("adapter", 1.0)],
)
def test_word_maps_match_hand_computed_attention(tiny_sd, hand_reference, corr, make_noise, path, guidance):
    latents = make_noise((1, 4, 8, 12))
    reference = hand_reference(tiny_sd.denoiser, (64, 96), (8, 12), guided=guidance > 1)
    with trace(tiny_sd if path == "adapter" else tiny_sd.pipeline, timestep_bins=2) as tc, reference.hooked():
        if path == "adapter":
            _sample_adapter(tiny_sd, [PROMPT], latents, guidance)
        else:
            tiny_sd.pipeline(PROMPT, num_inference_steps=2, guidance_scale=guidance, latents=latents,
                             height=64, width=96, output_type="latent")
    assert tc.image_size == (64, 96) and tc.image_count == 1
    positions = _word_positions(tiny_sd, PROMPT)
    assert tc.words() == list(positions)
    for word, where in positions.items():
        ours, theirs = tc.word_map(word, normalized=False), reference.word_map(where)
        assert ours.shape == (64, 96)
        assert corr(ours, theirs) >= 0.999, word
        torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-4)
        normalized = tc.word_map(word)
        assert float(normalized.min()) >= 0 and float(normalized.max()) == pytest.approx(1.0)


def test_sdxl_word_maps_match_hand_computed_attention(tiny_sdxl, hand_reference, corr, make_noise):
    reference = hand_reference(tiny_sdxl.denoiser, (64, 64), (8, 8), guided=True)
    with trace(tiny_sdxl.pipeline, timestep_bins=2) as tc, reference.hooked():
        tiny_sdxl.pipeline(PROMPT, num_inference_steps=2, latents=make_noise((1, 4, 8, 8)), output_type="latent")
    for word, where in _word_positions(tiny_sdxl, PROMPT).items():
        assert corr(tc.word_map(word, normalized=False), reference.word_map(where)) >= 0.999, word


def test_tracing_does_not_change_the_output(tiny_sd, make_noise):
    pipe, latents = tiny_sd.pipeline, make_noise((1, 4, 8, 8), seed=3)
    plain = pipe(PROMPT, num_inference_steps=2, latents=latents, output_type="pt").images
    with trace(pipe):
        traced = pipe(PROMPT, num_inference_steps=2, latents=latents, output_type="pt").images
    assert (plain - traced).abs().max() <= 1e-5
    plain_latents = _sample_adapter(tiny_sd, [PROMPT], latents, 7.5, steps=2)
    with trace(tiny_sd):
        traced_latents = _sample_adapter(tiny_sd, [PROMPT], latents, 7.5, steps=2)
    assert (plain_latents - traced_latents).abs().max() <= 1e-5


def test_processors_and_hooks_restored_even_when_the_pipeline_raises(tiny_sd):
    pipe, unet = tiny_sd.pipeline, tiny_sd.denoiser
    before = dict(unet.attn_processors)

    def fail(pipeline, step, timestep, tensors):
        raise RuntimeError("stopped on purpose")

    with pytest.raises(RuntimeError, match="stopped on purpose"):
        with trace(pipe):
            during = unet.attn_processors
            for name, processor in during.items():
                if ".attn2." in name:
                    assert isinstance(processor, RecordingProcessor) and processor.original is before[name]
                else:
                    assert processor is before[name]  # self-attention keeps its SDPA processor object
            assert unet._forward_pre_hooks and pipe.text_encoder._forward_pre_hooks
            pipe(PROMPT, num_inference_steps=3, callback_on_step_end=fail, output_type="latent")
    after = unet.attn_processors
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
    assert not unet._forward_pre_hooks and not unet._forward_hooks and not pipe.text_encoder._forward_pre_hooks


def test_pixel_space_if_pipeline_matches_hand_computed_attention(hand_reference, corr, make_noise):
    """DeepFloyd IF (pixel space, text keys added to the image's keys), a pipeline without the CFG property."""
    from generator.models import load_model

    adapter = load_model("testing:tiny-if", device="cpu", dtype="fp32")
    reference = hand_reference(adapter.denoiser, (32, 32), (32, 32), guided=True)
    with trace(adapter.pipeline, timestep_bins=2) as tc, reference.hooked():
        adapter.pipeline("a red dog", num_inference_steps=2, output_type="pt", height=32, width=32)
    assert tc.image_count == 1 and tc.image_size == (32, 32) and tc.words() == ["a", "red", "dog"]
    for word, where in _word_positions(adapter, "a red dog").items():
        assert corr(tc.word_map(word, normalized=False), reference.word_map(where)) >= 0.999, word


def test_pixel_space_shapes_model(make_noise):
    """The built-in shapes model: maps at the pixel resolution, output untouched."""
    from generator.models import load_model

    adapter = load_model("embedded:shapes", device="cpu", dtype="fp32")
    latents = make_noise((1, 3, 32, 32))
    plain = _sample_adapter(adapter, ["a red circle"], latents, 3.0, steps=1)
    with trace(adapter, timestep_bins=1) as tc:
        traced = _sample_adapter(adapter, ["a red circle"], latents, 3.0, steps=1)
    assert (plain - traced).abs().max() <= 1e-5
    assert tc.word_map("circle").shape == (32, 32) and tc.words() == ["a", "red", "circle"]
