"""Training the shapes model: the loss falls on a fixed batch, resuming continues the same run, export loads."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from generator.builtin.shapes.export import export
from generator.builtin.shapes.model import MAX_TOKENS, TINY_CONFIG, build_parts, build_tokenizer, load_parts, tokenize
from generator.builtin.shapes.train import CHECKPOINT, LOSS_FILE, TrainConfig, diffusion_loss, train
from generator.builtin.shapes.world import ShapesStream, vocabulary
from generator.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


TINY = TrainConfig(steps=4, batch=4, warmup_steps=2, checkpoint_every=2, log_every=1, bf16=False, model=TINY_CONFIG)


def test_tokenizer_covers_every_caption_and_pads_like_clip(tmp_path):
    tokenizer = build_tokenizer()
    stream = ShapesStream(seed=1)
    captions = [stream.scene(i).caption for i in range(300)]
    ids = tokenize(tokenizer, captions + [""])
    assert ids.shape == (301, MAX_TOKENS)
    assert tokenizer.unk_token_id not in ids
    start, end, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    for row, caption in zip(ids.tolist(), captions):
        words = caption.replace(",", " , ").split()
        assert row[0] == start and row[len(words) + 1] == end and set(row[len(words) + 2 :]) <= {pad}
        assert tokenizer.convert_ids_to_tokens(row[1 : len(words) + 1]) == words
    assert ids[-1].tolist()[:3] == [start, end, pad]
    assert len(tokenizer) == 4 + len(vocabulary())
    tokenizer.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    assert torch.equal(tokenize(AutoTokenizer.from_pretrained(tmp_path), captions), ids[:-1])


def test_a_few_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    parts = build_parts(TINY_CONFIG, seed=0)
    images, captions = ShapesStream(seed=0).batch(0, 4)
    images = torch.from_numpy(images)
    config = replace(TINY, cfg_dropout=0.0)
    params = list(parts.unet.parameters()) + list(parts.text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=3e-3)

    def loss_now() -> torch.Tensor:
        return diffusion_loss(parts, images, captions, torch.Generator().manual_seed(7), config)

    with torch.no_grad():
        before = loss_now().item()
    for _ in range(8):
        optimizer.zero_grad()
        loss_now().backward()
        optimizer.step()
    with torch.no_grad():
        after = loss_now().item()
    assert after < 0.8 * before


def test_resume_continues_the_same_run(tmp_path):
    straight = train(TINY, tmp_path / "straight")
    train(replace(TINY, steps=2), tmp_path / "split")
    with pytest.raises(UserError):
        train(TINY, tmp_path / "split", resume=False)
    resumed = train(TINY, tmp_path / "split", resume=True)
    assert resumed.step == straight.step == 4
    a = torch.load(tmp_path / "straight" / CHECKPOINT, weights_only=False)
    b = torch.load(tmp_path / "split" / CHECKPOINT, weights_only=False)
    assert a["data_position"] == b["data_position"] == 16
    assert a["loss_history"] == b["loss_history"]
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        assert all(torch.equal(a[key][name], b[key][name]) for name in a[key])
    assert (tmp_path / "split" / LOSS_FILE).exists()
    with pytest.raises(UserError):
        train(replace(TINY, batch=8), tmp_path / "split", resume=True)


def test_export_loads_and_generates(tmp_path):
    train(TINY, tmp_path / "run")
    info = export(tmp_path / "run", tmp_path / "weights", command="test")
    assert info["steps"] == 4 and info["command"] == "test"
    for part in ("unet", "text_encoder", "tokenizer", "scheduler", "training.json"):
        assert (tmp_path / "weights" / part).exists()
    parts = load_parts(tmp_path / "weights")
    assert parts.unet.dtype == torch.float32 and parts.unet.config.sample_size == 32
    from generator.models.shapes import ShapesAdapter

    image = ShapesAdapter(tmp_path / "weights").generate("a red circle above a blue square", steps=3, seed=0)
    assert np.asarray(image).shape == (32, 32, 3)


def test_a_run_on_a_taught_text_encoder_trains_only_the_unet_and_ships_that_encoder(tmp_path):
    from generator.builtin.latent.text import text_parts_of
    from generator.builtin.shipped import shipped_weights

    taught = str(shipped_weights("shapes-latent"))
    config = replace(TINY, steps=2, text_from=taught,
                     model=replace(TINY_CONFIG, text_encoder="t5", text_hidden=128, text_heads=4))
    train(config, tmp_path / "run")
    state = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=False)
    assert state["model"] and all(name.startswith("unet.") for name in state["model"])
    info = export(tmp_path / "run", tmp_path / "weights", command="test")
    assert info["text_encoder"]["from"] == taught and info["text_encoder"]["layers"] == 3
    assert "frozen from" in (tmp_path / "weights" / "README.md").read_text()
    shipped = load_parts(tmp_path / "weights").text_encoder.state_dict()
    _, source = text_parts_of(taught)
    assert all(torch.equal(shipped[name], tensor) for name, tensor in source.state_dict().items())
    with pytest.raises(UserError, match="T5 encoder of width 128"):
        train(replace(config, model=TINY_CONFIG), tmp_path / "clip")
