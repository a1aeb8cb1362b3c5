"""Our sampling loop on the flow-matching transformers equals the diffusers pipelines' own ``__call__``.

testing:tiny-sd3 (classifier-free guidance) and testing:tiny-flux (distilled guidance input, resolution shift),
both with their default FlowMatchEulerDiscreteScheduler, and SD3 with FlowMatchHeunDiscreteScheduler. Measured
max differences: 1.8e-6 to 2.6e-6 on the decoded image (fp32, CPU). The loop records the state in the variance-preserving
parametrisation and the adapter scales it back (a rounding-level difference), so equality is asserted within
a tolerance of 1e-5 on the decoded image in [0, 1].
"""

from __future__ import annotations

import pytest
import torch

from generator.diffusion.sampling import initial_noise, sample
from generator.models.registry import load_model
from generator.models.testing.transformers import T5_TOKENS

TOLERANCE = 1e-5
STEPS = 4


@pytest.fixture(scope="module")
def sd3():
    return load_model("testing:tiny-sd3", device="cpu")


@pytest.fixture(scope="module")
def flux():
    return load_model("testing:tiny-flux", device="cpu")


def _ours(adapter, prompt: str, guidance: float, seed: int = 0, scheduler: str | None = None):
    scheduler = adapter.make_scheduler(scheduler)
    scheduler.set_timesteps(STEPS, device=adapter.device)
    generator = torch.Generator("cpu").manual_seed(seed)
    noise = initial_noise(adapter, 1, 64, 64, generator)
    with torch.inference_mode():
        latents = sample(adapter, adapter.encode_prompts([prompt]), scheduler, noise * scheduler.init_noise_sigma,
                         guidance=guidance, generator=generator)
        return latents, adapter.decode(latents)


def _theirs(adapter, prompt: str, guidance: float, seed: int = 0) -> torch.Tensor:
    images = adapter.pipeline(prompt, num_inference_steps=STEPS, guidance_scale=guidance, height=64, width=64,
                              generator=torch.Generator("cpu").manual_seed(seed), max_sequence_length=T5_TOKENS,
                              output_type="pt").images
    return images.float().cpu()  # (1, 3, 64, 64) in [0, 1]


@pytest.mark.parametrize("guidance", [1.0, 5.0])
def test_sd3_loop_equals_pipeline(sd3, guidance):
    _, ours = _ours(sd3, "a red circle on the left", guidance)
    theirs = _theirs(sd3, "a red circle on the left", guidance)
    assert ours.shape == theirs.shape == (1, 3, 64, 64)
    assert (ours - theirs).abs().max().item() < TOLERANCE
    assert ours.std() > 0.01  # not a constant image that would match anything


def test_sd3_heun_equals_pipeline_with_heun():
    """flow-heun (two model calls per step, the scheduler's own bookkeeping) through our loop."""
    from diffusers import FlowMatchHeunDiscreteScheduler

    adapter = load_model("testing:tiny-sd3", device="cpu")
    adapter.pipeline.scheduler = FlowMatchHeunDiscreteScheduler.from_config(adapter.pipeline.scheduler.config)
    ours = _ours(adapter, "a red circle", 5.0, scheduler="flow-heun")[1]
    theirs = _theirs(adapter, "a red circle", 5.0)
    assert (ours - theirs).abs().max().item() < TOLERANCE
    euler = _ours(adapter, "a red circle", 5.0, scheduler="flow-euler")[1]
    assert (euler - theirs).abs().max().item() > 100 * TOLERANCE  # Heun's images are not Euler's


def test_flux_loop_equals_pipeline_with_distilled_guidance(flux):
    ours_low = _ours(flux, "a blue square", 1.5)[1]
    ours = _ours(flux, "a blue square", 3.5)[1]
    theirs = _theirs(flux, "a blue square", 3.5)
    assert (ours - theirs).abs().max().item() < TOLERANCE
    assert (ours_low - theirs).abs().max().item() > 100 * TOLERANCE  # the guidance input really reaches the model


def test_flux_schedule_is_the_pipelines(flux):
    """Flux's resolution shift: our scheduler's sigmas are those FluxPipeline sets for a 64x64 image."""
    from diffusers import FlowMatchEulerDiscreteScheduler
    import numpy as np

    ours = flux.make_scheduler()
    ours.set_timesteps(STEPS)
    reference = FlowMatchEulerDiscreteScheduler.from_config(flux.pipeline.scheduler.config)
    image_seq_len = (64 // 16) ** 2
    slope = (1.15 - 0.5) / (4096 - 256)
    reference.set_timesteps(sigmas=np.linspace(1.0, 1 / STEPS, STEPS), mu=image_seq_len * slope + 0.5 - slope * 256)
    assert torch.allclose(ours.sigmas, reference.sigmas)
    assert ours.sigmas[0] == 1.0 and ours.sigmas[-1] == 0.0
