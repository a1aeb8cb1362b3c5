"""The shapes model's two text encoders (causal CLIP, bidirectional T5 with padding masked) and --init-from."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from generator.builtin.shapes.export import export
from generator.builtin.shapes.model import TINY_CONFIG, build_parts, encode_text, tokenize
from generator.builtin.shapes.train import CHECKPOINT, TrainConfig, train
from generator.daam import trace
from generator.errors import UserError

T5_TINY = replace(TINY_CONFIG, text_encoder="t5")
TINY = TrainConfig(steps=2, batch=4, warmup_steps=1, checkpoint_every=2, log_every=1, bf16=False, model=TINY_CONFIG)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _vectors(config, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    parts = build_parts(config, seed=0)
    ids = tokenize(parts.tokenizer, captions)
    with torch.no_grad():
        hidden, mask = encode_text(parts.text_encoder.eval(), ids)
    return hidden, mask, ids


def test_t5_reads_the_whole_caption_at_every_word_and_clip_only_what_came_before():
    captions = ["a red circle above a blue square", "a red circle above a blue triangle"]
    clip, clip_mask, clip_ids = _vectors(TINY_CONFIG, captions)
    t5, t5_mask, t5_ids = _vectors(T5_TINY, captions)
    assert clip_mask is None
    assert clip_ids[0, 1:4].tolist() == t5_ids[0, :3].tolist()  # same vocabulary; T5 has no start token
    # "red" is word 1: position 2 for CLIP (after the start token), 1 for T5; only the last word differs
    assert torch.allclose(clip[0, 2], clip[1, 2])
    assert not torch.allclose(t5[0, 1], t5[1, 1], atol=1e-4)


def test_t5_masks_padding_in_the_encoder():
    t5, mask, ids = _vectors(T5_TINY, ["two small green triangles"])
    assert mask.tolist()[0] == [1] * 5 + [0] * (ids.shape[1] - 5)  # 4 words and the end token
    parts = build_parts(T5_TINY, seed=0)
    with torch.no_grad():
        short, _ = encode_text(parts.text_encoder.eval(), ids[:, :6])  # one padding position instead of 15
    assert torch.allclose(t5[0, :5], short[0, :5], atol=1e-5)


@pytest.fixture(scope="module")
def t5_weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("t5")
    torch.set_num_threads(1)
    train(replace(TINY, model=T5_TINY), root / "run")
    export(root / "run", root / "weights", command="test")
    return root / "weights"


def test_a_t5_model_never_attends_to_padding(t5_weights):
    from generator.models.shapes import ShapesAdapter

    adapter = ShapesAdapter(t5_weights)
    embeddings = adapter.encode_prompts(["a red circle"]).cond
    noise = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([500])
    with torch.no_grad():
        out = adapter.denoise(noise, t, embeddings)
        junk = embeddings.hidden.clone()
        junk[:, 4:] = torch.randn_like(junk[:, 4:]) * 10  # past "a red circle </s>"
        out_junk = adapter.denoise(noise, t, replace(embeddings, hidden=junk))
    assert torch.allclose(out, out_junk, atol=1e-5)
    with trace(adapter, padding=True) as tc:
        adapter.generate("a red circle", steps=2, seed=0)
    assert [p.special for p in tc.tokens()][3:5] == ["end", "pad"]
    assert tc.token_map(2, normalized=False).abs().sum() > 0  # "circle"
    assert tc.token_map(4, normalized=False).abs().sum() == 0  # padding


def test_init_from_starts_the_unet_from_the_other_runs_ema(tmp_path):
    train(TINY, tmp_path / "clip")
    source = torch.load(tmp_path / "clip" / CHECKPOINT, weights_only=False)
    frozen = replace(TINY, steps=1, learning_rate=0.0, init_from=str(tmp_path / "clip"), model=T5_TINY)
    train(frozen, tmp_path / "t5")
    state = torch.load(tmp_path / "t5" / CHECKPOINT, weights_only=False)
    unet = [name for name in source["ema"] if name.startswith("unet.")]
    assert unet and all(torch.equal(state["model"][n], source["ema"][n]) for n in unet)
    assert not any(name.startswith("text_encoder.text_model") for name in state["model"])  # a T5, not the CLIP
    assert state["started_from"]["step"] == 2
    readme = export(tmp_path / "t5", tmp_path / "weights", command="test") and (tmp_path / "weights" / "README.md")
    assert "bidirectional T5" in readme.read_text() and "at step 2" in readme.read_text()
    wider = replace(frozen, model=replace(T5_TINY, unet_channels=(16, 48)))
    with pytest.raises(UserError, match="another architecture"):
        train(wider, tmp_path / "wider")


def test_coordinates_start_from_the_old_unet_exactly_and_tell_left_from_right(tmp_path):
    from generator.builtin.shapes.model import load_parts, unet_input

    train(TINY, tmp_path / "plain")
    grown = replace(TINY, steps=1, learning_rate=0.0, init_from=str(tmp_path / "plain"),
                    model=replace(TINY_CONFIG, coordinates=True))
    train(grown, tmp_path / "coords")
    export(tmp_path / "plain", tmp_path / "w-plain", command="test")
    export(tmp_path / "coords", tmp_path / "w-coords", command="test")
    plain, coords = load_parts(tmp_path / "w-plain"), load_parts(tmp_path / "w-coords")
    assert coords.unet.config.in_channels == 5
    assert torch.count_nonzero(coords.unet.conv_in.weight[:, 3:]) == 0  # the new channels start at zero
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    grid = unet_input(coords.unet, pixels)
    assert grid.shape == (2, 5, 32, 32) and torch.equal(grid[:, :3], pixels)
    assert grid[0, 3, 0, 0] == -1 and grid[0, 3, 0, -1] == 1 and grid[0, 4, -1, 0] == 1  # x left to right, y down
    assert unet_input(plain.unet, pixels) is pixels
    hidden = torch.randn(2, 20, TINY_CONFIG.text_hidden)
    with torch.no_grad():
        a = plain.unet(pixels, 500, encoder_hidden_states=hidden).sample
        b = coords.unet(grid, 500, encoder_hidden_states=hidden).sample
    assert torch.allclose(a, b, atol=1e-2)  # same function up to the fp16 storage of both
    assert "x and y input channels" in (tmp_path / "w-coords" / "README.md").read_text()
    from generator.models.shapes import ShapesAdapter

    image = ShapesAdapter(tmp_path / "w-coords").generate("a red circle on the left", steps=2, seed=0)
    assert image.size == (32, 32)


def test_init_from_keeps_a_matching_text_encoder_and_p2_weighs_noisy_steps_more(tmp_path):
    from generator.builtin.shapes.train import diffusion_loss
    from generator.builtin.shapes.world import ShapesStream

    train(TINY, tmp_path / "first")
    source = torch.load(tmp_path / "first" / CHECKPOINT, weights_only=False)
    again = replace(TINY, steps=1, learning_rate=0.0, init_from=str(tmp_path / "first"), p2_gamma=1.0)
    train(again, tmp_path / "second")
    state = torch.load(tmp_path / "second" / CHECKPOINT, weights_only=False)
    assert all(torch.equal(state["model"][n], source["ema"][n]) for n in source["ema"])  # every part, same encoder
    assert state["started_from"]["text_encoder"] is True
    readme = export(tmp_path / "second", tmp_path / "w", command="test") and (tmp_path / "w" / "README.md").read_text()
    assert "at step 2" in readme and "its text encoder too" in readme
    # P2: one image's loss is the plain loss divided by (1 + SNR) of the timestep it drew
    parts = build_parts(TINY_CONFIG, seed=0)
    images, captions = ShapesStream(seed=0).batch(0, 1)
    images = torch.from_numpy(images)
    for seed in (5, 6, 7):
        draws = torch.Generator().manual_seed(seed)
        torch.rand(1, generator=draws)  # diffusion_loss draws caption dropout, then timesteps, then noise
        t = torch.randint(0, 1000, (1,), generator=draws)
        snr = float(parts.scheduler.alphas_cumprod[t] / (1 - parts.scheduler.alphas_cumprod[t]))
        with torch.no_grad():
            plain = diffusion_loss(parts, images, captions, torch.Generator().manual_seed(seed), TINY)
            p2 = diffusion_loss(parts, images, captions, torch.Generator().manual_seed(seed), replace(TINY, p2_gamma=1.0))
        assert float(p2) == pytest.approx(float(plain) / (1 + snr), rel=1e-5)
