"""The digits ModelAdapter on a randomly initialised class UNet (the shipped model is tested separately)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from generator.builtin.digits.ddpm import DDPMSchedule
from generator.builtin.digits.unet import build_unet
from generator.errors import UserError
from generator.models.base import ModelAdapter
from generator.models.digits import DigitsAdapter, parse_digit


@pytest.fixture(scope="module")
def adapter() -> DigitsAdapter:
    torch.manual_seed(0)
    config = {"stage": "class", "hidden": 4, "schedule": DDPMSchedule().to_config()}
    return DigitsAdapter(build_unet("class", 4), config)


def test_protocol_and_prompts(adapter: DigitsAdapter) -> None:
    assert isinstance(adapter, ModelAdapter)
    assert adapter.capabilities.pixel_space and adapter.capabilities.conditioning == "class"
    assert parse_digit("7") == 7 and parse_digit(" Seven ") == 7 and parse_digit("0") == 0
    with pytest.raises(UserError, match="digit"):
        parse_digit("cat")
    embeddings = adapter.encode_prompts(["3", "nine"])
    assert embeddings.cond.hidden.argmax(1).tolist() == [3, 9]
    assert float(embeddings.uncond.hidden.abs().sum()) == 0
    with pytest.raises(UserError, match="28x28"):
        adapter.latent_shape(32, 32)


def test_schedule_index_mapping(adapter: DigitsAdapter) -> None:
    """diffusers' timestep k uses alpha_bar of the paper's t = k + 1, and the network sees (k + 1) / T."""
    scheduler = adapter.make_scheduler()
    ours = DDPMSchedule().alpha_bars
    torch.testing.assert_close(scheduler.alphas_cumprod.double(), ours[1:], rtol=1e-5, atol=1e-7)
    x = torch.randn(2, 1, 28, 28)
    vectors = adapter.class_vectors(["1", "2"])
    got = adapter.denoise(x, torch.tensor(99), adapter.encode_prompts(["1", "2"]).cond)
    with torch.no_grad():
        expected = adapter.denoiser(x, torch.full((2,), 100 / 300), torch.tensor([1, 2]))
    torch.testing.assert_close(got, expected)
    assert vectors.shape == (2, 10)


def test_generate_returns_28x28_digits(adapter: DigitsAdapter) -> None:
    image = adapter.generate("7", seed=0, steps=5)
    assert isinstance(image, Image.Image) and image.size == (28, 28)
    images = adapter.generate(["1", "2"], seed=0, steps=5)
    assert isinstance(images, list) and len(images) == 2 and images[0].size == (28, 28)
    again = adapter.generate("7", seed=0, steps=5)
    assert list(again.getdata()) == list(image.getdata())


def test_time_conditioned_adapter_ignores_prompts() -> None:
    torch.manual_seed(0)
    config = {"stage": "time", "hidden": 4, "schedule": DDPMSchedule().to_config()}
    adapter = DigitsAdapter(build_unet("time", 4), config, model_id="embedded:digits-time")
    assert adapter.default_guidance == 1.0 and adapter.tokenize("anything") == []
    x = torch.randn(1, 1, 28, 28)
    got = adapter.denoise(x, torch.tensor(0), adapter.encode_prompts(["x"]).cond)
    with torch.no_grad():
        torch.testing.assert_close(got, adapter.denoiser(x, torch.full((1,), 1 / 300)))
    a = adapter.generate("", seed=3, steps=4)
    b = adapter.generate("whatever", seed=3, steps=4)
    assert list(a.getdata()) == list(b.getdata())
