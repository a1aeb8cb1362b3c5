"""The shipped digits weights: sizes, configs, and the class model drawing the digit it is asked for."""

from __future__ import annotations

import json

import pytest
import torch

from generator.builtin.digits.classifier import classify, load_classifier
from generator.builtin.digits.weights import shipped_weights_dir, snapshot_epochs
from generator.models import load_model

WEIGHTS = shipped_weights_dir()


def test_shipped_files_are_small_and_documented() -> None:
    total = sum(p.stat().st_size for p in WEIGHTS.rglob("*") if p.is_file())
    assert total <= 20 * 1024 * 1024, f"digits weights take {total / 2**20:.1f} MB (budget 20 MB)"
    for name in ("class", "classifier"):
        config = json.loads((WEIGHTS / name / "config.json").read_text())
        assert config["command"].startswith("diffatlas train digits")
        assert config["hardware"]
    class_config = json.loads((WEIGHTS / "class" / "config.json").read_text())
    assert class_config["schedule"]["num_timesteps"] == 300
    assert snapshot_epochs(WEIGHTS / "class") == class_config["snapshot_epochs"]
    assert len(class_config["snapshot_epochs"]) >= 4  # the per-epoch animations
    assert json.loads((WEIGHTS / "classifier" / "config.json").read_text())["test_accuracy"] >= 0.98


@pytest.mark.slow
def test_embedded_digits_draws_the_requested_digit() -> None:
    """Two seeds x ten digits; DDPM strided to 100 of the 300 steps keeps the test to ~10 s on one core."""
    adapter = load_model("embedded:digits", device="cpu")
    classifier = load_classifier(WEIGHTS / "classifier" / "model.safetensors")
    prompts = [str(d) for d in range(10)]
    hits = 0
    for seed in (0, 1):
        images = adapter.generate(prompts, seed=seed, steps=100)
        assert all(image.size == (28, 28) for image in images)
        pixels = torch.stack([torch.tensor(list(image.convert("L").getdata()), dtype=torch.float32) for image in images])
        probs = classify(classifier, (pixels / 255).reshape(-1, 1, 28, 28))
        hits += int((probs.argmax(1) == torch.arange(10)).sum())
    assert hits >= 18, f"only {hits}/20 samples were classified as the requested digit"


@pytest.mark.parametrize("bad", ["cat", "12", ""])
def test_embedded_digits_rejects_non_digit_prompts(bad: str) -> None:
    from generator.errors import UserError

    adapter = load_model("embedded:digits", device="cpu")
    with pytest.raises(UserError):
        adapter.generate(bad, seed=0, steps=2)
