"""Weights without code: pickled model folders need --allow-pickle, safetensors win, damaged weights are one line."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from generator.errors import UserError
from generator.models.registry import check_weights, load_model

PROMPTS = "defaults: {steps: 2, width: 64, height: 64, daam: false, jumps: false}\nprompts:\n  - {id: cat, text: a red cat}\n"


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """The tiny random-weight SD pipeline saved twice: with pickled unet/vae (.bin) and as safetensors."""
    from generator.models.testing.pipelines import build_tiny_sd

    root = tmp_path_factory.mktemp("weights")
    pipeline = build_tiny_sd(torch.device("cpu"), torch.float32)
    pipeline.save_pretrained(root / "pickled", safe_serialization=False)
    pipeline.save_pretrained(root / "safe", safe_serialization=True)
    assert (root / "pickled" / "unet" / "diffusion_pytorch_model.bin").is_file()
    return {"pickled": root / "pickled", "safe": root / "safe"}


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def bake_cli(monkeypatch, capsys, folder: Path, tmp_path: Path, *extra: str) -> tuple[int, str, Path]:
    """`diffatlas bake` of one prompt on the model ``folder``, in this process: (exit code, stderr, out folder)."""
    from generator.cli import main

    (tmp_path / "set.yaml").write_text(f"model: {folder}\n" + PROMPTS)
    out = tmp_path / "generated"
    monkeypatch.setattr(sys, "argv", ["diffatlas", "bake", str(tmp_path / "set.yaml"), "--out", str(out),
                                      "--device", "cpu", *extra])
    code = 0
    try:
        main()
    except SystemExit as exit_info:
        code = exit_info.code
    return code, capsys.readouterr().err, out


def test_a_pickled_folder_is_refused_with_one_line_naming_the_file(folders, tmp_path, monkeypatch, capsys):
    code, stderr, out = bake_cli(monkeypatch, capsys, folders["pickled"], tmp_path)
    pickle_file = folders["pickled"] / "unet" / "diffusion_pytorch_model.bin"
    assert code == 2 and not out.exists()
    assert stderr == (f"error: {pickle_file}: pickled weights can run code when they load, so they are refused; convert "
                      "the folder to safetensors, or pass --allow-pickle if you trust where it came from\n")


def test_the_same_folder_loads_with_allow_pickle_and_says_so(folders, tmp_path, monkeypatch, capsys):
    code, stderr, out = bake_cli(monkeypatch, capsys, folders["pickled"], tmp_path, "--allow-pickle")
    assert code == 0, stderr
    assert f"loading {folders['pickled']} (pickle (unet, vae) weights)" in " ".join(stderr.split())  # rich wraps
    assert "error" not in stderr.lower()
    manifest = json.loads((out / "prompts" / "cat.json").read_text())
    assert manifest["model"]["weights_format"] == "pickle (unet, vae)"


def test_safetensors_are_used_when_a_folder_has_both(folders, tmp_path):
    folder = copy_of(folders["safe"], tmp_path)
    for part in ("unet", "vae"):  # a pickle that would fail (or run code) if it were ever read
        (folder / part / "diffusion_pytorch_model.bin").write_bytes(b"not a pickle at all")
    assert check_weights(str(folder)) == "safetensors"
    adapter = load_model(str(folder), device="cpu", dtype="fp32")
    assert adapter.weights_format == "safetensors"
    reference = load_model(str(folders["safe"]), device="cpu", dtype="fp32")
    assert adapter.weight_hash == reference.weight_hash


def test_built_in_models_report_their_format():
    assert check_weights("embedded:shapes") == "safetensors"
    assert check_weights("testing:tiny-sd") == "random (built locally)"


@pytest.mark.parametrize("damage,message", [
    ("truncate", "is cut short ({cut} bytes, its header describes {whole})"),
    ("header", "has a broken header (not the JSON table of tensors safetensors writes)"),
    ("length", "has a broken header (its length field points past the end of the file)"),
    ("empty", "is cut short (0 bytes, not even a header)"),
], ids=["cut in half", "garbled header", "huge header length", "empty file"])
def test_damaged_safetensors_are_one_line_before_anything_runs(folders, tmp_path, monkeypatch, capsys, damage, message):
    folder = copy_of(folders["safe"], tmp_path)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    whole = len(data)
    if damage == "truncate":
        data = data[: whole // 2]
        message = message.format(cut=whole // 2, whole=whole)
    elif damage == "header":
        data[8:40] = b"\xff" * 32
    elif damage == "length":
        data[:8] = (2**62).to_bytes(8, "little")
    else:
        data = b""
    weights.write_bytes(bytes(data))
    run_folder = tmp_path / "run"
    run_folder.mkdir()
    code, stderr, out = bake_cli(monkeypatch, capsys, folder, run_folder)
    assert code == 2 and not out.exists()
    assert stderr == f"error: {weights} {message}; copy or download the model again\n"


def test_a_damaged_allowed_pickle_is_one_line(folders, tmp_path):
    folder = copy_of(folders["pickled"], tmp_path)
    weights = folder / "unet" / "diffusion_pytorch_model.bin"
    os.truncate(weights, weights.stat().st_size // 2)
    with pytest.raises(UserError) as error:
        load_model(str(folder), device="cpu", dtype="fp32", allow_pickle=True)
    assert str(error.value).startswith(f"cannot load model '{folder}': Unable to load weights from checkpoint file")
    assert "\n" not in str(error.value) and str(weights) in str(error.value)


# --- the project's own training checkpoints -----------------------------------------------------------------


class Planted:
    """An object whose unpickling would create a file (what a hostile checkpoint does with os.system)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_checkpoints_round_trip_tensors_and_plain_values(tmp_path):
    from generator.builtin.checkpoints import load_checkpoint, save_checkpoint

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "generator": torch.Generator().get_state(),
             "config": {"steps": 4, "sizes": (1, 2), "name": "run", "rate": 0.5, "none": None}, "loss_history": [[1, 0.25]]}
    torch.save(state, tmp_path / "old.pt")  # as checkpoints were written before (plain torch.save)
    save_checkpoint(state, tmp_path / "new.pt")
    for name in ("old.pt", "new.pt"):
        loaded = load_checkpoint(tmp_path / name)
        assert loaded["config"] == state["config"] and loaded["loss_history"] == [[1, 0.25]]
        assert torch.equal(loaded["model"]["weight"], model.weight.detach())
        assert loaded["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    assert not list(tmp_path.glob(".*tmp*"))


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    from generator.builtin.checkpoints import load_checkpoint

    marker = tmp_path / "ran"
    torch.save({"model": {}, "config": Planted(str(marker))}, tmp_path / "checkpoint.pt")
    with pytest.raises(UserError, match=r"checkpoint.pt: refused, it holds objects other than tensors and plain values"):
        load_checkpoint(tmp_path / "checkpoint.pt")
    assert not marker.exists()
    torch.load(tmp_path / "checkpoint.pt", weights_only=False)  # the control: an unrestricted load runs it
    assert marker.exists()


def test_a_cut_checkpoint_is_one_line(tmp_path):
    from generator.builtin.checkpoints import load_checkpoint

    torch.save({"model": {"w": torch.zeros(1000)}}, tmp_path / "checkpoint.pt")
    os.truncate(tmp_path / "checkpoint.pt", 600)
    with pytest.raises(UserError) as error:
        load_checkpoint(tmp_path / "checkpoint.pt")
    assert "cannot read the checkpoint, it is damaged or cut short" in str(error.value)
    assert "\n" not in str(error.value)
