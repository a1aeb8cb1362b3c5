"""The sampler sweep: the table it measures, the cell it picks, and the defaults every caller then uses."""

from __future__ import annotations

import json
import os

from generator.builtin.defaults import read_defaults, write_defaults
from generator.evaluate.sampler_sweep import SweepCell, choose, staged_sweep


def fake_measure(cell: SweepCell) -> tuple[float, dict]:
    """DPM-Solver++ at 25 steps is best; guidance 5 is best of all; 50 steps only ties 25."""
    score = {"ddim": 0.6, "dpm-solver++": 0.9}[cell.scheduler] + (0.0 if cell.steps == 10 else 0.001 * (cell.steps == 50))
    score += {1.0: -0.2, 3.0: 0.0, 5.0: 0.05}[cell.guidance]
    return score, {"cell": f"{cell.scheduler}/{cell.steps}/{cell.guidance:g}"}


def test_staged_sweep_measures_the_grid_then_guidance_of_the_best_and_ties_go_to_fewer_steps():
    result = staged_sweep(["ddim", "dpm-solver++"], [10, 25, 50], [1.0, 3.0, 5.0], 3.0, fake_measure)
    cells = [(r["scheduler"], r["steps"], r["guidance"]) for r in result["rows"]]
    assert cells[:6] == [(s, k, 3.0) for s in ("ddim", "dpm-solver++") for k in (10, 25, 50)]
    # 10 and 25 steps score the same and 50 one thousandth more (a tie): the stage-2 cells use 10 steps
    assert cells[6:] == [("dpm-solver++", 10, 1.0), ("dpm-solver++", 10, 5.0)]
    assert result["chosen"] == {"scheduler": "dpm-solver++", "steps": 10, "guidance": 5.0, "score": 0.95}


def test_choose_prefers_a_clear_winner_over_fewer_steps():
    rows = [{"scheduler": "a", "steps": 10, "guidance": 3.0, "score": 0.80},
            {"scheduler": "b", "steps": 50, "guidance": 3.0, "score": 0.90}]
    assert choose(rows)["scheduler"] == "b"


def test_defaults_file_round_trips_with_its_measurement(tmp_path):
    result = staged_sweep(["ddim"], [10], [], 3.0, fake_measure)
    written = write_defaults(tmp_path, result, "diffatlas eval shapes --sweep", {"n": 60})
    assert read_defaults(tmp_path) == written == json.loads((tmp_path / "defaults.json").read_text())
    assert written["measured"] == {"command": "diffatlas eval shapes --sweep", "score": 0.6, "n": 60}
    assert read_defaults(tmp_path / "nowhere") is None


def test_the_shapes_adapter_and_prompt_files_use_the_recorded_defaults(tmp_path):
    import shutil

    from generator.models.shapes import ShapesAdapter, shipped_weights_dir
    from generator.spec.prompt_set import PromptSpec, Settings

    folder = tmp_path / "shapes"
    shutil.copytree(shipped_weights_dir(), folder)
    (folder / "defaults.json").write_text(json.dumps({"scheduler": "euler", "steps": 17, "guidance": 4.5,
                                                      "measured": {}, "sweep": []}))
    adapter = ShapesAdapter(folder)
    assert (adapter.default_scheduler, adapter.default_steps, adapter.default_guidance) == ("euler", 17, 4.5)
    unset = PromptSpec("p", "a red circle", Settings()).with_model_defaults(adapter).settings
    assert (unset.scheduler, unset.steps, unset.guidance) == ("euler", 17, 4.5)
    own = PromptSpec("p", "a red circle", Settings(steps=9, guidance=0.0, scheduler="ddim")).with_model_defaults(adapter)
    assert (own.settings.scheduler, own.settings.steps, own.settings.guidance) == ("ddim", 9, 0.0)


def test_the_sweep_measures_the_latent_model_and_its_defaults_reach_its_adapter(tmp_path, monkeypatch, one_thread):
    """`eval shapes --sweep` on the latent model's Stable Diffusion folder (a tiny grid): the table is written next
    to its weights and `load_model` of that folder then samples with the chosen cell."""
    import shutil

    import generator.cli.shapes as shapes_cli
    from generator.models.registry import load_model
    from generator.models.schedulers import SCHEDULERS
    from generator.models.shapes import shipped_weights_dir

    folder = tmp_path / "shapes-latent"
    shutil.copytree(shipped_weights_dir().parent / "shapes-latent", folder)
    monkeypatch.setattr(shapes_cli, "SWEEP_STEPS", (2,))
    monkeypatch.setattr(shapes_cli, "SWEEP_GUIDANCES", (1.0, 3.0))
    shipped_guidance = read_defaults(folder)["guidance"]  # the first stage runs at it
    shapes_cli._sweep_defaults(folder, "cpu", 2, 1)
    written = read_defaults(folder)
    assert [row["scheduler"] for row in written["sweep"][:len(SCHEDULERS)]] == list(SCHEDULERS)
    assert {row["guidance"] for row in written["sweep"][:len(SCHEDULERS)]} == {shipped_guidance}
    # every scheduler at 2 steps, then the best at each other guidance of the grid
    assert [row["guidance"] for row in written["sweep"][len(SCHEDULERS):]] == [
        g for g in (1.0, 3.0) if g != shipped_guidance]
    assert written["measured"]["command"] == (  # names the folder it measured: not the eval's default one
        f"diffatlas eval shapes --weights {os.path.relpath(folder)} --sweep --sweep-n 2 --threads 1")
    adapter = load_model(str(folder), device="cpu", dtype="fp32")
    assert (adapter.default_scheduler, adapter.default_steps, adapter.default_guidance) == (
        written["scheduler"], written["steps"], written["guidance"])
    # the eval report carries the table and the chosen cell (the faithfulness page marks it)
    from generator.evaluate.shapes_report import evaluate

    report = evaluate(folder, n=2, daam=False, steps=2)
    assert report["sweep"]["chosen"] == {k: written[k] for k in ("scheduler", "steps", "guidance")}
    assert report["sweep"]["rows"] == written["sweep"]
