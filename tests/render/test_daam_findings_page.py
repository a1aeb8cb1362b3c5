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

from generator.render.interval_chart import interval_svg
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


def _chart(page: str, name: str) -> str:
    match = re.search(rf'<svg class="atlas-interval-chart"[^>]*data-chart="{name}".*?</svg>', page, re.S)
    assert match, f"no chart {name}"
    return match.group(0)


def _rows(svg: str) -> dict[str, float]:
    return {label: float(mean) for label, mean in
            re.findall(r'<g class="atlas-interval-row" data-label="([^"]*)" data-mean="([^"]*)"', svg)}


def test_page_quotes_the_reports_numbers_with_their_commands(rendered):
    generated, page = rendered
    report = json.loads((REPORTS / "daam-shapes.json").read_text())
    edits = json.loads((REPORTS / "daam-edits-shapes.json").read_text())
    summed = report["faithfulness"]["summed"]["test"]
    assert f"**{summed['mean']:.3f}** [{summed['low']:.3f}, {summed['high']:.3f}] (n {summed['n']})" in page
    end = report["analyses"]["special_tokens"]["overall"]["end"]
    assert f"**{end['mean']:.3f}**" in page
    assert "On this model that pattern is\nabsent" in page or "**On this model that pattern is absent**" in page
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
    assert layers["8×8 layers"] == 0.4267 and layers["16×16 layers"] == 0.109 and layers["mid block"] == 0.3798
    better = _rows(_chart(page, "better"))
    assert better["value-norm weighted, summed"] == value_norm["faithfulness"]["summed"]["test"]["mean"]
    end = _rows(_chart(page, "end-layers"))
    assert end["layer up1.0"] == report["analyses"]["special_tokens"]["per_layer"]["end"]["up1.0"]["mean"]
    reference = re.search(r'class="atlas-interval-reference" data-label="uniform[^"]*" data-value="([^"]*)"',
                          _chart(page, "end-bins"))
    assert float(reference.group(1)) == report["analyses"]["special_tokens"]["uniform_baseline"]["end"]["mean"]


def test_interval_chart_puts_each_mark_at_its_value():
    chart = {"name": "t", "title": "T", "axis": "IoU", "references": [{"label": "sum", "value": 0.4}],
             "rows": [{"label": "a", "mean": 0.2, "low": 0.1, "high": 0.3, "n": 5},
                      {"label": "b", "mean": 0.75, "low": 0.6, "high": 0.9, "n": 7}]}
    svg = str(interval_svg(chart))
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', svg.split(">", 1)[0]))
    left, _, width, _ = map(float, attrs["plot"].split())
    x_min, x_max = float(attrs["x-min"]), float(attrs["x-max"])
    assert x_min == 0 and x_max == 1.0

    def value(x: str) -> float:
        return x_min + (float(x) - left) / width * (x_max - x_min)

    dots = re.findall(r'<circle cx="([^"]*)"', svg)
    assert [value(x) for x in dots] == pytest.approx([0.2, 0.75], abs=2e-3)
    bars = re.findall(r'<line x1="([^"]*)" x2="([^"]*)" y1="[^"]*" y2="[^"]*" stroke="#4263eb"', svg)
    assert [value(x) for pair in bars for x in pair] == pytest.approx([0.1, 0.3, 0.6, 0.9], abs=2e-3)
    assert "a: 0.200 [0.100, 0.300], n 5" in svg  # the hover title


def test_missing_reports_show_the_commands_that_write_them(tmp_path):
    generated = _bake_and_render(tmp_path, "  report: none.json\n  value_norm: nv.json\n  edits: ne.json\n")
    page = (generated / "daam-findings.md").read_text()
    assert "There is no report at `" in page and "none.json" in page
    assert "diffatlas eval daam --n 48 --bins 5 --threads 1 --out " in page
    assert "diffatlas eval daam-edits --n 24 --tau 0.5 --threads 1 --out " in page
    assert "atlas-interval-chart" not in page
