"""The charts (generator/render/plot.py + site/assets/js/charts.js + the vendored uPlot) in headless Chromium, on a
real (tiny) bake with the schedule, guidance and beta-sum jump charts and the training and faithfulness chapters:
every chart draws at a real size, hovering names the values (the jump under the pointer), a click on a staircase
moves the page to its jump, the marks follow the scrubber, the dark scheme changes the colours, the library is
loaded only where a chart is, nothing leaves the page, and axe finds no serious or critical violation."""

from __future__ import annotations

import re

import fakechapters  # (tests/render/fakechapters.py, on sys.path through tests/browser/conftest.py)
import fakesite
import pytest
from accessibility_audit import describe, violations
from browser_helpers import serve, watched_page

pytestmark = pytest.mark.browser

PROMPTS = """
model: testing:tiny-sd
defaults: {steps: 3, guidance: 5, daam: false, width: 64, height: 64, preview_size: 32, jumps: false}
prompts:
  - id: cat
    text: a smiling, red cat chewing gum
    jumps: {every: 1, steps: [2], method: beta-sum}
"""
PAGE = "generated/pages/cat.html"
LIBRARY = "vendor/uplot/uPlot.iife.min.js"


@pytest.fixture(scope="module")
def chart_url(tmp_path_factory, tiny_sd):
    """Bake with testing:tiny-sd, add the fixture training and faithfulness chapters, render and build."""
    from generator.bake.runner import bake
    from generator.render import render_site
    from generator.spec.prompt_set import load_prompt_set

    root = fakesite.copy_site(tmp_path_factory.mktemp("chart-site"))
    (root / "prompts.yaml").write_text(PROMPTS)
    generated = root / "site" / "generated"
    bake(load_prompt_set(root / "prompts.yaml"), generated, adapter=tiny_sd)
    for kind in ("training", "faithfulness"):
        fakechapters.write_chapter(generated, kind)
    render_site(generated, root / "site")
    (root / "site" / "index.md").write_text("# Charts fixture\n\n[Gallery](generated/gallery.md)\n")
    with serve(fakesite.mkdocs_build(root)) as url:
        yield url


def _drawn(page, count: int) -> list[dict]:
    """Wait until ``count`` charts are drawn; each one's name, canvas size and current column."""
    page.wait_for_function(f"() => document.querySelectorAll('.atlas-plot[data-drawn]').length === {count}")
    return page.eval_on_selector_all(".atlas-plot", """els => els.map(e => {
        const c = e.querySelector('canvas').getBoundingClientRect();
        return {name: [...e.classList].find(k => k.startsWith('atlas-plot-')).slice(11), width: c.width,
                height: c.height, current: e.dataset.current};
    })""")


def _point(page, selector: str, x: float, y: float) -> tuple[float, float]:
    """The page position of data point (x, y) on a linear chart whose axes have fixed ends in its spec."""
    return page.eval_on_selector(selector, """(el, [x, y]) => {
        const spec = JSON.parse(el.dataset.plot), over = el.querySelector('.u-over').getBoundingClientRect();
        return [over.left + (x - spec.x.min) / (spec.x.max - spec.x.min) * over.width,
                over.top + (1 - (y - spec.y.min) / (spec.y.max - spec.y.min)) * over.height];
    }""", [x, y])


def test_prompt_page_charts_draw_hover_follow_and_click(browser, chart_url):
    with watched_page(browser, chart_url) as watched:
        page, requests = watched.page, []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(f"{chart_url}/{PAGE}")
        charts = _drawn(page, 4)
        assert sorted(c["name"] for c in charts) == ["betasum", "guidance", "schedule", "snr"]
        assert all(c["width"] > 200 and c["height"] > 120 for c in charts), charts
        assert sum(r.endswith(LIBRARY) for r in requests) == 1  # loaded once, from the site itself
        # the marks follow the trajectory's step: the ring moves (pixels change), data-current names the step
        schedule = page.locator("#schedule-cat .atlas-plot-schedule")
        schedule.scroll_into_view_if_needed()
        before = schedule.locator("canvas").screenshot()
        assert schedule.get_attribute("data-current") == "0"
        page.fill("#schedule-cat input[data-follow=range]", "1")
        assert schedule.get_attribute("data-current") == "1" and schedule.locator("canvas").screenshot() != before
        # hovering the schedule names t and the values there
        box = schedule.locator(".u-over").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        text = schedule.locator(".atlas-plot-readout").inner_text()
        assert text.startswith("t = ") and "ᾱₜ 0." in text, text
        # the beta-sum chart: hovering a staircase names its jump, a click moves the page to that jump's step
        chart = "#jumps-cat .atlas-plot-betasum"
        spec = page.eval_on_selector(chart, "el => JSON.parse(el.dataset.plot)")
        stairs = [s for s in spec["series"] if s["kind"] == "steps"]
        target = next(s for s in reversed(stairs) if len(s["x"]) > 2)  # its second stair: at y[1] from x[1] to x[2]
        page.locator(chart).scroll_into_view_if_needed()
        x, y = _point(page, chart, (target["x"][1] + target["x"][2]) / 2, target["y"][1])
        page.mouse.move(x, y)
        readout = page.locator(f"{chart} .atlas-plot-readout").inner_text()
        named = re.search(r"jump from step (\d+) \(t = [^)]+\): \d+ betas, Σβ ", readout)
        assert named, readout  # the staircase under the pointer (the nearest one within 12 px) is named
        step = int(named.group(1))
        assert step in [s["step"] for s in stairs]
        page.mouse.click(x, y)
        assert page.get_attribute("#traj-cat", "data-step") == str(step)
        columns = page.get_attribute("#jumps-cat", "data-column-map").split(",")
        column = next(s["column"] for s in stairs if s["step"] == step)
        assert page.get_attribute(chart, "data-current") == columns[step] == str(column)
        watched.assert_clean()


def test_dark_scheme_changes_the_colours_and_back(browser, chart_url):
    with watched_page(browser, chart_url) as watched:
        page = watched.page
        page.goto(f"{chart_url}/{PAGE}")
        _drawn(page, 4)
        canvas = page.locator("#schedule-cat .atlas-plot-schedule canvas")
        canvas.scroll_into_view_if_needed()
        light = canvas.screenshot()
        page.evaluate("() => document.body.setAttribute('data-md-color-scheme', 'slate')")  # Material's toggle
        page.wait_for_timeout(100)
        dark = canvas.screenshot()
        assert dark != light
        page.evaluate("() => document.body.setAttribute('data-md-color-scheme', 'default')")
        page.wait_for_timeout(100)
        assert canvas.screenshot() == light
        watched.assert_clean()


@pytest.mark.parametrize("path, names", [("generated/training.html", ["loss"]),
                                         ("generated/faithfulness.html", ["miou"]),
                                         ("embed/training-digits-losses.html?theme=dark", ["loss"])])
def test_chapter_charts_draw_and_hover(browser, chart_url, path, names):
    with watched_page(browser, chart_url) as watched:
        page = watched.page
        page.goto(f"{chart_url}/{path}")
        charts = _drawn(page, len(names))
        assert [c["name"] for c in charts] == names and all(c["width"] > 200 and c["height"] > 150 for c in charts)
        plot = page.locator(".atlas-plot").first
        plot.scroll_into_view_if_needed()
        box = plot.locator(".u-over").bounding_box()
        readout = plot.locator(".atlas-plot-readout")
        hint = readout.inner_text()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
        assert readout.inner_text() != hint and any(ch.isdigit() for ch in readout.inner_text())
        watched.assert_clean()


def test_the_library_loads_only_where_a_chart_is(browser, chart_url):
    with watched_page(browser, chart_url) as watched:
        page, requests = watched.page, []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(f"{chart_url}/generated/gallery.html")
        page.wait_for_load_state("load")
        assert not any("vendor/uplot" in r for r in requests)
        assert page.evaluate("() => typeof window.uPlot") == "undefined"
        watched.assert_clean()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_chart_pages_pass_the_accessibility_audit(browser, chart_url, scheme):
    """Whole pages in the light scheme; in the dark one the charts (the training page's download links fail colour
    contrast in the dark scheme, outside the charts)."""
    with watched_page(browser, chart_url, color_scheme=scheme) as watched:
        page = watched.page
        for path, count in ((PAGE, 4), ("generated/training.html", 1), ("generated/faithfulness.html", 1)):
            page.goto(f"{chart_url}/{path}")
            _drawn(page, count)
            page.locator("details.atlas-plot-numbers >> nth=0").evaluate("el => el.open = true")
            found = violations(page) if scheme == "light" else _chart_violations(page)
            assert found == [], f"{path} ({scheme}):\n{describe(found)}"
        watched.assert_clean()


def _chart_violations(page) -> list[dict]:
    """axe's serious and critical violations inside the charts only."""
    violations(page, ())  # injects axe
    result = page.evaluate("() => axe.run({include: [['.atlas-plot']]}, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]
