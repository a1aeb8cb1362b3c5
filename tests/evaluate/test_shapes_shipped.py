"""The shipped shapes model: loads through the registry, tokenizes like the text view expects, generates 32x32."""

from __future__ import annotations

import json

import pytest
import torch

from generator.models.shapes import limits, shipped_weights_dir


@pytest.fixture(scope="module")
def shapes():
    from generator.models import load_model

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_model("embedded:shapes", device="cpu")
    torch.set_num_threads(before)


def test_shipped_weights_are_complete_and_small():
    folder = shipped_weights_dir()
    for part in ("unet/config.json", "text_encoder/config.json", "tokenizer/tokenizer.json", "scheduler/scheduler_config.json"):
        assert (folder / part).exists(), part
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert total <= 30 * 2**20
    info = json.loads((folder / "training.json").read_text())
    assert info["steps"] > 0 and info["command"].startswith("diffatlas train shapes")
    assert len(info["loss_curve"]["steps"]) == len(info["loss_curve"]["loss"]) > 0


def test_loads_and_generates_a_32x32_image(shapes):
    assert shapes.capabilities.cross_attention and shapes.capabilities.pixel_space
    assert shapes.latent_shape(32, 32) == (3, 32, 32)
    image = shapes.generate("a red circle above a blue square", seed=0, steps=4)
    assert image.size == (32, 32) and image.mode == "RGB"


def test_tokens_align_with_words(shapes):
    pieces = shapes.tokenize("a red circle, above a blue square")
    starts = 1 if shapes.text_encoder.config.model_type == "clip_text_model" else 0  # T5 has no start token
    assert [p.special for p in pieces[:starts]] == ["start"] * starts
    words = [(p.text, p.word_index) for p in pieces if not p.special]
    assert words == [("a", 0), ("red", 1), ("circle", 2), (",", 3), ("above", 4), ("a", 5), ("blue", 6), ("square", 7)]
    assert len(pieces) == shapes.capabilities.max_tokens
    end = len(words) + starts
    assert pieces[end].special == "end" and all(p.special == "pad" for p in pieces[end + 1 :])


def test_limits_without_loading_weights():
    model_limits = limits()
    assert model_limits.max_tokens == 20 and model_limits.size_multiple == 4
    assert model_limits.check_prompt("a red circle above a blue square") is None
    assert model_limits.check_prompt(" ".join(["a red circle and"] * 6)) is not None
