"""The latent UNet's grounding loss: which words it grounds on which objects, the KL's values, and that training
on it moves a UNet's attention onto the objects its words name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from generator.builtin.latent.grounding import (
    Targets,
    batch_targets,
    grounding_kl,
    object_words,
    recorded_attention,
)
from generator.builtin.latent.loop import run_weights
from generator.builtin.latent.unet import (
    UnetConfig,
    UnetTrainConfig,
    build_scheduler,
    build_unet,
    caption_states,
    diffusion_loss,
    text_parts,
    train_unet,
)
from generator.builtin.shapes.world import ShapesStream

TINY_UNET = UnetConfig(channels=(32, 32), cross_attention_blocks=(True, False), attention_heads=2)


@pytest.mark.parametrize(("caption", "objects", "expected"), [
    ("a small red circle above a blue square", 2, [(1, (0,)), (2, (0,)), (3, (0,)), (6, (1,)), (7, (1,))]),
    ("there is a green triangle on the left", 1, [(3, (0,)), (4, (0,))]),
    ("three large purple squares", 3, [(1, (0, 1, 2)), (2, (0, 1, 2)), (3, (0, 1, 2))]),
    ("a red circle , a red square and a blue circle", 3,
     [(1, (0,)), (2, (0,)), (5, (1,)), (6, (1,)), (9, (2,)), (10, (2,))]),
])
def test_object_words_ground_each_describing_word_on_its_own_object(caption, objects, expected) -> None:
    assert object_words(caption.split() + ["<|endoftext|>"], objects) == expected


def test_batch_targets_skip_dropped_captions_and_unite_a_plural_nouns_objects() -> None:
    tokenizer, _ = text_parts(UnetTrainConfig())
    stream = ShapesStream(seed=0, resolution=32)
    plural = next(stream.sample(i) for i in range(200) if stream.scene(i).layout == "count")
    pair = next(stream.sample(i) for i in range(200) if stream.scene(i).layout == "relation")
    targets = batch_targets(tokenizer, [plural, pair, pair], [False, False, True])
    assert set(targets.images.tolist()) == {0, 1}  # the dropped caption grounds nothing
    union = torch.from_numpy(plural.masks.any(axis=0)).float()
    rows = targets.images == 0
    assert all(torch.equal(mask[0], union) for mask in targets.masks[rows])
    words = tokenizer.convert_ids_to_tokens(tokenizer(pair.scene.caption).input_ids)
    for position, mask in zip(targets.positions[targets.images == 1], targets.masks[targets.images == 1]):
        first = words.index(pair.scene.objects[0].shape)
        owner = 0 if position <= first else 1
        assert torch.equal(mask[0], torch.from_numpy(pair.masks[owner]).float())


def _targets_on(mask: np.ndarray) -> Targets:
    return Targets(torch.tensor([0]), torch.tensor([1]), torch.from_numpy(mask).float()[None, None])


def test_kl_is_zero_when_a_word_attends_exactly_its_object_and_grows_as_attention_leaves_it() -> None:
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:5, 1:4] = True
    on_object = torch.zeros(1, 64, 3)
    on_object[0, :, 1] = torch.from_numpy(mask.reshape(-1)).float() * 0.5  # any scale: normalized over space
    uniform = torch.full((1, 64, 3), 1 / 3)
    elsewhere = torch.full((1, 64, 3), 1 / 3)
    elsewhere[0, torch.from_numpy(mask.reshape(-1)), 1] = 1e-4
    values = [grounding_kl([m], _targets_on(mask), (8, 8)).item() for m in (on_object, uniform, elsewhere)]
    assert values[0] == pytest.approx(0.0, abs=1e-6)
    assert values[1] == pytest.approx(np.log(64 / 9), rel=1e-5)  # uniform over 64 cells, the object is 9
    assert values[2] > values[1] + 5


def test_recorded_attention_sees_every_cross_attention_layer_and_restores_the_processors() -> None:
    unet = build_unet(TINY_UNET, latent_size=8, latent_channels=4, text_dim=16, seed=0)
    before = {name: type(p) for name, p in unet.attn_processors.items()}
    latents, states = torch.randn(2, 4, 8, 8), torch.randn(2, 5, 16)
    with torch.no_grad():
        plain = unet(latents, 10, encoder_hidden_states=states).sample
        with recorded_attention(unet) as maps:
            recorded = unet(latents, 10, encoder_hidden_states=states).sample
    assert torch.equal(plain, recorded)  # recording changes nothing the UNet computes
    # down 8x8, mid 4x4, then the up block's two layers at 8x8
    assert [tuple(m.shape) for m in maps] == [(2, 64, 5), (2, 16, 5), (2, 64, 5), (2, 64, 5)]
    assert all(torch.allclose(m.sum(-1), torch.full((), 2.0)) for m in maps)  # two heads' softmax rows, summed
    assert {name: type(p) for name, p in unet.attn_processors.items()} == before


def test_grounding_moves_attention_onto_the_named_objects_on_a_fixed_batch() -> None:
    tokenizer, encoder = text_parts(UnetTrainConfig())
    samples = ShapesStream(seed=0, resolution=32).samples(0, 8)
    targets = batch_targets(tokenizer, samples, [False] * 8)
    states = caption_states(tokenizer, encoder, [s.scene.caption for s in samples])
    unet = build_unet(TINY_UNET, latent_size=16, latent_channels=4, text_dim=encoder.config.d_model, seed=0)
    scheduler = build_scheduler(TINY_UNET)
    latents = torch.randn(8, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.Adam(unet.parameters(), lr=3e-3)

    def losses() -> tuple[torch.Tensor, torch.Tensor]:
        with recorded_attention(unet) as maps:
            mse = diffusion_loss(unet, scheduler, latents, states, torch.Generator().manual_seed(0))
        return mse, grounding_kl(maps, targets, (16, 16))

    first_mse, first_kl = (value.item() for value in losses())
    for _ in range(20):
        mse, kl = losses()
        optimizer.zero_grad()
        (mse + kl).backward()
        optimizer.step()
    last_mse, last_kl = (value.item() for value in losses())
    assert last_kl < 0.3 * first_kl and last_mse < first_mse  # both terms fall together


def test_a_unet_run_trains_on_the_grounding_loss_only_when_asked(tmp_path: Path) -> None:
    from generator.builtin.latent.vae import VaeConfig, VaeTrainConfig, train_vae

    tiny_vae = VaeConfig(resolution=32, block_channels=(8, 16), latent_channels=4)
    train_vae(VaeTrainConfig(steps=1, batch=2, warmup_steps=1, checkpoint_every=1, log_every=1, model=tiny_vae),
              tmp_path / "vae")

    def run(name: str, **fields) -> tuple[dict[str, torch.Tensor], dict]:
        config = UnetTrainConfig(vae=str(tmp_path / "vae"), steps=2, batch=2, warmup_steps=1, checkpoint_every=2,
                                 log_every=1, model=TINY_UNET, **fields)
        train_unet(config, tmp_path / name)
        return run_weights(tmp_path / name, "unet.")

    plain, plain_record = run("plain")
    grounded, record = run("grounded", grounding=1.0)
    assert any(not torch.equal(plain[n], grounded[n]) for n in plain)
    assert record["config"]["grounding"] == 1.0 and plain_record["config"]["grounding"] == 0.0
    # the exported folder says so, and the reports measured on it read it from there
    from generator.builtin.latent.export import export
    from generator.evaluate.daam_identity import trained_grounding

    assert export(tmp_path / "vae", tmp_path / "grounded", tmp_path / "folder")["unet"]["grounding"] == 1.0
    assert trained_grounding(tmp_path / "folder") == 1.0
    assert "grounding" not in export(tmp_path / "vae", tmp_path / "plain", tmp_path / "other")["unet"]
    assert trained_grounding(tmp_path / "other") == 0.0


@pytest.mark.parametrize("arguments", [["--stage", "vae", "--grounding", "0.1"],
                                       ["--stage", "unet", "--grounding", "-1"]])
def test_grounding_is_a_non_negative_weight_of_the_unet_stage(tmp_path: Path, arguments: list[str]) -> None:
    from typer.testing import CliRunner

    from generator.cli import app
    from generator.errors import UserError

    result = CliRunner().invoke(app, ["train", "shapes-latent", *arguments, "--out", str(tmp_path / "run")])
    assert isinstance(result.exception, UserError) and "--grounding" in str(result.exception)
    assert not (tmp_path / "run").exists()


def test_a_run_from_before_the_grounding_field_resumes_when_grounding_stays_off() -> None:
    from generator.builtin.latent.loop import _same_run

    before = UnetTrainConfig(steps=10).to_json()
    del before["grounding"]
    assert _same_run(before, UnetTrainConfig(steps=20).to_json())
    assert not _same_run(before, UnetTrainConfig(steps=20, grounding=0.03).to_json())
