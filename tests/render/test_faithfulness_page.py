"""The page "How faithful is DAAM?": its prompt-file section, bake from an eval report, chart and render.

The eval report is synthetic (no model runs): real shapes-world images and masks, known IoUs, and the report's
own example picker (generator/evaluate/shapes_report.py), so the page is checked against numbers set here.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plotdata import plots, series
from spec.spec_errors import assert_one_line_error, write_prompt_file

from generator.errors import UserError
from generator.render.chapters.faithfulness import miou_chart
from generator.spec.prompt_set import load_prompt_set

REPO = Path(__file__).resolve().parents[2]
IMG_SRC = re.compile(r'<img [^>]*src="([^"]+)"')


def synthetic_report(count: int = 14) -> dict:
    """An eval report in the format `diffatlas eval shapes` writes, with chosen fidelity numbers and IoUs."""
    from generator.builtin.shapes.world import ShapesStream
    from generator.evaluate.shapes_checker import SceneScore
    from generator.evaluate.shapes_report import NounScore, SampleScore, summarize_daam

    stream = ShapesStream(seed=3)
    results = []
    for index in range(count):
        sample = stream.sample(index)
        value = round((index * 7 % count) / count, 4)  # distinct IoUs 0 .. (count-1)/count
        heat = (np.linspace(0, 255, 32 * 32).reshape(32, 32) * ((index % 3) + 1) % 256).astype(np.uint8)
        noun = NounScore(noun=sample.scene.objects[0].shape, colour=sample.scene.objects[0].colour,
                         ious={"0.20": round(value / 2, 4), "0.40": value}, baseline_whole=0.125, baseline_centre=0.25,
                         heat=heat, truth=sample.masks[0])
        results.append(SampleScore(sample.scene, "one_object", sample.image, SceneScore((), ()), (noun,)))
    daam = summarize_daam(results, taus=(0.2, 0.4))
    return {
        "summary": {"one_object": 0.9321, "two_object": 0.7054, "targets": {"one_object": 0.9, "two_object": 0.75},
                    "met": False, "images": 200},
        "by_attribute": {"one_object": {"colour": 0.9876, "count": 0.875, "shape": 0.9512, "position": 0.8123},
                         "two_object": {"colour": 0.9034, "relation": 0.6123, "shape": 0.7711}},
        "samples": [],
        "daam": daam,
        "settings": {"n": 200, "sampler": "ddim", "steps": 25, "guidance": 3.0, "seed": 1234, "trained_steps": 4321,
                     "weight_hash": "abcdef0123456789"},
    }


def _prompt_file(root: Path, section: str) -> Path:
    return write_prompt_file(root, "model: embedded:shapes\nfaithfulness:\n" + section, "faith.yaml")


def _bake_and_render(root: Path, prompt_file: Path) -> Path:
    """Bake the file (only its faithfulness page) into root/site/generated and render; returns the page's folder."""
    from generator.bake.runner import bake
    from generator.render.site import render_site

    site = root / "site"
    shutil.copytree(REPO / "site" / "assets", site / "assets")
    bake(load_prompt_set(prompt_file), site / "generated")
    render_site(site / "generated", site)
    return site / "generated"


@pytest.fixture(scope="module")
def report() -> dict:
    return synthetic_report()


def test_miou_chart_carries_every_tau_baseline_and_the_best() -> None:
    daam = {"miou": {"0.20": 0.31, "0.30": 0.52, "0.40": 0.64, "0.50": 0.47, "0.60": 0.12}, "best_tau": 0.4,
            "best_miou": 0.64, "baselines": {"whole_image": 0.08, "centre_box": 0.27}, "nouns": 10, "images": 9}
    (plot,) = plots(str(miou_chart(daam)), "miou")
    spec = plot["spec"]
    assert spec["x"]["min"] < 0.2 and spec["x"]["max"] > 0.6 and (spec["y"]["min"], spec["y"]["max"]) == (0, 1)
    curve = series(plot, "DAAM mIoU")
    assert curve["kind"] == "line" and list(zip(curve["x"], curve["y"])) == [
        (0.2, 0.31), (0.3, 0.52), (0.4, 0.64), (0.5, 0.47), (0.6, 0.12)]
    for name, label in (("whole_image", "whole image"), ("centre_box", "centre box")):
        line = series(plot, f"{label} baseline")  # dashed, across the whole plot
        assert line["kind"] == "dash" and line["y"] == [daam["baselines"][name]] * 2
        assert line["x"] == [spec["x"]["min"], spec["x"]["max"]]
    best = series(plot, "best τ = 0.4")
    assert best["kind"] == "ring" and (best["x"], best["y"]) == ([0.4], [0.64])
    # the text alternative: the summary and a table row per tau and baseline
    assert "0.4: 0.640" in plot["label"] and "whole image baseline 0.080" in plot["label"]
    assert plot["table"][0] == ["τ", "mIoU"] and ["0.4 (best)", "0.640"] in plot["table"]
    assert ["centre box baseline", "0.270"] in plot["table"] and len(plot["table"]) == 1 + 5 + 2
    assert miou_chart({"miou": {}}) == ""


def test_page_from_a_synthetic_report_shows_its_numbers_and_examples(tmp_path: Path, report: dict) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "eval.json").write_text(json.dumps(report))
    generated = _bake_and_render(tmp_path, _prompt_file(tmp_path, "  title: Faithful?\n  report: reports/eval.json\n"))
    manifest = json.loads((generated / "faithfulness" / "faith.json").read_text())
    assert manifest["measured"] and manifest["kind"] == "faithfulness"
    page = (generated / "faithfulness.md").read_text()
    assert "Not measured yet" not in page and "Nothing baked yet" not in page
    # fidelity: groups against targets, every attribute, the settings
    assert re.search(r"\| one object \| \*\*93\.2%\*\* \| ≥ 90% \| ✓ \|", page)
    assert re.search(r"\| two objects \| \*\*70\.5%\*\* \| ≥ 75% \| ✗ \|", page)
    assert "| colour | 98.8% | 90.3% |" in page and "| relation | – | 61.2% |" in page and "| count | 87.5% | – |" in page
    assert page.index("| colour |") < page.index("| shape |") < page.index("| position |") < page.index("| relation |")
    assert "4321 steps" in page and "abcdef0123456789" in page and "guidance 3.0" in page
    assert "diffatlas eval shapes --n 200 --scheduler ddim --steps 25 --guidance 3 --seed 1234 --out " in page
    # DAAM: the table per tau and the baselines
    daam = report["daam"]
    assert daam["best_tau"] == 0.4
    assert f"| DAAM, τ = 0.40 (best) | **{daam['miou']['0.40']:.3f}** |" in page
    assert f"| DAAM, τ = 0.20 | {daam['miou']['0.20']:.3f} |" in page
    assert "| baseline: whole image | 0.125 |" in page and "| baseline: centre box | 0.250 |" in page
    assert len(plots(page, "miou")) == 1
    # the examples: 6 best then 6 worst, as the report chose them, each image an existing file
    shown = [float(v) for v in re.findall(r'<div class="atlas-faith-example" data-iou="([^"]+)"', page)]
    ious = sorted((n["iou"] for n in daam["examples"]["best"] + daam["examples"]["worst"]), reverse=True)
    assert shown == [e["iou"] for e in daam["examples"]["best"]] + [e["iou"] for e in daam["examples"]["worst"]]
    assert shown[:6] == ious[:6] and sorted(shown[6:]) == sorted(ious[6:]) and len(shown) == 12
    sources = IMG_SRC.findall(page)
    assert len(sources) == 36
    for src in sources:
        assert (generated / src).is_file(), src
    first = daam["examples"]["best"][0]
    assert f"“{first['caption']}”" in page
    # the truth mask stored for the page is the report's mask; the heat map is coloured, same size
    entry = manifest["examples"]["best"][0]
    from generator.bake.chapters.faithfulness import decode_png

    with Image.open(generated / entry["truth"]["src"]) as truth:
        assert np.array_equal(np.asarray(truth.convert("1")), np.asarray(decode_png(first["truth"], "1", "test")))
    with Image.open(generated / entry["heat"]["src"]) as heat:
        assert heat.mode == "RGB" and heat.size == (32, 32)
    for figure in ("miou", "examples"):
        assert (tmp_path / "site" / "embed" / f"faithfulness-faith-{figure}.html").is_file()


def test_compare_puts_other_models_reports_side_by_side(tmp_path: Path, report: dict) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "eval.json").write_text(json.dumps(report))
    other = json.loads(json.dumps(report))
    other["summary"].update(one_object=0.5, two_object=0.25)
    other["daam"].update(best_miou=0.0987, best_tau=0.2, baselines={"whole_image": 0.111, "centre_box": 0.186})
    other["settings"].update(text_encoder="t5", coordinates=True, p2_gamma=1.0, trained_steps=777, started_from_step=8500,
                             prediction="v_prediction", noisy_share=0.5)
    (tmp_path / "r" / "other.json").write_text(json.dumps(other))
    section = ("  report: r/eval.json\n  compare:\n    - label: the old one\n      report: r/other.json\n"
               "    - report: r/other.json\n")
    generated = _bake_and_render(tmp_path, _prompt_file(tmp_path, section))
    page = (generated / "faithfulness.md").read_text()
    fidelity_header = ("| model | one object: scene right | two objects: binding | attributes, one object | "
                       "attributes, two objects |")
    daam_header = "| model | DAAM mIoU (best τ) | whole image | centre box | images |"
    lines = page.splitlines()
    fidelity = lines[lines.index(fidelity_header) + 2:lines.index(fidelity_header) + 6]
    daam_rows = lines[lines.index(daam_header) + 2:lines.index(daam_header) + 6]
    daam = report["daam"]
    assert fidelity[0] == "| model, 4321 steps (this page) | – | – | 93.2% | 70.5% |"
    assert fidelity[1] == "| the old one | – | – | 50.0% | 25.0% |"
    assert fidelity[2].startswith("| bidirectional T5 text encoder, x/y input channels, P2 loss weighting \\(γ 1\\), v\\-prediction, "
                                  "50% of timesteps from the noisiest 30%, 8500 \\+ 777 steps | – | – | 50.0% |")
    assert fidelity[3] == ""
    assert daam_rows[0] == f"| model, 4321 steps (this page) | **{daam['best_miou']:.3f}** (0.4) | 0.125 | 0.250 | 200 |"
    assert daam_rows[1] == "| the old one | **0.099** (0.2) | 0.111 | 0.186 | 200 |"
    assert daam_rows[2].endswith(" | **0.099** (0.2) | 0.111 | 0.186 | 200 |") and daam_rows[3] == ""  # three rows each
    (tmp_path / "r" / "other.json").unlink()
    with pytest.raises(UserError, match="faithfulness.compare: no eval report at .*other.json"):
        _bake_and_render(tmp_path / "again", _prompt_file(tmp_path, section))


def test_the_settings_line_counts_the_steps_of_the_runs_the_weights_grew_from(tmp_path: Path, report: dict) -> None:
    (tmp_path / "r").mkdir()
    assert "the model had trained 4321 steps\n" in _page_of(tmp_path / "a", report)
    report["settings"]["started_from_step"] = 16000
    assert "the model had trained 16000 + 4321 steps (its last run started from the weights of earlier runs)" in _page_of(
        tmp_path / "b", report)


def _page_of(folder: Path, report: dict) -> str:
    (folder / "r").mkdir(parents=True)
    (folder / "r" / "eval.json").write_text(json.dumps(report))
    return (_bake_and_render(folder, _prompt_file(folder, "  report: r/eval.json\n")) / "faithfulness.md").read_text()


def test_missing_report_gives_a_page_that_says_how_to_write_it(tmp_path: Path) -> None:
    generated = _bake_and_render(tmp_path, _prompt_file(tmp_path, "  report: not-yet.json\n"))
    page = (generated / "faithfulness.md").read_text()
    assert "Not measured yet" in page and "`diffatlas eval shapes --n 200 --out " in page and "not-yet.json" in page
    assert "<svg" not in page and "<img" not in page


def test_shapes_prompt_file_reads_the_shipped_report() -> None:
    from generator.bake.chapters.faithfulness import command, report_path

    spec = load_prompt_set(REPO / "prompts" / "shapes.yaml").faithfulness
    assert spec is not None and spec.report is None
    assert report_path(spec) == REPO / "generator" / "weights" / "shapes" / "eval.json"
    assert command(spec) == "diffatlas eval shapes --n 200"  # its default --out is that file


@pytest.mark.parametrize(
    ("section", "line", "message"),
    [
        ("  colour: red\n", 3, "unknown key 'colour' in faithfulness"),
        ("  report: eval.txt\n", 3, "report must be the path of a .json file"),
        ("  title: ''\n", 3, "title must be a non-empty string"),
        ("  compare:\n    - label: old\n", 4, "a compare entry needs a report"),
        ("  compare:\n    - report: a.json\n      label: ''\n", 5, "label must be a non-empty string"),
        ("  compare:\n    - report: a.json\n      colour: red\n", 5, "unknown key 'colour' in a compare entry"),
    ],
)
def test_section_errors_name_file_and_line(tmp_path: Path, section: str, line: int, message: str) -> None:
    assert_one_line_error(_prompt_file(tmp_path, section), line, message)


def test_a_broken_report_is_one_clear_error(tmp_path: Path, report: dict) -> None:
    from generator.bake.chapters.faithfulness import bake_chapter
    from generator.bake.chapters.context import ChapterContext
    from generator.bake.store import AssetStore

    prompt_set = load_prompt_set(_prompt_file(tmp_path, "  report: eval.json\n"))
    (tmp_path / "eval.json").write_text("{not json")
    with pytest.raises(UserError, match="cannot read the eval report"):
        bake_chapter(prompt_set, ChapterContext(AssetStore(tmp_path / "out"), "key", get_adapter=lambda: None))
    broken = json.loads(json.dumps(report))
    broken["daam"]["examples"]["best"][0]["heat"] = "not base64!"
    (tmp_path / "eval.json").write_text(json.dumps(broken))
    with pytest.raises(UserError, match=r"daam\.examples\.best\[0\] heat: not a base64 PNG"):
        bake_chapter(prompt_set, ChapterContext(AssetStore(tmp_path / "out"), "key", get_adapter=lambda: None))


def test_the_page_leads_with_judged_claims_and_shows_the_sampler_sweep(tmp_path: Path, report: dict) -> None:
    judged = json.loads(json.dumps(report))
    rate = {"rate": 0.53, "low": 0.45, "high": 0.61, "n": 200, "images": 100}
    judged["claims"] = {"one_object": {"scene_right": {**rate, "rate": 0.96, "low": 0.91, "high": 0.99, "n": 100}},
                        "two_object": {"binding": rate, "relation": {**rate, "rate": 0.41, "n": 57}}}
    judged["claim_targets"] = {"one_object.scene_right": 0.95, "two_object.binding": 0.85, "two_object.relation": 0.8}
    cell = {"scheduler": "ddim", "steps": 25, "guidance": 3.0, "score": 0.78,
            "rates": {"one_object": {"scene_right": {"rate": 0.97}}, "two_object": {"binding": {"rate": 0.85},
                                                                                    "relation": {"rate": 0.52}}}}
    judged["sweep"] = {"chosen": {"scheduler": "ddim", "steps": 25, "guidance": 3.0},
                       "measured": {"n": 60, "seed": 4321, "command": "diffatlas eval shapes --sweep --sweep-n 60"},
                       "rows": [cell, {**cell, "scheduler": "ddpm", "steps": 50, "score": 0.76}]}
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "eval.json").write_text(json.dumps(judged))
    page = (_bake_and_render(tmp_path, _prompt_file(tmp_path, "  report: r/eval.json\n")) / "faithfulness.md").read_text()
    lines = page.splitlines()
    assert "| one object | whole scene right | **96.0%** | 91.0–99.0% | 100 | ≥ 95% ✓ |" in lines
    assert "| two objects | object with its colour and shape | **53.0%** | 45.0–61.0% | 200 | ≥ 85% ✗ |" in lines
    assert "| two objects | relation | **41.0%** | 45.0–61.0% | 57 | ≥ 80% ✗ |" in lines
    assert page.index("whole scene right") < page.index("| prompts | attributes right |")  # the claims lead
    assert page.index("whole scene right") < page.index("object with its colour and shape") < page.index("| two objects | relation")
    assert "| ddim (chosen) | 25 | 3.0 | **0.780** | 97% | 85% | 52% |" in lines
    assert "| ddpm | 50 | 3.0 | 0.760 | 97% | 85% | 52% |" in lines
