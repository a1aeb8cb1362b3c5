"""DAAM per image: CFG on and off, two prompts, two images per prompt, non-square; each image its own maps."""

from __future__ import annotations

import pytest
import torch

from generator.daam import trace
from generator.diffusion.sampling import sample

PROMPTS = ["a cat chewing gum", "halloween dog"]
STEPS = 2


def _pipeline_maps(pipe, prompts, latents, guidance, images_per_prompt=1):
    with trace(pipe, timestep_bins=STEPS) as tc:
        pipe(prompts, num_inference_steps=STEPS, guidance_scale=guidance, latents=latents,
             num_images_per_prompt=images_per_prompt, height=64, width=96, output_type="latent")
    return tc


@pytest.mark.parametrize("guidance", [7.5, 1.0])
def test_pipeline_batch_gives_each_image_its_own_maps(tiny_sd, make_noise, guidance):
    pipe = tiny_sd.pipeline
    latents = make_noise((4, 4, 8, 12), seed=1)
    tc = _pipeline_maps(pipe, PROMPTS, latents, guidance, images_per_prompt=2)
    assert tc.image_count == 4 and tc.image_size == (64, 96)
    assert tc.prompts == (PROMPTS[0], PROMPTS[0], PROMPTS[1], PROMPTS[1])  # diffusers: images of a prompt in a row
    assert tc.words(0) == ["a", "cat", "chewing", "gum"] and tc.words(3) == ["halloween", "dog"]
    assert tc.word_maps_over_time("dog", image_index=2).shape == (STEPS, 64, 96)
    assert tc.mask("cat", tau=0.4, image_index=1).dtype == torch.bool
    with pytest.raises(IndexError):
        tc.word_map("dog", image_index=4)
    # two images of the same prompt from different noise: different maps (not merged into one)
    assert not torch.allclose(tc.word_map("cat", image_index=0), tc.word_map("cat", image_index=1), atol=1e-3)
    for image_index, word in ((3, "halloween"),):  # second image of the second prompt
        single = _pipeline_maps(pipe, PROMPTS[image_index // 2], latents[image_index : image_index + 1], guidance)
        torch.testing.assert_close(tc.word_map(word, image_index=image_index), single.word_map(word), atol=1e-4, rtol=1e-3)
        torch.testing.assert_close(
            tc.word_maps_over_time(word, image_index=image_index), single.word_maps_over_time(word), atol=1e-4, rtol=1e-3
        )


def _adapter_run(adapter, prompts, latents, guidance, repeat=1):
    scheduler = adapter.make_scheduler()
    scheduler.set_timesteps(STEPS)
    with trace(adapter, timestep_bins=STEPS) as tc, torch.inference_mode():
        embeddings = adapter.encode_prompts(prompts).repeat(repeat)
        sample(adapter, embeddings, scheduler, latents * scheduler.init_noise_sigma, guidance=guidance)
    return tc


def test_adapter_batch_matches_single_runs(tiny_sd, make_noise):
    latents = make_noise((4, 4, 8, 12), seed=2)
    tc = _adapter_run(tiny_sd, PROMPTS, latents, 7.5, repeat=2)
    assert tc.image_count == 4 and tc.prompts[3] == PROMPTS[1]
    single = _adapter_run(tiny_sd, [PROMPTS[1]], latents[3:4], 7.5)
    torch.testing.assert_close(tc.word_map("dog", image_index=3), single.word_map("dog"), atol=1e-4, rtol=1e-3)


def test_unconditional_only_records_nothing(tiny_sd, make_noise):
    tc = _adapter_run(tiny_sd, PROMPTS[:1], make_noise((1, 4, 8, 8)), 0.0)
    with pytest.raises(RuntimeError, match="nothing was recorded"):
        tc.word_map("cat")


def test_memory_is_fixed_by_bins_and_timestep_filters(tiny_sd, make_noise):
    pipe = tiny_sd.pipeline
    with trace(pipe, timestep_bins=2) as tc:
        pipe("a cat", num_inference_steps=4, latents=make_noise((1, 4, 8, 8)), output_type="latent")
    assert [len(b) for b in tc.bin_timesteps] == [2, 2]
    assert all(s.shape[0] == 2 for s in tc.record.accumulator.sums.values())
    late = tc.word_map("cat", timesteps=(0, 400), normalized=False)
    assert not torch.allclose(late, tc.word_map("cat", normalized=False))
    assert tc.resolutions() == [(8, 8), (4, 4), (2, 2)]
    assert tc.levels() == {"fine": [(8, 8), (4, 4)], "coarse": [(2, 2)]}
    fine, coarse = tc.word_map("cat", resolutions="fine"), tc.word_map("cat", resolutions="coarse")
    up_only = tc.word_map("cat", locations=["up"], normalized=False)
    assert fine.shape == coarse.shape == up_only.shape == (64, 64) and not torch.allclose(fine, coarse)
    with trace(pipe, timestep_bins=2, timesteps=(0, 400), layers="up") as only_late:
        pipe("a cat", num_inference_steps=4, latents=make_noise((1, 4, 8, 8)), output_type="latent")
    assert sum(map(len, only_late.bin_timesteps)) == 2
    assert all(name.startswith("up_blocks") for name in only_late.layers)
