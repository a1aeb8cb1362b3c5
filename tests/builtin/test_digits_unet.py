"""Shape tests of the course's digits UNets, one per training stage."""

from __future__ import annotations

import pytest
import torch

from generator.builtin.digits.unet import (
    ClassConditionalUNet,
    Flatten,
    TimeConditionalUNet,
    UnconditionalUNet,
    Unflatten,
    build_unet,
)


@pytest.mark.parametrize("hidden", [4, 8])
def test_stage_output_shapes(hidden: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 1, 28, 28)
    t = torch.rand(3)
    labels = torch.tensor([0, 5, 9])
    assert UnconditionalUNet(hidden=hidden)(x).shape == (3, 1, 28, 28)
    assert TimeConditionalUNet(hidden=hidden)(x, t).shape == (3, 1, 28, 28)
    model = ClassConditionalUNet(hidden=hidden)
    assert model(x, t, labels).shape == (3, 1, 28, 28)
    assert model(x, t, labels, torch.tensor([1.0, 0.0, 1.0])).shape == (3, 1, 28, 28)


def test_bottleneck_blocks() -> None:
    h = torch.randn(2, 6, 7, 7)
    flat = Flatten()(h)
    assert flat.shape == (2, 6, 1, 1)
    assert Unflatten(6)(flat).shape == (2, 6, 7, 7)


def test_conditioning_changes_output() -> None:
    torch.manual_seed(0)
    model = build_unet("class", 8).eval()
    x = torch.randn(2, 1, 28, 28)
    t = torch.full((2,), 0.5)
    out_a = model(x, t, torch.tensor([1, 1]))
    out_b = model(x, t, torch.tensor([7, 7]))
    assert not torch.allclose(out_a, out_b)
    # A zero mask removes the class: the output no longer depends on the label.
    masked_a = model(x, t, torch.tensor([1, 1]), torch.zeros(2))
    masked_b = model(x, t, torch.tensor([7, 7]), torch.zeros(2))
    torch.testing.assert_close(masked_a, masked_b)
    time_model = build_unet("time", 8).eval()
    assert not torch.allclose(time_model(x, torch.zeros(2)), time_model(x, torch.ones(2)))


def test_rejects_other_sizes_and_stages() -> None:
    with pytest.raises(ValueError, match="28x28"):
        UnconditionalUNet(hidden=4)(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="unknown stage"):
        build_unet("flow", 4)


def test_denoiser_sigma_sweep_of_identity_is_sigma_squared() -> None:
    """An identity 'denoiser' leaves the noise in: its MSE is sigma^2 times the noise's mean square."""
    from generator.evaluate.digits_report import denoiser_sigma_sweep

    images = torch.rand(20, 1, 28, 28)
    sweep = denoiser_sigma_sweep(torch.nn.Identity(), images, sigmas=(0.0, 0.5, 1.0))
    assert sweep["0"] == 0.0
    assert abs(sweep["1"] / sweep["0.5"] - 4.0) < 1e-3
    assert abs(sweep["1"] - 1.0) < 0.05
