"""Browser test of the training chapter: epoch animations play on hover/focus/tap, loop buttons, embed page."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import fakesite  # (on sys.path through tests/browser/conftest.py)
import pytest
from browser_helpers import Watched, serve

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bake"))
import training_chapter_fixture  # noqa: E402

RECORD_FRAMES = """(el) => {
  window.__frames = [];
  new MutationObserver(() => window.__frames.push(el.dataset.frame)).observe(el, {attributes: true, attributeFilter: ["data-frame"]});
}"""


@pytest.fixture(scope="module")
def training_url(tmp_path_factory):
    from generator.render import render_site

    root = tmp_path_factory.mktemp("training-site")
    generated = training_chapter_fixture.bake_fixture(root / "bake")
    fakesite.copy_site(root)
    shutil.copytree(generated, root / "site" / "generated")
    render_site(root / "site" / "generated", root / "site")
    with serve(fakesite.mkdocs_build(root)) as url:
        yield url


def _frames(page) -> list[str]:
    return page.evaluate("window.__frames")


def test_hovering_an_epoch_plays_its_sampling(browser, training_url):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    watch = Watched(page, training_url)
    page.goto(f"{training_url}/generated/training.html")
    figure = page.locator("#training-digits-epochs-class")
    panels = figure.locator("[data-role=epoch]")
    assert panels.count() == 2  # snapshots after epochs 1 and 3
    stage = panels.first.locator("[data-role=stage]")
    stage.scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('#training-digits-epochs-class [data-role=stage]').style.backgroundPosition")
    assert stage.get_attribute("data-frame") == "2"  # at rest: the finished samples (last of 3 frames)
    label = panels.first.locator("[data-role=label]")
    assert label.inner_text() == "step 4 / 4"

    stage.evaluate(RECORD_FRAMES)
    stage.hover()
    page.wait_for_function("() => window.__frames.length >= 3")
    assert _frames(page)[:3] == ["0", "1", "2"]  # noise -> samples
    assert panels.first.get_attribute("data-playing") == "true"  # still hovered: holds, then plays again
    page.mouse.move(5, 5)
    page.wait_for_function("() => document.querySelector('#training-digits-epochs-class [data-role=epoch]').dataset.playing === 'false'")
    assert stage.get_attribute("data-frame") == "2" and label.inner_text() == "step 4 / 4"

    # the loop button: aria-pressed, plays until pressed again
    button = panels.nth(1).locator("[data-action=play]")
    assert button.get_attribute("aria-pressed") == "false"
    second = panels.nth(1).locator("[data-role=stage]")
    second.evaluate(RECORD_FRAMES)
    button.click()
    assert button.get_attribute("aria-pressed") == "true"
    page.wait_for_function("() => window.__frames.filter(f => f === '0').length >= 2", timeout=5000)  # looped
    button.click()
    assert button.get_attribute("aria-pressed") == "false"
    page.wait_for_function("() => document.querySelectorAll('#training-digits-epochs-class [data-role=epoch]')[1].dataset.playing === 'false'")

    # keyboard focus plays too
    stage.evaluate(RECORD_FRAMES)
    stage.focus()
    page.wait_for_function("() => window.__frames.includes('1')")
    page.locator("body").click(position={"x": 2, "y": 2})  # blur

    play_all = figure.locator("[data-action=play-all]")
    play_all.click()
    assert play_all.get_attribute("aria-pressed") == "true"
    assert [panels.nth(i).locator("[data-action=play]").get_attribute("aria-pressed") for i in range(2)] == ["true", "true"]
    play_all.click()
    assert panels.first.locator("[data-action=play]").get_attribute("aria-pressed") == "false"

    page.wait_for_function("() => document.querySelectorAll('.atlas-plot-loss[data-drawn]').length === 2")
    charts = page.locator(".atlas-plot-loss")  # the denoiser's, and the time and class models' on one chart (issue 18)
    stages = sorted(charts.nth(i).get_attribute("data-stages") for i in range(2))
    assert stages == ["denoiser", "time class"]
    assert all(charts.nth(i).locator("canvas").bounding_box()["height"] > 150 for i in range(2))
    watch.assert_clean()
    page.close()


def test_epoch_embed_page_plays_on_tap(browser, training_url):
    context = browser.new_context(has_touch=True, viewport={"width": 800, "height": 700})
    page = context.new_page()
    watch = Watched(page, training_url)
    page.goto(f"{training_url}/embed/training-digits-epochs-time.html")
    panels = page.locator("[data-role=epoch]")
    assert panels.count() == 3
    stage = panels.first.locator("[data-role=stage]")
    stage.evaluate(RECORD_FRAMES)
    stage.tap()
    assert panels.first.locator("[data-action=play]").get_attribute("aria-pressed") == "true"
    page.wait_for_function("() => window.__frames.includes('1')")
    assert page.locator(".atlas-md-missing, .md-header").count() == 0  # no MkDocs chrome in embeds
    watch.assert_clean()
    context.close()
