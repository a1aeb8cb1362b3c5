"""The latent model's two training stages: the loss falls on a fixed batch, and a resumed run is the same run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from generator.builtin.latent.loop import CHECKPOINT, learning_rate, run_weights
from generator.builtin.latent.unet import (
    UnetConfig,
    UnetTrainConfig,
    build_scheduler,
    build_unet,
    diffusion_loss,
    train_unet,
)
from generator.builtin.latent.vae import (
    DECODER_PARTS,
    VaeConfig,
    VaeTrainConfig,
    build_vae,
    reconstruction_loss,
    train_vae,
    vae_run_weights,
)
from generator.builtin.shapes.world import ShapesStream
from generator.errors import UserError

TINY_VAE = VaeConfig(resolution=32, block_channels=(8, 16), latent_channels=4)
TINY_UNET = UnetConfig(channels=(32, 32), cross_attention_blocks=(True, False), attention_heads=2)


def _vae_config(steps: int) -> VaeTrainConfig:
    return VaeTrainConfig(steps=steps, batch=4, warmup_steps=1, checkpoint_every=2, log_every=1, model=TINY_VAE)


def _adam_steps(parameters, loss_of, steps: int = 25) -> tuple[float, float]:
    optimizer = torch.optim.Adam(parameters, lr=2e-3)
    first = loss_of().item()
    for _ in range(steps):
        loss = loss_of()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return first, loss_of().item()


def test_vae_loss_falls_on_a_fixed_batch() -> None:
    vae = build_vae(TINY_VAE, seed=0)
    images = torch.from_numpy(ShapesStream(seed=1, resolution=32).batch(0, 4)[0])
    first, last = _adam_steps(vae.parameters(), lambda: reconstruction_loss(
        vae, images, torch.Generator().manual_seed(0), 1e-6))
    assert last < 0.7 * first


def test_unet_loss_falls_on_a_fixed_batch() -> None:
    unet = build_unet(TINY_UNET, latent_size=8, latent_channels=4, text_dim=16, seed=0)
    scheduler = build_scheduler(TINY_UNET)
    latents = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    states = torch.randn(4, 5, 16, generator=torch.Generator().manual_seed(2))
    first, last = _adam_steps(unet.parameters(), lambda: diffusion_loss(
        unet, scheduler, latents, states, torch.Generator().manual_seed(0)))
    assert last < 0.8 * first


def test_vae_resume_continues_the_same_run_bit_for_bit(tmp_path: Path) -> None:
    train_vae(_vae_config(4), tmp_path / "straight")
    train_vae(_vae_config(2), tmp_path / "resumed")
    train_vae(_vae_config(4), tmp_path / "resumed", resume=True)
    straight, _ = run_weights(tmp_path / "straight", "vae.")
    resumed, record = run_weights(tmp_path / "resumed", "vae.")
    assert record["steps"] == 4
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)


def test_a_run_refuses_another_configuration_and_an_unasked_resume(tmp_path: Path) -> None:
    train_vae(_vae_config(1), tmp_path / "run")
    with pytest.raises(UserError, match="--resume"):
        train_vae(_vae_config(2), tmp_path / "run", resume=False)
    other = VaeTrainConfig(steps=2, batch=4, kl_weight=1e-3, model=TINY_VAE)
    with pytest.raises(UserError, match="different training configuration"):
        train_vae(other, tmp_path / "run")


def test_unet_stage_learns_on_the_vae_runs_latents_and_resumes_bit_for_bit(tmp_path: Path) -> None:
    train_vae(_vae_config(1), tmp_path / "vae")

    def config(steps: int) -> UnetTrainConfig:
        return UnetTrainConfig(vae=str(tmp_path / "vae"), steps=steps, batch=2, warmup_steps=1, checkpoint_every=1,
                               log_every=1, model=TINY_UNET)

    train_unet(config(2), tmp_path / "straight")
    train_unet(config(1), tmp_path / "resumed")
    train_unet(config(2), tmp_path / "resumed", resume=True)
    straight, _ = run_weights(tmp_path / "straight", "unet.")
    resumed, _ = run_weights(tmp_path / "resumed", "unet.")
    assert (tmp_path / "straight" / CHECKPOINT).exists()
    assert straight["conv_in.weight"].shape == (32, 4, 3, 3)  # 4 latent channels in
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)


def test_cooldown_falls_linearly_to_zero_over_the_last_steps() -> None:
    settings = VaeTrainConfig(steps=10, learning_rate=1.0, warmup_steps=2, cooldown_steps=4).settings()
    rates = [learning_rate(settings, step) for step in range(10)]
    assert rates == pytest.approx([0.5, 1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25])
    constant = VaeTrainConfig(steps=10, learning_rate=1.0, warmup_steps=2).settings()
    assert [learning_rate(constant, step) for step in range(10)] == pytest.approx([0.5] + [1] * 9)


def test_a_resumed_run_may_end_with_a_cooldown_it_did_not_plan(tmp_path: Path) -> None:
    def config(steps: int, cooldown: int) -> VaeTrainConfig:
        return VaeTrainConfig(steps=steps, batch=4, warmup_steps=1, cooldown_steps=cooldown, checkpoint_every=1,
                              log_every=1, model=TINY_VAE)

    train_vae(config(3, 2), tmp_path / "straight")
    train_vae(config(3, 0), tmp_path / "constant")
    train_vae(config(1, 0), tmp_path / "resumed")
    train_vae(config(3, 2), tmp_path / "resumed", resume=True)
    straight, resumed = vae_run_weights(tmp_path / "straight"), vae_run_weights(tmp_path / "resumed")
    constant = vae_run_weights(tmp_path / "constant")
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)
    assert any(not torch.equal(straight[name], constant[name]) for name in straight)


def test_decoder_stage_keeps_the_encoder_so_the_latent_space_stays(tmp_path: Path) -> None:
    train_vae(_vae_config(1), tmp_path / "vae")
    decoder = VaeTrainConfig(steps=2, batch=4, warmup_steps=1, checkpoint_every=2, log_every=1, model=TINY_VAE,
                             init_from=str(tmp_path / "vae"), decoder_only=True)
    train_vae(decoder, tmp_path / "decoder")
    base, tuned = vae_run_weights(tmp_path / "vae"), vae_run_weights(tmp_path / "decoder")
    assert set(base) == set(tuned)
    encoder = [n for n in base if not n.startswith(DECODER_PARTS)]
    assert encoder and all(torch.equal(base[n], tuned[n]) for n in encoder)
    assert any(not torch.equal(base[n], tuned[n]) for n in base if n.startswith("decoder."))


def test_export_writes_a_stable_diffusion_folder_that_diffusers_loads_and_runs(tmp_path: Path) -> None:
    from diffusers import StableDiffusionPipeline
    from safetensors import safe_open

    from generator.builtin.latent.export import export

    train_vae(_vae_config(1), tmp_path / "vae")
    train_unet(UnetTrainConfig(vae=str(tmp_path / "vae"), steps=1, batch=2, checkpoint_every=1, log_every=1,
                               model=TINY_UNET), tmp_path / "unet")
    record = export(tmp_path / "vae", tmp_path / "unet", tmp_path / "folder")
    assert record["vae"]["steps"] == 1 and record["unet"]["steps"] == 1 and record["vae"]["scaling_factor"] > 0
    for part in ("vae", "unet"):  # stored in fp16
        with safe_open(tmp_path / "folder" / part / "diffusion_pytorch_model.safetensors", "pt") as weights:
            assert {weights.get_tensor(name).dtype for name in weights.keys()} == {torch.float16}
    pipeline = StableDiffusionPipeline.from_pretrained(tmp_path / "folder", local_files_only=True)
    assert pipeline.text_encoder.config.use_attention_mask  # the pipeline masks padding inside the encoder
    pipeline = pipeline.to(torch.float32)
    pipeline.set_progress_bar_config(disable=True)
    image = pipeline("a red circle", num_inference_steps=2, output_type="np",
                     generator=torch.Generator().manual_seed(0)).images[0]
    assert image.shape == (32, 32, 3) and np.isfinite(image).all()


def test_a_unet_run_can_start_from_an_exported_folder(tmp_path: Path) -> None:
    from diffusers import UNet2DConditionModel

    from generator.builtin.latent.export import export

    train_vae(_vae_config(1), tmp_path / "vae")
    train_unet(UnetTrainConfig(vae=str(tmp_path / "vae"), steps=1, batch=2, checkpoint_every=1, log_every=1,
                               model=TINY_UNET), tmp_path / "unet")
    export(tmp_path / "vae", tmp_path / "unet", tmp_path / "folder")
    folder = str(tmp_path / "folder")
    train_unet(UnetTrainConfig(vae=folder, init_from=folder, steps=1, batch=2, learning_rate=0.0, checkpoint_every=1,
                               log_every=1, model=TINY_UNET), tmp_path / "continued")  # lr 0: the start is kept
    started, _ = run_weights(tmp_path / "continued", "unet.")
    shipped = UNet2DConditionModel.from_pretrained(tmp_path / "folder" / "unet", torch_dtype=torch.float32).state_dict()
    assert set(started) == set(shipped) and all(torch.equal(started[n], shipped[n]) for n in shipped)
    # re-exported with the exported folder's VAE: its config is the folder's, with no local path recorded in it
    export(tmp_path / "folder", tmp_path / "continued", tmp_path / "again")
    config = (tmp_path / "again" / "vae" / "config.json").read_text()
    assert "_name_or_path" not in config and config == (tmp_path / "folder" / "vae" / "config.json").read_text()
    # shipped back into the folder it started from, twice: the lineage still names the run it started from
    # (kept in the run at its start), not the folder's own earlier export of this very run
    first = export(tmp_path / "folder", tmp_path / "continued", tmp_path / "folder")
    again = export(tmp_path / "folder", tmp_path / "continued", tmp_path / "folder")
    assert first["unet"] == again["unet"] and "started_from" not in again["unet"]["started_from"]
    assert again["unet"]["started_from"]["steps"] == 1 and again["unet"]["steps"] == 1


def test_a_cooldown_longer_than_the_run_is_one_clear_error_before_any_work(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from generator.cli import app

    result = CliRunner().invoke(app, ["train", "shapes-latent", "--stage", "vae", "--steps", "10", "--cooldown", "11",
                                      "--out", str(tmp_path / "run")])
    assert isinstance(result.exception, UserError) and "--cooldown" in str(result.exception)
    assert not (tmp_path / "run").exists()  # nothing written
