"""Training-loop tests: the loss goes down, checkpoints resume identically, outputs are written."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from generator.builtin.digits.train import TrainConfig, stage_defaults, stage_loss, train_digits
from generator.builtin.digits.unet import build_unet


def _data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic 'digits': a bright bar whose position encodes the label (learnable, fast)."""
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (n,), generator=g)
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    for i, label in enumerate(labels.tolist()):
        images[i, 4 + 2 * label: 6 + 2 * label, 4:24] = 255
    return images, labels.to(torch.uint8)


@pytest.mark.parametrize("stage", ["denoiser", "time", "class"])
def test_steps_on_fixed_batch_lower_the_loss(stage: str) -> None:
    config = replace(stage_defaults(stage), hidden=8, learning_rate=3e-3, channels_last=False)
    torch.manual_seed(0)
    model = build_unet(stage, config.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    images, labels = _data(16)
    batch = (images.float() / 255).unsqueeze(1)

    def loss_now() -> float:
        # Same noise draws every time, so the comparison measures the model alone.
        with torch.no_grad():
            return float(stage_loss(model, batch, labels.long(), config, torch.Generator().manual_seed(42)))

    before = loss_now()
    for _ in range(15):
        loss = stage_loss(model, batch, labels.long(), config, torch.Generator().manual_seed(42))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss_now() < 0.7 * before


def _tiny_config(stage: str = "class") -> TrainConfig:
    return replace(stage_defaults(stage), hidden=4, epochs=2, batch_size=16, snapshot_epochs=(1, 2),
                   checkpoint_every_steps=3)


def test_resume_continues_identically(tmp_path: Path) -> None:
    images, labels = _data(48)  # 3 steps per epoch, 6 in all
    config = _tiny_config()
    straight = train_digits(config, images, labels, tmp_path / "straight")
    train_digits(config, images, labels, tmp_path / "resumed", max_steps=4)  # stops mid-epoch 2
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    resumed = train_digits(config, images, labels, tmp_path / "resumed", resume=True)
    assert resumed.step_losses == straight.step_losses
    assert resumed.epoch_losses == straight.epoch_losses
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_outputs_snapshots_losses_and_config(tmp_path: Path) -> None:
    images, labels = _data(32)
    config = replace(_tiny_config("time"), snapshot_epochs=(1,))
    state = train_digits(config, images, labels, tmp_path)
    assert state.epoch == 2 and len(state.step_losses) == 4 and len(state.epoch_losses) == 2
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["epoch_001.safetensors"]
    losses = json.loads((tmp_path / "losses.json").read_text())
    assert losses["steps_per_epoch"] == 2 and len(losses["step_losses"]) == 4
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["architecture"] == "TimeConditionalUNet" and saved["hidden"] == 4
    assert saved["schedule"]["num_timesteps"] == 300
    # The snapshot is weights only, loadable into a fresh model.
    build_unet("time", 4).load_state_dict(load_file(str(tmp_path / "snapshots" / "epoch_001.safetensors")))
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_resume_refuses_other_config(tmp_path: Path) -> None:
    images, labels = _data(32)
    train_digits(_tiny_config(), images, labels, tmp_path, max_steps=1)
    with pytest.raises(ValueError, match="different configuration"):
        train_digits(replace(_tiny_config(), hidden=8), images, labels, tmp_path, resume=True)


def test_resume_with_other_epochs_replans_the_decay(tmp_path: Path) -> None:
    images, labels = _data(32)  # 2 steps per epoch
    config = replace(_tiny_config(), epochs=4, snapshot_epochs=(1,))
    train_digits(config, images, labels, tmp_path, max_steps=3)  # mid-epoch 2
    state = train_digits(replace(config, epochs=2), images, labels, tmp_path, resume=True)
    assert state.epoch == 2 and len(state.step_losses) == 4
    assert state.lr_replans[0]["epochs_before"] == 4 and state.lr_replans[0]["epochs_after"] == 2
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    final_lr = payload["optimizer"]["param_groups"][0]["lr"]
    assert abs(final_lr - config.learning_rate * config.lr_decay_to) < 1e-9
    assert json.loads((tmp_path / "config.json").read_text())["train"]["epochs"] == 2
    with pytest.raises(ValueError, match="cannot shorten"):
        train_digits(replace(config, epochs=1), images, labels, tmp_path, resume=True)


def test_ema_is_saved_beside_each_snapshot_and_resumes_identically(tmp_path: Path) -> None:
    images, labels = _data(48)  # 3 steps per epoch
    config = replace(_tiny_config("time"), ema_decay=0.5)
    train_digits(config, images, labels, tmp_path / "straight")
    train_digits(config, images, labels, tmp_path / "resumed", max_steps=4)
    train_digits(config, images, labels, tmp_path / "resumed", resume=True)
    for run in ("straight", "resumed"):
        names = sorted(p.name for p in (tmp_path / run / "snapshots" / "ema").iterdir())
        assert names == ["epoch_001.safetensors", "epoch_002.safetensors"]
    raw = load_file(str(tmp_path / "straight" / "model.safetensors"))
    ema = load_file(str(tmp_path / "straight" / "ema" / "model.safetensors"))
    again = load_file(str(tmp_path / "resumed" / "ema" / "model.safetensors"))
    assert raw.keys() == ema.keys()
    assert any(not torch.equal(raw[k], ema[k]) for k in raw if raw[k].is_floating_point())  # an average, not a copy
    for name in ema:
        assert torch.equal(ema[name], again[name]), name
    build_unet("time", 4).load_state_dict(ema)  # loadable as the plain model


def test_ema_warm_up_forgets_the_initial_weights() -> None:
    from generator.builtin.digits.train import ema_warmup_update

    update = ema_warmup_update(0.999)
    averaged, current = [torch.zeros(3)], [torch.ones(3)]
    for n in range(1, 301):  # AveragedModel counts the first (copying) update as n = 0
        update(averaged, current, torch.tensor(n))
    # a plain 0.999 would still weigh the zeros by 0.999^300 = 0.74; the warm-up leaves under 3% of them
    assert float(averaged[0][0]) > 0.97
    counter = [torch.tensor(5)]
    update(counter, [torch.tensor(9)], torch.tensor(3))
    assert int(counter[0]) == 9
