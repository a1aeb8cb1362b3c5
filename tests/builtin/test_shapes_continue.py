"""Continuing the shapes model from exported weights, with more of some scene layouts."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from generator.builtin.shapes.model import load_parts
from generator.builtin.shapes.world import ShapesStream
from generator.cli import app
from generator.errors import UserError
from generator.models.shapes import shipped_weights_dir


def test_layout_weights_choose_the_layouts_and_none_keeps_the_old_stream():
    only_relations = ShapesStream(seed=3, layouts={"relation": 1.0})
    assert {only_relations.scene(i).layout for i in range(60)} == {"relation"}
    default, explicit = ShapesStream(seed=3), ShapesStream(seed=3, layouts=None)
    assert [default.scene(i).caption for i in range(40)] == [explicit.scene(i).caption for i in range(40)]
    assert {default.scene(i).layout for i in range(200)} == {"single", "pair", "relation", "count", "triple"}


def test_a_run_starts_from_exported_weights_and_keeps_their_history(tmp_path, one_thread):
    run = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "train", "shapes", "--steps", "1", "--batch", "2", "--device", "cpu", "--out", str(run), "--text-encoder", "t5",
        "--coordinates", "--prediction", "v", "--init-from", str(shipped_weights_dir()),
        "--layout-weights", "pair=1,relation=1"])
    assert result.exit_code == 0, result.output
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    shipped = load_parts(shipped_weights_dir())
    # one step at the warm-up learning rate (lr / 500) barely moves a weight: the run starts from the shipped model
    for name, tensor in shipped.unet.named_parameters():
        assert torch.allclose(state["model"][f"unet.{name}"], tensor, atol=1e-4), name
    trained = json.loads((shipped_weights_dir() / "training.json").read_text())
    assert state["started_from"]["step"] == trained["steps"]
    assert state["started_from"]["command"] == trained["command"]  # the weights README can name the run it grew from
    config = json.loads((run / "config.json").read_text())
    assert config["layout_weights"] == {"pair": 1.0, "relation": 1.0}
    # the shipped UNet learned on a frozen taught encoder: the continued run keeps it (--text), trains the UNet only
    assert "text_encoder" in trained and config["text_from"] == str(shipped_weights_dir())
    assert state["started_from"]["text_encoder"] is False
    assert not any(name.startswith("text_encoder.") for name in state["model"])
    assert "--text " in (run / "command.txt").read_text()


def test_bad_layout_weights_are_one_line(tmp_path):
    result = CliRunner().invoke(app, ["train", "shapes", "--steps", "1", "--out", str(tmp_path / "r"),
                                      "--layout-weights", "pairs=1"])
    assert isinstance(result.exception, UserError) and "--layout-weights" in str(result.exception)  # main(): exit 2
