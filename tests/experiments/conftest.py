"""Fixtures for the course experiments: the tiny random IF pipeline (pixel space), built locally once."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_if():
    """testing:tiny-if on the CPU in fp32 (share it; never mutate its pipeline)."""
    from generator.models import load_model

    torch.set_num_threads(1)  # tiny models on a shared 2-core machine: more threads only contend
    return load_model("testing:tiny-if", device="cpu", dtype="fp32")


@pytest.fixture
def scene() -> torch.Tensor:
    """A 32x32 test image (3, H, W) in [0, 1]: a red disc left of a blue square on grey."""
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    image = torch.full((3, 32, 32), 0.92)
    disc = (x - 9) ** 2 + (y - 16) ** 2 <= 36
    square = (x >= 18) & (x <= 28) & (y >= 10) & (y <= 22)
    image[:, disc] = torch.tensor([0.86, 0.12, 0.12])[:, None]
    image[:, square] = torch.tensor([0.12, 0.27, 0.86])[:, None]
    return image
