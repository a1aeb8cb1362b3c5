"""The page "What DAAM's maps tell us" (issue 19, item 5): baked from the reports of `diffatlas eval daam`,
`eval daam --value-norm` and `eval daam-edits`, rendered with one chart and one embed per table, every number
the report's; a missing report shows the command that writes it. No model runs: the reports are read.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from plotdata import plots, series

from generator.render.interval_chart import interval_chart
from generator.spec.prompt_set import load_prompt_set

REPO = Path(__file__).resolve().parents[2]
REPORTS = REPO / "prompts" / "reports"
CHARTS = ("steps", "layers", "heads", "better", "overlap", "spread-area", "spread-distance", "entangled-iou",
          "entangled-failure", "entangled-auc", "end-bins", "end-layers", "edits-iou", "edits-rho")


def _bake_and_render(root: Path, section: str) -> Path:
    """Bake a prompt file with only this section into root/site/generated and render; returns the generated folder."""
    from generator.bake.runner import bake
    from generator.render.site import render_site

    prompt_file = root / "findings.yaml"
    prompt_file.write_text("model: embedded:shapes\ndaam_findings:\n" + section)
    site = root / "site"
    shutil.copytree(REPO / "site" / "assets", site / "assets")
    bake(load_prompt_set(prompt_file), site / "generated")
    render_site(site / "generated", site)
    return site / "generated"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("findings")
    section = (f"  report: {REPORTS / 'daam-shapes.json'}\n  value_norm: {REPORTS / 'daam-shapes-value-norm.json'}\n"
               f"  edits: {REPORTS / 'daam-edits-shapes.json'}\n")
    generated = _bake_and_render(root, section)
    return generated, (generated / "daam-findings.md").read_text()


def _chart(page: str, name: str) -> dict:
    """The interval chart inside the figure of chart ``name``."""
    figure = re.search(rf'<figure [^>]*data-chart="{name}".*?</figure>', page, re.S)
    assert figure, f"no chart {name}"
    (plot,) = plots(figure.group(0), "intervals")
    return plot


def _rows(plot: dict) -> dict[str, float]:
    return dict(zip(plot["spec"]["rows"], series(plot, "mean")["y"]))


def test_page_quotes_the_reports_numbers_with_their_commands(rendered):
    generated, page = rendered
    report = json.loads((REPORTS / "daam-shapes.json").read_text())
    edits = json.loads((REPORTS / "daam-edits-shapes.json").read_text())
    summed = report["faithfulness"]["summed"]["test"]
    assert f"**{summed['mean']:.3f}** [{summed['low']:.3f}, {summed['high']:.3f}] (n {summed['n']})" in page
    end = report["analyses"]["special_tokens"]["overall"]["end"]
    assert f"**{end['mean']:.3f}**" in page
    colour = report["analyses"]["head_dependent"]["by_modifier"]["colour"]["own_minus_other"]
    assert ("**On this model that pattern is absent**" if colour["low"] <= 0 else "**On this model it holds**") in page
    assert report["settings"]["command"] in page and edits["command"] in page
    assert "--value-norm" in page  # the better-map chart names the value-norm command


def test_every_chart_is_drawn_from_its_table_and_has_an_embed(rendered):
    generated, page = rendered
    report = json.loads((REPORTS / "daam-shapes.json").read_text())
    value_norm = json.loads((REPORTS / "daam-shapes-value-norm.json").read_text())
    for name in CHARTS:
        _chart(page, name)
        embed = generated.parent / "embed" / f"daam-findings-findings-{name}.html"
        assert embed.is_file() and f'data-chart="{name}"' in embed.read_text(), name
    bins = _rows(_chart(page, "steps"))
    by_bin = [s["test"]["mean"] for s in report["faithfulness"]["selections"] if s["kind"] == "timestep_bin"]
    assert [v for k, v in bins.items() if k.startswith("bin ")] == by_bin
    assert bins["most faithful range: bins 0-3"] == report["faithfulness"]["most_faithful"]["step_range"]["test"]["mean"]
    layers = _rows(_chart(page, "layers"))
    selected = {(s["kind"], s["name"]): s["test"]["mean"] for s in report["faithfulness"]["selections"]}
    assert (layers["8×8 layers"], layers["16×16 layers"], layers["mid block"]) == (
        selected["resolution", "8x8"], selected["resolution", "16x16"], selected["location", "mid"])
    better = _rows(_chart(page, "better"))
    assert better["value-norm weighted, summed"] == value_norm["faithfulness"]["summed"]["test"]["mean"]
    end = _rows(_chart(page, "end-layers"))
    assert end["layer up1.0"] == report["analyses"]["special_tokens"]["per_layer"]["end"]["up1.0"]["mean"]
    uniform = [r for r in _chart(page, "end-bins")["spec"]["series"] if r["label"].startswith("uniform")]
    assert uniform[0]["kind"] == "dash"
    assert uniform[0]["y"][0] == report["analyses"]["special_tokens"]["uniform_baseline"]["end"]["mean"]


def test_interval_chart_carries_each_row_and_reference():
    chart = {"name": "t", "title": "T", "axis": "IoU", "references": [{"label": "sum", "value": 0.4}],
             "rows": [{"label": "a", "mean": 0.2, "low": 0.1, "high": 0.3, "n": 5},
                      {"label": "b", "mean": 0.75, "low": 0.6, "high": 0.9, "n": 7},
                      {"label": "c", "mean": -0.05}]}
    (plot,) = plots(str(interval_chart(chart)), "intervals")
    spec = plot["spec"]
    assert spec["rows"] == ["a", "b", "c"] and spec["y"]["min"] == -0.05 and spec["y"]["label"].startswith("IoU")
    assert series(plot, "mean")["x"] == [0, 1, 2] and series(plot, "mean")["y"] == [0.2, 0.75, -0.05]
    low, high = series(plot, "95% low"), series(plot, "95% high")  # the bars: rows a and b only
    assert [spec["series"].index(low), spec["series"].index(high)] == spec["intervals"]
    assert (low["x"], low["y"], high["y"]) == ([0, 1], [0.1, 0.6], [0.3, 0.9])
    assert series(plot, "n")["y"] == [5, 7] and series(plot, "n")["kind"] == "hidden"
    reference = series(plot, "sum")
    assert reference["kind"] == "dash" and reference["y"] == [0.4, 0.4] and reference["x"] == [-0.5, 2.5]
    assert "a: 0.200 [0.100, 0.300], n 5" in plot["label"]  # the summary a screen reader says
    assert plot["table"][1] == ["a", "0.200", "0.100 – 0.300", "5"] and plot["table"][3] == ["c", "-0.050", "–", ""]
    assert plot["table"][4] == ["reference: sum", "0.400", "", ""]
    assert interval_chart({**chart, "rows": []}) == ""


def test_missing_reports_show_the_commands_that_write_them(tmp_path):
    generated = _bake_and_render(tmp_path, "  report: none.json\n  value_norm: nv.json\n  edits: ne.json\n")
    page = (generated / "daam-findings.md").read_text()
    assert "There is no report at `" in page and "none.json" in page
    assert "diffatlas eval daam --n 48 --bins 5 --threads 1 --out " in page
    assert "diffatlas eval daam-edits --n 24 --tau 0.5 --threads 1 --out " in page
    assert "atlas-plot" not in page
