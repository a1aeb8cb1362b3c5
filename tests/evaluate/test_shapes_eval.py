"""`diffatlas train shapes` / `diffatlas eval shapes` end to end; the report's numbers are its own recomputation.

Also the report's best and worst DAAM examples (chosen from synthetic scores with known IoUs) and their PNGs.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from generator.builtin.shapes.world import ShapesStream
from generator.cli import app
from generator.evaluate.shapes_checker import SceneScore
from generator.evaluate.shapes_report import (
    TARGETS,
    NounScore,
    SampleScore,
    centre_box,
    iou,
    pick_examples,
    summarize_daam,
)


def decode_png(text: str) -> Image.Image:
    """A base64 PNG of the report, opened."""
    image = Image.open(io.BytesIO(base64.b64decode(text)))
    image.load()
    return image


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_train_export_and_eval_cli(tmp_path):
    runner = CliRunner()
    run, weights = tmp_path / "run", tmp_path / "weights"
    result = runner.invoke(app, ["train", "shapes", "--steps", "2", "--batch", "2", "--device", "cpu", "--threads", "1",
                                 "--out", str(run)])
    assert result.exit_code == 0, result.output
    again = runner.invoke(app, ["train", "shapes", "--steps", "2", "--batch", "2", "--device", "cpu", "--out", str(run)])
    assert again.exit_code != 0  # an existing run needs --resume
    result = runner.invoke(app, ["train", "shapes", "--export-only", "--out", str(run), "--ship-to", str(weights),
                                 "--threads", "2"])
    assert result.exit_code == 0, result.output
    info = json.loads((weights / "training.json").read_text())
    assert info["steps"] == 2 and info["command"].startswith("diffatlas train shapes --steps 2")
    assert info["hardware"]["torch_threads"] == 1  # the training run's threads, not the export's

    result = runner.invoke(app, ["eval", "shapes", "--weights", str(weights), "--n", "4", "--steps", "2",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = weights / "eval.json"  # the default: next to the weights it measures
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
    examples = data["daam"]["examples"]
    shown = examples["best"] + examples["worst"]
    assert len(examples["best"]) == min(6, len(nouns)) and len(shown) == min(12, len(nouns))
    for example in shown:  # each example is one of the samples' nouns, with that sample's IoU at the best tau
        sample = samples[example["sample"]]
        assert example["caption"] == sample["caption"]
        assert example["iou"] in [n["iou"][f"{examples['tau']:.2f}"] for n in sample["daam"] if n["noun"] == example["noun"]]
        assert decode_png(example["image"]).size == decode_png(example["truth"]).size == (32, 32)
    assert data["settings"]["trained_steps"] == 2
    assert (data["settings"]["text_encoder"], data["settings"]["coordinates"]) == ("clip_text_model", False)
    assert (data["settings"]["p2_gamma"], data["settings"]["started_from_step"]) == (None, None)
    assert (data["settings"]["prediction"], data["settings"]["noisy_share"]) == ("epsilon", None)
    readme = (weights / "README.md").read_text()  # the export's README, with the report's numbers appended
    assert readme.startswith("# embedded:shapes weights") and readme.count("## Measured") == 1
    assert f"**{data['summary']['one_object']:.1%}** of one-object" in readme and "--scheduler ddpm" in readme
    for group in TARGETS:  # the judged rates are the samples' own claims, pooled
        mine = [s for s in samples if s["group"] == group]
        rates = data["claims"][group]
        assert rates["scene_right"]["rate"] == round(np.mean([all(c["correct"] for c in s["claims"]) for s in mine]), 4)
        objects = [c for s in mine for c in s["claims"] if c["kind"] == "object"]
        assert rates["binding"]["n"] == len(objects) == sum(1 if group == "one_object" else 2 for _ in mine)
        assert rates["binding"]["low"] <= rates["binding"]["rate"] <= rates["binding"]["high"]
    assert set(data["claim_targets"]) == {"one_object.scene_right", "two_object.binding", "two_object.relation"}


def test_iou_and_baselines():
    a = torch.zeros(4, 4, dtype=torch.bool)
    a[:2] = True
    assert iou(a, a) == 1.0 and iou(a, ~a) == 0.0 and iou(a, torch.ones_like(a)) == 0.5
    assert centre_box(32, 32).sum() == 256 and centre_box(32, 32)[16, 16]


def _synthetic_results(ious: list[list[float]]) -> list[SampleScore]:
    """One sample per inner list (a real world image and its masks), one noun per IoU, heat maps from a formula."""
    stream = ShapesStream(seed=7)
    results = []
    for index, values in enumerate(ious):
        sample = stream.sample(index)
        nouns = []
        for position, value in enumerate(values):
            truth = sample.masks[position % len(sample.masks)]
            heat = ((np.arange(32 * 32).reshape(32, 32) * (index + 3) + position * 11) % 256).astype(np.uint8)
            nouns.append(NounScore(noun=f"noun{position}", colour="red", ious={"0.30": value, "0.40": round(1 - value, 4)},
                                   baseline_whole=0.1, baseline_centre=0.2, heat=heat, truth=truth))
        results.append(SampleScore(sample.scene, "one_object", sample.image, SceneScore((), ()), tuple(nouns)))
    return results


def test_examples_are_the_highest_and_lowest_ious_with_their_images():
    ious = [[0.9, 0.1], [0.5], [0.9, 0.05, 0.7], [0.3], [0.3, 0.8], [0.6], [0.2, 0.95]]
    results = _synthetic_results(ious)
    picked = pick_examples(results, 0.3, k=3)
    assert picked["tau"] == 0.3
    best = [(e["sample"], e["noun"], e["iou"]) for e in picked["best"]]
    worst = [(e["sample"], e["noun"], e["iou"]) for e in picked["worst"]]
    # highest first; the tie at 0.9 goes to the earlier sample
    assert best == [(6, "noun1", 0.95), (0, "noun0", 0.9), (2, "noun0", 0.9)]
    # lowest first; the tie at 0.3 goes to the earlier sample
    assert worst == [(2, "noun1", 0.05), (0, "noun1", 0.1), (6, "noun0", 0.2)]
    for example in picked["best"] + picked["worst"]:
        result = results[example["sample"]]
        noun = result.nouns[int(example["noun"][-1])]
        assert example["caption"] == result.scene.caption and example["group"] == "one_object"
        image, heat, truth = (decode_png(example[key]) for key in ("image", "heat", "truth"))
        assert image.size == heat.size == truth.size == (32, 32)
        assert (image.mode, heat.mode, truth.mode) == ("RGB", "L", "1")
        assert np.array_equal(np.asarray(image), result.image)
        assert np.array_equal(np.asarray(heat), noun.heat)
        assert np.array_equal(np.asarray(truth), noun.truth) and noun.truth.any()
        assert len(example["image"]) + len(example["heat"]) + len(example["truth"]) < 6000  # tiny
    # with fewer than 2k nouns the lists do not overlap; worst gets what is left
    few = pick_examples(results[:2], 0.3, k=2)
    assert [e["iou"] for e in few["best"]] == [0.9, 0.5] and [e["iou"] for e in few["worst"]] == [0.1]


def test_summary_picks_examples_at_the_best_tau():
    results = _synthetic_results([[0.9, 0.1], [0.2], [0.3]])  # mIoU 0.375 at 0.30, 0.625 at 0.40
    summary = summarize_daam(results, taus=(0.3, 0.4), examples=1)
    assert summary["best_tau"] == 0.4 and summary["miou"] == {"0.30": 0.375, "0.40": 0.625}
    assert summary["examples"]["tau"] == 0.4
    assert [e["iou"] for e in summary["examples"]["best"]] == [0.9]  # 1 - 0.1
    assert [e["iou"] for e in summary["examples"]["worst"]] == [0.1]
    json.dumps(summary)  # the report stays JSON


def test_writing_the_report_next_to_the_weights_keeps_the_model_fingerprint(tmp_path, monkeypatch):
    """eval.json lives in the weights folder but is no weight: shapes bakes must stay cached when it appears."""
    import shutil

    from generator.models import shapes

    folder = tmp_path / "shapes"
    shutil.copytree(shapes.shipped_weights_dir(), folder, ignore=shutil.ignore_patterns("eval.json"))
    monkeypatch.setattr(shapes, "shipped_weights_dir", lambda: folder)
    before = shapes.limits().fingerprint
    (folder / "eval.json").write_text("{}")
    assert shapes.limits().fingerprint == before
    (folder / "unet" / "config.json").write_text((folder / "unet" / "config.json").read_text() + " ")
    assert shapes.limits().fingerprint != before


def test_examples_of_a_small_eval_of_the_shipped_model_agree_with_its_samples(tmp_path):
    """A real (tiny) eval: the shipped model draws some objects, so the report has DAAM nouns and examples."""
    report = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["eval", "shapes", "--n", "4", "--steps", "4", "--device", "cpu", "--out", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    daam, samples = data["daam"], data["samples"]
    key = f"{daam['best_tau']:.2f}"
    ious = sorted((n["iou"][key] for s in samples for n in s["daam"]), reverse=True)
    assert ious, "the shipped model drew no object the checker recognised"
    assert daam["miou"][key] == max(daam["miou"].values())
    examples = daam["examples"]
    k = min(6, len(ious))
    assert examples["tau"] == daam["best_tau"]
    assert [e["iou"] for e in examples["best"]] == ious[:k]
    assert [e["iou"] for e in examples["worst"]] == sorted(ious[k:])[:6]
    for example in examples["best"] + examples["worst"]:
        sample = samples[example["sample"]]
        assert example["caption"] == sample["caption"]
        assert any(n["noun"] == example["noun"] and n["colour"] == example["colour"] and n["iou"][key] == example["iou"]
                   for n in sample["daam"])
        image, heat, truth = (decode_png(example[name]) for name in ("image", "heat", "truth"))
        assert image.size == heat.size == truth.size == (32, 32) and truth.mode == "1" and np.asarray(truth).any()


def test_eval_samples_with_the_requested_scheduler():
    from generator.errors import UserError
    from generator.evaluate.shapes_report import evaluate
    from generator.models.shapes import shipped_weights_dir

    weights = shipped_weights_dir()
    ddim = evaluate(weights, n=2, steps=3, daam=False, scheduler="ddim")
    ancestral = evaluate(weights, n=2, steps=3, daam=False, scheduler="euler-ancestral")
    assert (ddim["settings"]["sampler"], ancestral["settings"]["sampler"]) == ("ddim", "euler-ancestral")
    assert [s["caption"] for s in ddim["samples"]] == [s["caption"] for s in ancestral["samples"]]
    with pytest.raises(UserError, match="unknown scheduler"):
        evaluate(weights, n=2, steps=3, daam=False, scheduler="nope")


def test_the_measured_section_is_replaced_not_repeated():
    from generator.evaluate.shapes_report import replace_section

    readme = "# weights\n\nintro\n\n## Measured (old)\n\n- 1%\n\n## Notes\n\nkept\n"
    renewed = replace_section(readme, "## Measured (new)\n\n- 2%\n")
    assert renewed == "# weights\n\nintro\n\n## Measured (new)\n\n- 2%\n\n## Notes\n\nkept\n"
    assert replace_section("# weights\n", "## Measured (x)\n") == "# weights\n\n## Measured (x)\n"


def test_the_report_counts_the_steps_of_every_run_the_weights_grew_from():
    from generator.evaluate.shapes_report import _earlier_steps

    pixel = {"step": 1500, "started_from": {"step": 2750, "started_from": None}}  # the pixel model's record
    latent = {"steps": 2500, "final_loss": 0.15, "started_from": {"steps": 800}}  # the latent model's: earlier runs
    assert (_earlier_steps(pixel), _earlier_steps(latent), _earlier_steps(None)) == (4250, 3300, None)
