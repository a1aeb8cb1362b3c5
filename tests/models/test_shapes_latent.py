"""The shipped latent model (``embedded:shapes-latent``): a standard Stable Diffusion folder that diffusers loads
by itself, whose pipeline and our adapter draw the same image, through exactly the adapter a user's folder gets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from generator.builtin.latent.vae import held_out, latent_std, psnr, round_trip
from generator.builtin.shipped import shipped_weights
from generator.evaluate.shapes_checker import score_scene
from generator.evaluate.vae_report import to_pixels
from generator.diffusion.sampling import initial_noise, sample
from generator.models.registry import MODELS, load_model, model_limits
from generator.models.stable_diffusion import StableDiffusionAdapter

FOLDER = shipped_weights("shapes-latent")
PROMPT = "a red circle above a blue square"
PARTS = ("model_index.json", "vae", "unet", "text_encoder", "tokenizer", "scheduler")
# what the shipped autoencoder measured at export on 200 scenes (training.json, `diffatlas eval vae`), less 3 dB: a
# set of 24 scenes varies by about 2 dB with how many edges it has (these 24: 29.0 dB against 31.0 on the 200). An
# untrained or broken VAE gives ~14 dB. The targets, 30 dB and 99% of the checker's verdicts unchanged, are met on
# the 200 scenes (weights README).
SHIPPED_PSNR_FLOOR = json.loads((FOLDER / "training.json").read_text())["vae"]["eval"]["psnr_db"] - 3.0


@pytest.fixture(scope="module")
def latent_model():
    return load_model("embedded:shapes-latent", device="cpu", dtype="fp32")


def test_the_folder_is_a_standard_stable_diffusion_folder_under_30_mb():
    assert all((FOLDER / part).exists() for part in PARTS)
    index = json.loads((FOLDER / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    size = sum(f.stat().st_size for f in FOLDER.rglob("*") if f.is_file())
    assert size <= 30 * 2**20, size
    weights = list(FOLDER.rglob("*.safetensors"))
    assert len(weights) == 3 and all(f.suffix == ".safetensors" for f in weights)  # vae, unet, text encoder: fp16
    assert not list(FOLDER.rglob("*.bin"))


def test_the_registry_id_is_the_folder_through_the_users_adapter(latent_model):
    assert MODELS["embedded:shapes-latent"].folder == FOLDER
    assert type(latent_model) is StableDiffusionAdapter  # no special case: the class every SD folder gets
    assert latent_model.judge == "shapes"
    defaults = json.loads((FOLDER / "defaults.json").read_text())
    assert (latent_model.default_scheduler, latent_model.default_steps, latent_model.default_guidance) == (
        defaults["scheduler"], defaults["steps"], defaults["guidance"])
    assert latent_model.latent_shape(128, 128) == (4, 16, 16)  # SD's 8x: 128x128 pixels -> 16x16x4 latents
    limits = model_limits("embedded:shapes-latent")
    assert limits.size_multiple == 8 and not limits.pixel_space


def test_diffusers_own_pipeline_draws_the_same_image_as_our_adapter(latent_model):
    from diffusers import StableDiffusionPipeline

    pipeline = StableDiffusionPipeline.from_pretrained(FOLDER, local_files_only=True, dtype=torch.float32)
    pipeline.set_progress_bar_config(disable=True)
    steps, guidance = 6, latent_model.default_guidance
    pipeline.scheduler = latent_model.make_scheduler(latent_model.default_scheduler)
    theirs = pipeline(PROMPT, num_inference_steps=steps, guidance_scale=guidance, output_type="np",
                      generator=torch.Generator().manual_seed(5)).images[0]
    scheduler = latent_model.make_scheduler(latent_model.default_scheduler)
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(5)
    noise = initial_noise(latent_model, 1, 128, 128, generator)
    with torch.inference_mode():
        latents = sample(latent_model, latent_model.encode_prompts([PROMPT]), scheduler,
                         noise * scheduler.init_noise_sigma, guidance=guidance, generator=generator)
        ours = latent_model.decode(latents)[0].permute(1, 2, 0).numpy()
    assert ours.shape == theirs.shape == (128, 128, 3)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)  # fp16 weights run in fp32 on both sides: round-off only


def test_the_autoencoder_round_trip_and_its_scaling_factor_on_fresh_scenes(latent_model):
    vae = latent_model.pipeline.vae
    images, scenes = held_out(128, 24, seed=99)  # neither the training stream nor the scenes the factor was measured on
    rebuilt = round_trip(vae, images)
    assert psnr(images, rebuilt) >= SHIPPED_PSNR_FLOOR
    before, after = to_pixels(images), to_pixels(rebuilt)
    verdicts = [(a.correct, b.correct) for scene, x, y in zip(scenes, before, after)
                for a, b in zip(score_scene(scene, x).attributes, score_scene(scene, y).attributes)]
    assert len(verdicts) > 100 and sum(a == b for a, b in verdicts) >= 0.99 * len(verdicts)  # 144 of 144 measured
    assert latent_std(vae, images) * vae.config.scaling_factor == pytest.approx(1.0, abs=0.1)
