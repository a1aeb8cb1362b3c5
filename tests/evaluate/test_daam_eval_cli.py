"""`diffatlas eval daam` end to end on the shipped shapes model (tiny n, few steps): the report's structure holds."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from generator.cli import app
from generator.evaluate.daam_faithfulness import TAU_GRID

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_eval_daam_writes_a_report(tmp_path):
    out = tmp_path / "daam.json"
    result = CliRunner().invoke(app, ["eval", "daam", "--n", "4", "--bins", "2", "--steps", "4", "--device", "cpu",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["sets"] == {"calibration": 4, "test": 4, "shared_captions": 0}
    faithful = report["faithfulness"]
    assert faithful["summed"]["tau"] in TAU_GRID and 0 <= faithful["summed"]["test"]["mean"] <= 1
    kinds = {row["kind"] for row in faithful["selections"]}
    assert {"all", "timestep_bin", "location", "resolution", "layer", "head", "head_index"} <= kinds
    heads = [row for row in faithful["selections"] if row["kind"] == "head"]
    assert len(heads) == len(report["layers"]) == 14  # 7 cross-attention layers x 2 heads
    analyses = report["analyses"]
    assert analyses["captions"] == 8 and set(analyses) >= {"head_dependent", "adjective_spread", "entanglement", "special_tokens"}
    end = analyses["special_tokens"]["overall"]["end"]
    assert end["n"] == 8 and 0 < end["mean"] < 1
    assert analyses["special_tokens"]["overall"]["pad"]["mean"] == 0.0  # the T5 encoder's padding is masked
    assert report["settings"]["command"].startswith("diffatlas eval daam --n 4 --bins 2")
    assert report["settings"]["command"].endswith(f" --out {out}")  # not the default: the command says where
    s = report["settings"]
    assert (s["model"], s["slug"], s["space"]) == ("embedded:shapes", "shapes", "pixel") and len(s["weight_hash"]) == 16


def test_eval_daam_on_the_latent_model_names_it_and_writes_its_own_report(tmp_path, monkeypatch):
    from generator.cli.daam_eval import SHIPPED

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["eval", "daam", "--weights", str(SHIPPED.parent / "shapes-latent"), "--n", "4",
                                      "--bins", "2", "--steps", "3", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "prompts" / "reports" / "daam-shapes-latent.json").read_text())  # the default out
    s = report["settings"]
    assert (s["model"], s["slug"], s["space"]) == ("embedded:shapes-latent", "shapes-latent", "latent")
    assert s["command"].startswith("diffatlas eval daam --weights ") and "shapes-latent --n 4 --bins 2" in s["command"]
    assert " --out " not in s["command"]
    assert len(report["layers"]) == 28 and max(row["head"] for row in report["layers"]) == 3  # 7 layers x 4 heads


def test_eval_daam_refuses_one_seed_for_both_sets(tmp_path):
    result = CliRunner().invoke(app, ["eval", "daam", "--calibration-seed", "3", "--test-seed", "3",
                                      "--out", str(tmp_path / "x.json")])
    assert result.exit_code != 0 and not (tmp_path / "x.json").exists()
