"""The guidance view and the schedule figure in headless Chromium, on a real (tiny) bake: the guidance images
change with the trajectory's step, the schedule marks the current step, the embeds load clean."""

from __future__ import annotations

import fakesite  # (on sys.path through tests/browser/conftest.py)
import pytest
from browser_helpers import serve, watched_page

pytestmark = pytest.mark.browser

PROMPTS = """
model: testing:tiny-sd
defaults: {steps: 3, guidance: 5, daam: false, width: 64, height: 64, scheduler: ddim, preview_size: 32, jumps: false}
prompts:
  - id: cat
    text: a smiling, red cat chewing gum
"""
PAGE = "generated/pages/cat.html"
PANES = "#guidance-cat .atlas-guide-grid .atlas-sprite"


@pytest.fixture(scope="module")
def guidance_site(tmp_path_factory, tiny_sd):
    """Bake with testing:tiny-sd, render and `mkdocs build --strict`; returns build/site."""
    return fakesite.bake_and_build(tmp_path_factory.mktemp("guidance-site"), PROMPTS, tiny_sd, "Guidance fixture")


@pytest.fixture(scope="module")
def guidance_url(guidance_site):
    with serve(guidance_site) as url:
        yield url


def test_guidance_images_change_with_the_step(browser, guidance_url):
    with watched_page(browser, guidance_url) as watched:
        page = watched.page
        page.goto(f"{guidance_url}/{PAGE}")
        page.wait_for_selector("#traj-cat[data-atlas-mounted]")
        panes = page.locator(PANES)
        assert panes.count() == 8  # 4 noise estimates, 4 clean images
        page.locator(f"{PANES} >> nth=0").scroll_into_view_if_needed()
        shots, previous_positions = {}, None
        strip = page.locator("#traj-cat [data-role=strip]")
        strip.focus()
        for key, step in (("Home", 0), ("ArrowRight", 1), ("ArrowRight", 2), ("End", 3)):
            page.keyboard.press(key)
            assert page.get_attribute("#traj-cat", "data-step") == str(step)
            frames = page.eval_on_selector_all(PANES, "els => els.map(e => e.dataset.frame)")
            assert frames == [str(step)] * 8
            positions = page.eval_on_selector_all(PANES, "els => els.map(e => e.style.backgroundPosition)")
            page.locator("#guidance-cat .atlas-guide-grid").scroll_into_view_if_needed()
            page.wait_for_function(  # the sheets have loaded: every pane draws a real image
                f"() => [...document.querySelectorAll('{PANES}')].every(e => e.style.backgroundImage.includes('url'))")
            shots[step] = [panes.nth(i).screenshot() for i in range(8)]
            # the schedule rings the current step on both charts (none at the final image: column 3 has no mark)
            page.wait_for_function("() => document.querySelectorAll('#schedule-cat [data-drawn]').length == 2")
            current = page.eval_on_selector_all("#schedule-cat .atlas-plot", "els => els.map(e => e.dataset.current)")
            assert current == [str(step)] * 2
            if step:
                assert positions != previous_positions
            previous_positions = positions
        # what the reader sees changes: every pane's pixels differ between the first and the second step
        assert all(a != b for a, b in zip(shots[0], shots[1]))
        # the range input of the figure drives the trajectory back
        page.fill("#guidance-cat input[data-follow=range]", "1")
        assert page.get_attribute("#traj-cat", "data-step") == "1"
        watched.assert_clean()


def test_guidance_and_schedule_embeds_load_clean(browser, guidance_url):
    with watched_page(browser, guidance_url, viewport={"width": 700, "height": 900}) as watched:
        for key in ("guidance", "schedule"):
            watched.page.goto(f"{guidance_url}/embed/cat-{key}.html#traj-cat=2")
            watched.page.wait_for_load_state("load")
            assert watched.page.get_attribute("[data-follow-group]", "data-step") == "2"
            frames = watched.page.eval_on_selector_all(".atlas-sprite[data-follow=step]",
                                                       "els => els.map(e => e.dataset.frame)")
            assert frames == (["2"] * 8 if key == "guidance" else [])
        watched.assert_clean()
