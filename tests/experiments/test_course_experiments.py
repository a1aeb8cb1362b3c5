"""Course experiments: closed forms, invariants and refusals, on tiny local models and formula inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from generator.errors import UserError
from generator.experiments.course.editing import PIXEL_SPACE_MESSAGE, LatentSpaceWarning, require_pixel_space
from generator.experiments.course.filters import gaussian_blur, gaussian_kernel, high_pass, low_pass
from generator.experiments.course.forward import forward_process, forward_samples
from generator.experiments.course.inpaint import inpaint
from generator.experiments.course.sdedit import sdedit
from generator.experiments.course.views import anagram_estimator, flip180, hybrid_image, visual_anagram
from generator.models.schedulers import alpha_bar_at


def test_forward_process_matches_closed_form_over_many_samples(tiny_if):
    """x_t ~ N(sqrt(a) x0, (1 - a) I): sample mean and variance per pixel agree with DDPM Eq. 4."""
    schedule = tiny_if.make_scheduler()
    betas = schedule.betas.double()
    clean = torch.linspace(-1, 1, 3 * 8 * 8).reshape(3, 8, 8)
    generator = torch.Generator().manual_seed(0)
    for t in (250, 500, 750):
        alpha_bar = alpha_bar_at(schedule, t)
        assert alpha_bar == pytest.approx(float(torch.prod(1 - betas[: t + 1])), rel=1e-5)  # prod of (1 - beta_s)
        draws = forward_samples(clean, alpha_bar, generator, count=20000)
        mean, variance = draws.mean(0), draws.var(0)
        # standard errors: sqrt((1-a)/n) for the mean, (1-a) sqrt(2/n) for the variance; 6 sigma bounds
        assert (mean - alpha_bar**0.5 * clean).abs().max() < 6 * ((1 - alpha_bar) / 20000) ** 0.5
        assert (variance - (1 - alpha_bar)).abs().max() < 6 * (1 - alpha_bar) * (2 / 20000) ** 0.5


def test_forward_process_images_get_noisier(tiny_if, scene):
    levels = forward_process(tiny_if, scene, (250, 500, 750), seed=1)
    errors = [float(((level.image - scene) ** 2).mean()) for level in levels]
    assert [level.timestep for level in levels] == [250, 500, 750]
    assert errors[0] < errors[1] < errors[2]


def test_inpainting_keeps_the_unmasked_region_and_changes_the_masked_one(tiny_if, scene):
    mask = torch.zeros(1, 32, 32)
    mask[:, 8:24, 16:30] = 1
    result = inpaint(tiny_if, scene, mask, "a yellow triangle", steps=6, guidance=3.0, seed=0)
    keep = (1 - mask).bool().expand(3, -1, -1)
    # pixel space: the last blend writes the original itself; only the [-1, 1] round trip's float error remains
    assert (result.image[keep] - scene[keep]).abs().max() < 1e-6
    assert (result.image[~keep] - scene[~keep]).abs().mean() > 0.05
    assert torch.equal(result.run.trajectory.final_image, result.image)


def test_inpainting_latent_model_pastes_back_the_original(tiny_sd):
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 64, 64)
    mask[:, 16:48, 16:48] = 1
    result = inpaint(tiny_sd, image, mask, "a cat", steps=3, guidance=1.0)
    assert (result.image - image)[:, mask[0] == 0].abs().max() < 1e-6


def test_sdedit_from_the_last_start_index_returns_nearly_the_input(tiny_if, scene):
    runs = sdedit(tiny_if, scene, "a high quality photo", (1, 5, 9), steps=10, guidance=3.0, seed=0)
    distances = [float((run.image - scene).abs().mean()) for run in runs]
    assert [run.start_index for run in runs] == [1, 5, 9]
    assert runs[-1].start_timestep < runs[0].start_timestep
    assert distances[-1] < 0.02  # t = 0: one tiny step away from the input
    assert distances[0] > distances[-1] + 0.1
    assert len(runs[0].trajectory.timesteps) == 9 and len(runs[-1].trajectory.timesteps) == 1


def test_anagram_estimate_is_equivariant_under_the_flip(tiny_if):
    """combined(flip x; p2, p1) == flip(combined(x; p1, p2)): the two views really are the image and its flip."""
    first, second = tiny_if.encode_prompts(["a red circle"]), tiny_if.encode_prompts(["a blue square"])
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    t = torch.tensor(500)
    with torch.inference_mode():
        combined = anagram_estimator(tiny_if, first, second, 3.0)(x, t)
        swapped = anagram_estimator(tiny_if, second, first, 3.0)(flip180(x), t)
        plain = tiny_if.denoise(x, t, first.cond)
    assert torch.allclose(swapped, flip180(combined), atol=1e-5)
    assert not torch.allclose(combined, flip180(combined), atol=1e-3)  # the estimate itself is not symmetric
    assert not torch.allclose(combined, plain, atol=1e-3)


def test_views_run_on_a_pixel_model(tiny_if):
    anagram = visual_anagram(tiny_if, ("a dog", "a man"), steps=3, guidance=3.0)
    hybrid = hybrid_image(tiny_if, ("a dog", "a man"), steps=3, guidance=3.0, kernel_size=9, sigma=1.5)
    assert anagram.run.image.shape == hybrid.run.image.shape == (3, 32, 32)
    assert anagram.warning is None and not torch.equal(anagram.run.image, hybrid.run.image)


def test_low_pass_plus_high_pass_reconstructs_the_estimate():
    estimate = torch.randn(2, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    low, high = low_pass(estimate, 33, 2.0), high_pass(estimate, 33, 2.0)
    assert torch.allclose(low + high, estimate, atol=1e-5)
    assert low.std() < 0.5 * estimate.std()  # the low-pass really removes the high frequencies
    assert gaussian_kernel(33, 2.0).sum().item() == pytest.approx(1.0)
    constant = torch.full((1, 1, 16, 16), 0.3)  # kernel wider than the image: edges repeated, constant kept
    assert torch.allclose(gaussian_blur(constant, 33, 2.0), constant, atol=1e-6)


def test_latent_models_refuse_anagrams_and_hybrids_with_the_documented_message(tiny_sd):
    expected = PIXEL_SPACE_MESSAGE.format(experiment="visual anagrams", model="testing:tiny-sd", what="an anagram")
    with pytest.raises(UserError) as refused:
        visual_anagram(tiny_sd, ("a cat", "a dog"), steps=2)
    assert str(refused.value) == expected
    with pytest.raises(UserError, match="hybrid images need a pixel-space model.*allow_latent: true"):
        hybrid_image(tiny_sd, ("a cat", "a dog"), steps=2)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "need a pixel-space model" in readme
    with pytest.warns(LatentSpaceWarning):
        assert "latent model" in require_pixel_space(tiny_sd, "hybrid images", allow_latent=True)


def test_if_adapter_generates_from_the_tiny_if_pipeline(tiny_if):
    image = tiny_if.generate("a red circle", steps=3, guidance=5.0, seed=1)
    again = tiny_if.generate("a red circle", steps=3, guidance=5.0, seed=1)
    assert image.size == (32, 32) and image.tobytes() == again.tobytes()
    assert tiny_if.capabilities.pixel_space and tiny_if.prediction_type == "epsilon"
    pieces = tiny_if.tokenize("a red circle")
    assert [p.word_index for p in pieces[:3]] == [0, 1, 2] and pieces[3].special == "end"


SHAPES_WEIGHTS = Path(__file__).resolve().parents[2] / "generator" / "weights" / "shapes" / "unet" / "config.json"


@pytest.mark.skipif(not SHAPES_WEIGHTS.exists(), reason="needs the trained shapes model in generator/weights/shapes/")
def test_one_step_beats_the_best_blur_at_t500_on_the_shapes_model():
    """A measured property of the trained built-in model; the iterative PSNR is reported, not asserted."""
    from generator.experiments.course.baselines import denoising_baselines
    from generator.experiments.course.inputs import fit_image
    from generator.models import load_model

    adapter = load_model("embedded:shapes", device="cpu", dtype="fp32")
    image = fit_image(str(Path(__file__).resolve().parents[2] / "prompts" / "inputs" / "shapes-scene.png"), 32, 32)
    (level,) = denoising_baselines(adapter, image, "a red circle to the left of a blue square", (500,),
                                   blur_sigmas=(0.5, 1.0, 1.5, 2.0, 3.0), steps=20, guidance=1.0, seed=0)
    print(f"t=500: best blur {level.best_blur.psnr:.2f} dB (sigma {level.best_blur.sigma}), one step "
          f"{level.one_step.psnr:.2f} dB, iterative {level.iterative.psnr:.2f} dB")
    assert level.one_step.psnr > level.best_blur.psnr
