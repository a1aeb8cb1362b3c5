"""What the shapes model learns to predict (epsilon, or v with ``--prediction v``) and at which timesteps
(``--noisy-share``)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from generator.builtin.shapes.export import export
from generator.builtin.shapes.model import TINY_CONFIG, build_parts, encode_text, tokenize, unet_input
from generator.builtin.shapes.train import NOISY_FROM, TrainConfig, diffusion_loss, train
from generator.builtin.shapes.world import ShapesStream

V_TINY = replace(TINY_CONFIG, prediction="v_prediction")
TINY = TrainConfig(steps=2, batch=4, warmup_steps=1, checkpoint_every=2, log_every=1, bf16=False, model=V_TINY)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_the_v_loss_is_the_mse_against_the_velocity_of_the_drawn_noise():
    parts = build_parts(V_TINY, seed=0)
    images, captions = ShapesStream(seed=0).batch(0, 2)
    images = torch.from_numpy(images)
    seed = 11
    with torch.no_grad():
        loss = diffusion_loss(parts, images, captions, torch.Generator().manual_seed(seed), TINY)
        draws = torch.Generator().manual_seed(seed)  # caption dropout, then timesteps, then noise
        dropped = torch.rand(2, generator=draws) < TINY.cfg_dropout
        t = torch.randint(0, 1000, (2,), generator=draws)
        noise = torch.randn(images.shape, generator=draws)
        a = parts.scheduler.alphas_cumprod[t].view(2, 1, 1, 1)
        noisy = a.sqrt() * images + (1 - a).sqrt() * noise
        ids = tokenize(parts.tokenizer, ["" if d else c for c, d in zip(captions, dropped.tolist())])
        hidden, mask = encode_text(parts.text_encoder, ids)
        output = parts.unet(unet_input(parts.unet, noisy), t, encoder_hidden_states=hidden, encoder_attention_mask=mask).sample
        velocity = a.sqrt() * noise - (1 - a).sqrt() * images
        epsilon_loss = diffusion_loss(parts, images, captions, torch.Generator().manual_seed(seed),
                                      replace(TINY, model=TINY_CONFIG))
    assert float(loss) == pytest.approx(float((output - velocity).pow(2).mean()), rel=1e-5)
    assert float(epsilon_loss) == pytest.approx(float((output - noise).pow(2).mean()), rel=1e-5)


def test_a_v_model_exports_a_v_scheduler_and_the_adapter_reads_it(tmp_path):
    from generator.diffusion.sampling import predicted_x0
    from generator.models.shapes import ShapesAdapter

    train(TINY, tmp_path / "run")
    export(tmp_path / "run", tmp_path / "w", command="test")
    adapter = ShapesAdapter(tmp_path / "w")
    assert adapter.prediction_type == "v_prediction"
    assert "Final loss (v MSE" in (tmp_path / "w" / "README.md").read_text()
    assert adapter.make_scheduler("ddim").config.prediction_type == "v_prediction"
    # the shared x0 estimate inverts v exactly: the true velocity gives back the clean image
    images = torch.from_numpy(ShapesStream(seed=0).batch(0, 1)[0])
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(0))
    a = 0.3
    x_t = a**0.5 * images + (1 - a) ** 0.5 * noise
    velocity = a**0.5 * noise - (1 - a) ** 0.5 * images
    assert torch.allclose(predicted_x0(velocity, x_t, a, "v_prediction"), images, atol=1e-5)
    assert adapter.generate("a red circle on the left", steps=2, seed=0).size == (32, 32)


def _drawn_timesteps(config: TrainConfig, batch: int = 64) -> torch.Tensor:
    parts = build_parts(config.model, seed=0)
    images, captions = ShapesStream(seed=0).batch(0, batch)
    seen = []
    parts.unet.register_forward_pre_hook(lambda module, args: seen.append(args[1].clone()))
    with torch.no_grad():
        diffusion_loss(parts, torch.from_numpy(images), captions, torch.Generator().manual_seed(3), config)
    return seen[0]


def test_noisy_share_moves_that_share_of_the_batch_to_the_noisiest_timesteps():
    uniform = _drawn_timesteps(TINY)
    everything_noisy = _drawn_timesteps(replace(TINY, noisy_share=1.0))
    half = _drawn_timesteps(replace(TINY, noisy_share=0.5))
    floor = int(NOISY_FROM * 1000)
    assert int(everything_noisy.min()) >= floor
    assert int((uniform < floor).sum()) > 32  # ~70% of 64 below the floor when uniform
    kept = half == uniform  # the rows not moved keep the uniform draw
    assert 16 <= int((~kept).sum()) <= 48 and int(half[~kept].min()) >= floor
