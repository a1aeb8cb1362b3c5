"""The chapter "What DAAM's maps tell us" for every built-in text-to-image model: the section's ``models:``, each
model's reports and commands, the charts side by side, and the reports naming the model they measured."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from generator.bake.chapters.context import ChapterContext
from generator.bake.chapters.daam_findings import bake_chapter, baked_note
from generator.spec.bounded_yaml import SpecError
from generator.spec.prompt_set import load_prompt_set

REPO = Path(__file__).resolve().parents[2]
PIXEL = json.loads((REPO / "prompts" / "reports" / "daam-shapes.json").read_text())


def load(tmp_path: Path, section: str):
    path = tmp_path / "findings.yaml"
    path.write_text("model: embedded:shapes\ndaam_findings:\n" + section)
    return load_prompt_set(path)


def latent_report() -> dict:
    """The pixel report with other numbers, as the latent model's (every mean halved)."""
    report = copy.deepcopy(PIXEL)
    report["settings"].update(model="embedded:shapes-latent", slug="shapes-latent", space="latent",
                              command="diffatlas eval daam --weights generator/weights/shapes-latent --n 48 --bins 5")

    def halve(node):
        if isinstance(node, dict):
            return {k: (v / 2 if k == "mean" and isinstance(v, float) else halve(v)) for k, v in node.items()}
        return [halve(v) for v in node] if isinstance(node, list) else node
    report["faithfulness"] = halve(report["faithfulness"])
    return report


def test_default_models_are_both_built_in_text_to_image_models(tmp_path):
    spec = load(tmp_path, "  title: T\n").daam_findings
    reports = spec.model_reports()
    assert [r.model for r in reports] == ["embedded:shapes", "embedded:shapes-latent"]
    assert Path(reports[1].report) == tmp_path / "reports" / "daam-shapes-latent.json"
    assert Path(reports[1].edits) == tmp_path / "reports" / "daam-edits-shapes-latent.json"
    assert Path(reports[0].value_norm) == tmp_path / "reports" / "daam-shapes-value-norm.json"
    one = load(tmp_path, "  models: [embedded:shapes]\n  report: mine.json\n").daam_findings.model_reports()
    assert len(one) == 1 and Path(one[0].report) == tmp_path / "mine.json"
    with pytest.raises(SpecError, match="models must be a list"):
        load(tmp_path, "  models: [embedded:shapes, embedded:shapes]\n")


def test_each_model_gets_its_block_and_the_charts_put_them_side_by_side(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "daam-shapes.json").write_text(json.dumps(PIXEL))
    (reports / "daam-shapes-latent.json").write_text(json.dumps(latent_report()))
    manifest = bake_chapter(load(tmp_path, "  title: T\n"), ChapterContext(store=None, key="k", get_adapter=lambda: None))
    pixel, latent = manifest["models"]
    assert (pixel["model"], pixel["label"], latent["model"], latent["label"]) == (
        "embedded:shapes", "shapes", "embedded:shapes-latent", "shapes-latent")
    assert pixel["measured"] and latent["measured"] and latent["settings"]["space"] == "latent"
    assert manifest["faithfulness"] == pixel["faithfulness"]  # the top level stays the first model's
    steps = next(c for c in manifest["charts"] if c["name"] == "steps")
    assert steps["models"] == ["shapes", "shapes-latent"]
    first, second = steps["rows"][:2]  # the same row of both models, next to each other
    assert first["label"].endswith(" · shapes") and second["label"] == first["label"].replace(" · shapes", " · shapes-latent")
    assert second["mean"] == pytest.approx(first["mean"] / 2, abs=1e-4) and second["model"] == "shapes-latent"
    assert len({c["name"] for c in manifest["charts"]}) == len(manifest["charts"])  # one chart per table
    assert latent["reports"]["edits"]["measured"] is False
    missing = latent["reports"]["edits"]["command"]
    assert missing == "diffatlas eval daam-edits --weights generator/weights/shapes-latent --n 24 --tau 0.5 --threads 1 " \
                      f"--out {latent['reports']['edits']['path']}"
    assert missing in baked_note(manifest)


def test_one_model_measured_keeps_its_charts_unlabelled(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "daam-shapes.json").write_text(json.dumps(PIXEL))
    manifest = bake_chapter(load(tmp_path, "  title: T\n"), ChapterContext(store=None, key="k", get_adapter=lambda: None))
    steps = next(c for c in manifest["charts"] if c["name"] == "steps")
    assert "models" not in steps and not any(" · shapes" in r["label"] for r in steps["rows"])
    assert manifest["models"][1]["measured"] is False
    assert "--weights generator/weights/shapes-latent" in manifest["models"][1]["reports"]["report"]["command"]


def test_report_identity_names_the_shipped_model_and_its_space():
    from generator.cli.daam_eval import SHIPPED
    from generator.evaluate.daam_identity import model_identity

    adapter = SimpleNamespace(weight_hash="abc")
    pixel = model_identity(adapter, SHIPPED)
    latent = model_identity(adapter, SHIPPED.parent / "shapes-latent")
    assert (pixel["model"], pixel["slug"], pixel["space"]) == ("embedded:shapes", "shapes", "pixel")
    assert (latent["model"], latent["slug"], latent["space"]) == ("embedded:shapes-latent", "shapes-latent", "latent")
    assert latent["weights"].endswith("generator/weights/shapes-latent") and latent["weight_hash"] == "abc"


def rendered_page(tmp_path: Path, reports: dict[str, dict]) -> str:
    """The findings page baked and rendered from the given reports (file name -> report)."""
    import shutil

    from generator.bake.runner import bake
    from generator.render.site import render_site

    folder = tmp_path / "reports"
    folder.mkdir()
    for name, report in reports.items():
        (folder / name).write_text(json.dumps(report))
    site = tmp_path / "site"
    shutil.copytree(REPO / "site" / "assets", site / "assets")
    bake(load(tmp_path, "  title: T\n"), site / "generated")
    render_site(site / "generated", site)
    return (site / "generated" / "daam-findings.md").read_text()


def test_page_lists_every_model_with_its_number_or_command(tmp_path):
    page = rendered_page(tmp_path, {"daam-shapes.json": PIXEL})
    summed = PIXEL["faithfulness"]["summed"]["test"]
    space = PIXEL["settings"].get("space", "–")  # the shipped report predates the field
    assert f"| `embedded:shapes` | {space} | {summed['mean']:.3f} [{summed['low']:.3f}, {summed['high']:.3f}] (n {summed['n']}) |" in page
    latent = "| `embedded:shapes-latent` | – | not measured yet | – | `diffatlas eval daam --weights generator/weights/shapes-latent"
    assert latent in page


def test_trained_grounding_reads_the_folders_record(tmp_path):
    from generator.evaluate.daam_identity import trained_grounding

    assert trained_grounding(tmp_path) == 0.0  # no record
    (tmp_path / "training.json").write_text(json.dumps({"vae": {}, "unet": {"config": {"grounding": 0.03}}}))
    assert trained_grounding(tmp_path) == 0.03
    (tmp_path / "training.json").write_text(json.dumps({"config": {"steps": 3}}))  # the pixel model's, none
    assert trained_grounding(tmp_path) == 0.0
    # an exported latent folder records it per run; a later run without it still has the earlier one's attention
    later = {"unet": {"steps": 9, "started_from": {"steps": 3, "grounding": 0.05, "started_from": {"steps": 1}}}}
    (tmp_path / "training.json").write_text(json.dumps(later))
    assert trained_grounding(tmp_path) == 0.05


def test_page_says_which_model_was_taught_where_its_words_are(tmp_path):
    grounded = latent_report()
    grounded["settings"]["grounding"] = 0.03
    page = rendered_page(tmp_path, {"daam-shapes.json": PIXEL, "daam-shapes-latent.json": grounded})
    assert page.count("was trained with a grounding loss") == 1
    assert "`embedded:shapes-latent` was trained with a grounding loss on its cross-attention (weight 0.03" in page
