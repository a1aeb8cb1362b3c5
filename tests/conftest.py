"""Shared fixtures: tiny models built locally from config under a fixed seed (nothing is downloaded)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def tiny_sd():
    """The testing:tiny-sd adapter on the CPU in fp32 (share it; never mutate its pipeline)."""
    from generator.models import load_model

    return load_model("testing:tiny-sd", device="cpu", dtype="fp32")


@pytest.fixture(scope="session")
def tiny_sdxl():
    """The testing:tiny-sdxl adapter on the CPU in fp32."""
    from generator.models import load_model

    return load_model("testing:tiny-sdxl", device="cpu", dtype="fp32")


@pytest.fixture
def one_thread():
    """Tiny models on a busy machine: one thread is faster, and the same run means the same thread count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
