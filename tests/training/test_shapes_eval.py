"""`diffatlas train shapes` / `diffatlas eval shapes` end to end; the report's numbers are its own recomputation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from generator.cli import app
from generator.training.shapes_eval import TARGETS, centre_box, iou


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_train_export_and_eval_cli(tmp_path):
    runner = CliRunner()
    run, weights, report = tmp_path / "run", tmp_path / "weights", tmp_path / "eval.json"
    result = runner.invoke(app, ["train", "shapes", "--steps", "2", "--batch", "2", "--device", "cpu", "--out", str(run)])
    assert result.exit_code == 0, result.output
    again = runner.invoke(app, ["train", "shapes", "--steps", "2", "--batch", "2", "--device", "cpu", "--out", str(run)])
    assert again.exit_code != 0  # an existing run needs --resume
    result = runner.invoke(app, ["train", "shapes", "--export-only", "--out", str(run), "--ship-to", str(weights)])
    assert result.exit_code == 0, result.output
    info = json.loads((weights / "training.json").read_text())
    assert info["steps"] == 2 and info["command"].startswith("diffatlas train shapes --steps 2")

    result = runner.invoke(app, ["eval", "shapes", "--weights", str(weights), "--n", "4", "--steps", "2",
                                 "--device", "cpu", "--out", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    samples = data["samples"]
    assert len(samples) == data["summary"]["images"] == 4
    for group in TARGETS:
        mine = [s for s in samples if s["group"] == group]
        assert len(mine) == 2
        assert data["summary"][group] == round(sum(s["right"] for s in mine) / sum(s["total"] for s in mine), 4)
    nouns = [n for s in samples for n in s["daam"]]
    assert data["daam"]["nouns"] == len(nouns)
    if nouns:
        for tau, value in data["daam"]["miou"].items():
            assert value == round(float(np.mean([n["iou"][tau] for n in nouns])), 4)
    assert data["settings"]["trained_steps"] == 2


def test_iou_and_baselines():
    a = torch.zeros(4, 4, dtype=torch.bool)
    a[:2] = True
    assert iou(a, a) == 1.0 and iou(a, ~a) == 0.0 and iou(a, torch.ones_like(a)) == 0.5
    assert centre_box(32, 32).sum() == 256 and centre_box(32, 32)[16, 16]
