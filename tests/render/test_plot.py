"""The charts' data (generator/render/plot.py and the charts built on it) from known numbers, and the vendored
charting library: every series carries the values it was built from, hostile text stays text, the text
alternative holds the numbers, and the vendored files are the ones their README records."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import pytest
from plotdata import plots, series

from generator.render import charts
from generator.render.chapters.loss_chart import loss_chart
from generator.render.plot import Axis, Chart, Series, Table, plot_html

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "site" / "assets" / "vendor" / "uplot"


def test_a_chart_round_trips_its_numbers_and_escapes_every_string():
    hostile = "a'b\"c</div><script>alert(1)</script>&amp;"
    chart = Chart("miou", hostile, Axis(hostile, min=0, max=1.23456789), Axis("y", log=True),
                  [Series(hostile, [0, 0.5, 1], [1.23456789, 2e-7, math.inf], kind="points", marks=[2, 1, 0]),
                   Series("n", [0], [7], kind="hidden", own_scale=True)],
                  Table(hostile, ["τ", hostile], [[hostile, "1"]]), attributes={"stages": hostile})
    page = str(plot_html(chart))
    assert "<script>" not in page and "a'b" not in page  # nothing closes the attribute or opens a tag
    (plot,) = plots(page)
    spec = plot["spec"]
    assert plot["label"] == hostile and plot["attrs"]["stages"] == hostile
    assert spec["x"] == {"label": hostile, "digits": 4, "min": 0, "max": 1.23457}  # 6 significant digits
    assert spec["y"] == {"label": "y", "digits": 4, "log": True}
    points = series(plot, hostile)
    assert points["y"] == [1.23457, 2e-7, None] and points["marks"] == [2, 1, 0]  # JSON has no infinity
    assert series(plot, "n")["own_scale"] is True and "follow" not in spec
    assert plot["table"] == [["τ", hostile], [hostile, "1"]]


def test_a_series_must_be_whole():
    with pytest.raises(ValueError):
        Series("s", [0, 1], [1])
    with pytest.raises(ValueError):
        Series("s", [0, 1], [1, 2], marks=[0])
    with pytest.raises(ValueError):
        Series("s", [0], [1], kind="bars")
    with pytest.raises(ValueError):
        Chart("c", "c", Axis("x"), Axis("y"), [], Table("t", [], []), follow="hover")


def test_schedule_charts_from_a_constant_beta():
    betas = [0.1] * 10  # alpha-bar_t = 0.9^(t + 1)
    timesteps, alpha_bars = [9, 4], [0.9 ** 10, 0.9 ** 5]
    (alpha,) = plots(str(charts.alpha_bar_chart(betas, timesteps, alpha_bars)), "schedule")
    (snr,) = plots(str(charts.snr_chart(betas, timesteps, alpha_bars)), "snr")
    curve = alpha["spec"]["series"][0]
    assert curve["x"] == list(range(10)) and curve["y"] == pytest.approx([0.9 ** (t + 1) for t in range(10)], rel=1e-5)
    marks = series(alpha, "step")  # sorted by t, each naming its step
    assert (marks["x"], marks["marks"]) == ([4, 9], [1, 0])
    assert marks["y"] == pytest.approx([0.9 ** 5, 0.9 ** 10], rel=1e-5)
    assert alpha["spec"]["follow"] == snr["spec"]["follow"] == "marks" and snr["spec"]["y"]["log"]
    assert series(snr, "step")["y"] == pytest.approx([0.9 ** 5 / (1 - 0.9 ** 5), 0.9 ** 10 / (1 - 0.9 ** 10)], rel=1e-5)
    assert alpha["table"][1:] == [["0", "9", charts.fmt(0.9 ** 10)], ["1", "4", charts.fmt(0.9 ** 5)]]
    assert "the sampler visits 2 steps, t = 9, 4" in alpha["label"]


def test_beta_sum_chart_one_staircase_per_jump_point():
    betas = [0.01 * (t + 1) for t in range(100)]
    original = charts.cumulative_betas(betas)
    # two jump points (steps 0 and 2), each finishing in two jumps whose betas sum to the schedule's
    row = {"steps": 2, "timesteps": [[80, 40], [30, 0]],
           "betas": [[original[80] - original[40], original[40]], [original[30] - original[0], original[0]]]}
    (plot,) = plots(str(charts.beta_sum_chart(betas, row, [0, 2])), "betasum")
    spec = plot["spec"]
    assert spec["follow"] == "column" and spec["x"]["max"] == 80 and plot["attrs"]["jump-steps"] == "2"
    first, second = [s for s in spec["series"] if s["kind"] == "steps"]
    assert (first["column"], first["step"], second["column"], second["step"]) == (0, 0, 1, 2)
    assert first["x"] == [0, 40, 80] and first["y"] == pytest.approx([0, original[40], original[80]], rel=1e-5)
    assert second["x"] == [0, 30] and second["y"] == pytest.approx([original[0], original[30]], rel=1e-5)
    assert first["text"].startswith("jump from step 0 (t = 80): 2 betas, Σβ ")
    assert plot["table"][1][:3] == ["0", "80", "2 betas"] and plot["table"][2][3] == "30, 0"


def test_guidance_and_loss_charts():
    (guide,) = plots(str(charts.guidance_chart([0.5, 0.25, 0.125], [999, 500, 1])), "guidance")
    assert series(guide, "RMS")["y"] == [0.5, 0.25, 0.125] and series(guide, "step")["marks"] == [0, 1, 2]
    losses = {"step_losses": [1.0, 0.5, 0.25, 0.2, 0.1, 0.05], "epoch_losses": [0.58, 0.12], "steps_per_epoch": 3}
    (loss,) = plots(str(loss_chart([("time", losses)])), "loss")
    assert loss["attrs"]["stages"] == "time" and loss["spec"]["y"]["log"] and loss["spec"]["x"]["max"] == 2
    line = series(loss, "time-conditioned DDPM, per step")
    assert line["x"] == pytest.approx([0, 1 / 3, 2 / 3, 1, 4 / 3, 5 / 3], rel=1e-5)
    assert line["y"] == losses["step_losses"]
    dots = series(loss, "time-conditioned DDPM, epoch mean")
    assert (dots["x"], dots["y"]) == ([0.5, 1.5], [0.58, 0.12])
    assert loss["table"][1:] == [["time-conditioned DDPM", "1", "0.58"], ["time-conditioned DDPM", "2", "0.12"]]
    assert loss_chart([("time", {"step_losses": [], "epoch_losses": []})]) == ""


def test_vendored_uplot_is_what_its_readme_records():
    readme = (VENDOR / "README.md").read_text()
    rows = re.findall(r"\| `([^`]+)` \| ([\d,]+) \| `([0-9a-f]{64})` \|", readme)
    assert {name for name, _, _ in rows} == {"uPlot.iife.min.js", "uPlot.min.css", "LICENSE"}
    for name, size, digest in rows:
        data = (VENDOR / name).read_bytes()
        assert len(data) == int(size.replace(",", "")) and hashlib.sha256(data).hexdigest() == digest, name
    assert "uPlot 1.6.32" in readme and "MIT License" in (VENDOR / "LICENSE").read_text()
    # the library and the script that loads it fetch nothing from elsewhere
    for path in (VENDOR / "uPlot.iife.min.js", REPO / "site" / "assets" / "js" / "charts.js"):
        text = path.read_text()
        assert "fetch(" not in text and "XMLHttpRequest" not in text and "import(" not in text, path
        assert re.findall(r"https?://[^\s\"')]+", text) in ([], ["https://github.com/leeoniya/uPlot"]), path
