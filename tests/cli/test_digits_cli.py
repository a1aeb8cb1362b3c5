"""`diffatlas train digits` and `diffatlas eval digits` end to end on synthetic IDX files in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from generator.builtin.digits.mnist import write_idx_images, write_idx_labels
from generator.cli import app
from generator.errors import UserError


@pytest.fixture()
def mnist_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    data = tmp_path / "mnist"
    data.mkdir()
    for prefix, n in (("train", 48), ("t10k", 16)):
        write_idx_images(data / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx_labels(data / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    return data


def test_train_ship_and_eval(tmp_path: Path, mnist_dir: Path) -> None:
    runner = CliRunner()
    weights = tmp_path / "weights"
    result = runner.invoke(app, ["train", "digits", "--stage", "class", "--epochs", "2", "--hidden", "4",
                                 "--snapshots", "1,2", "--threads", "1", "--data", str(mnist_dir),
                                 "--out", str(tmp_path / "run"), "--ship-to", str(weights / "class")])
    assert result.exit_code == 0, result.output
    config = json.loads((weights / "class" / "config.json").read_text())
    assert config["command"].startswith("diffatlas train digits --stage class")
    assert config["snapshot_epochs"] == [1, 2] and config["dtype"] == "float16"
    assert sorted(p.name for p in (weights / "class").glob("*.safetensors")) == [
        "epoch_001.safetensors", "epoch_002.safetensors"]
    # Resuming a finished run trains nothing more and rewrites the same final weights.
    result = runner.invoke(app, ["train", "digits", "--stage", "class", "--epochs", "2", "--hidden", "4",
                                 "--snapshots", "1,2", "--data", str(mnist_dir), "--out", str(tmp_path / "run"),
                                 "--resume"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", "digits", "--stage", "classifier", "--epochs", "1", "--data",
                                 str(mnist_dir), "--out", str(tmp_path / "clf"), "--ship-to",
                                 str(weights / "classifier")])
    assert result.exit_code == 0, result.output
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["eval", "digits", "--stage", "class", "--n", "3", "--weights", str(weights),
                                 "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    evaluation = json.loads(out.read_text())
    assert evaluation["class"]["n"] == 3 and 0.0 <= evaluation["class"]["label_accuracy"] <= 1.0


def test_user_errors(tmp_path: Path, mnist_dir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["train", "digits", "--stage", "flow", "--data", str(mnist_dir)])
    assert isinstance(result.exception, UserError) and "--stage" in str(result.exception)
    result = runner.invoke(app, ["train", "digits", "--data", str(tmp_path / "missing")])
    assert isinstance(result.exception, UserError) and "does not exist" in str(result.exception)
    result = runner.invoke(app, ["eval", "digits", "--weights", str(tmp_path / "nothing")])
    assert isinstance(result.exception, UserError) and "classifier" in str(result.exception)
