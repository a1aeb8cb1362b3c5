"""Browser test of the course chapter: before/after, anagram and hybrid buttons in headless Chromium."""

from __future__ import annotations

import fakechapters  # (tests/render/fakechapters.py, on sys.path through tests/browser/conftest.py)
import fakesite  # (on sys.path through tests/browser/conftest.py)
import pytest
from browser_helpers import Watched, serve


@pytest.fixture(scope="module")
def course_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("course-site")
    with serve(fakesite.build_fixture_site(root, lambda generated: fakechapters.write_chapter(generated, "experiments"))) as url:
        yield url


def _opacity(page, selector: str) -> float:
    return float(page.eval_on_selector(selector, "el => getComputedStyle(el).opacity"))


@pytest.mark.browser
def test_course_buttons_toggle_and_cross_fade(browser, course_url):
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    watched = Watched(page, course_url)
    page.goto(f"{course_url}/generated/course.html")
    fig = "#course-course-sdedit-scene"
    after = f"{fig} [data-role=after]"
    toggle = page.locator(f"{fig} [data-action=toggle]")
    assert toggle.get_attribute("aria-pressed") == "false" and _opacity(page, after) == 0
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    page.wait_for_function(f"() => getComputedStyle(document.querySelector('{after}')).opacity === '1'")
    first_level = page.locator(f"{fig} [data-level='0']")
    first_level.click()  # pick start index 1: its result and trajectory show
    assert first_level.get_attribute("aria-pressed") == "true"
    assert page.locator(f"{fig} [data-level='1']").get_attribute("aria-pressed") == "false"
    assert page.locator(f"{fig} [data-run='0']").is_visible() and not page.locator(f"{fig} [data-run='1']").is_visible()
    toggle.focus()
    page.keyboard.press("Enter")  # keyboard: back to the input
    assert toggle.get_attribute("aria-pressed") == "false"
    page.wait_for_function(f"() => getComputedStyle(document.querySelector('{after}')).opacity === '0'")
    page.hover("#course-course-inpaint-box [data-role=stage]")  # hover cross-fades without pinning
    page.wait_for_function("() => getComputedStyle(document.querySelector('#course-course-inpaint-box [data-role=after]')).opacity === '1'")

    flip = page.locator("#course-course-anagram-a [data-action=flip]")
    flip.click()
    assert flip.get_attribute("aria-pressed") == "true"
    assert page.locator("#course-course-anagram-a").get_attribute("data-turned") == "1"
    assert "down" in page.locator("#course-course-anagram-a [data-role=course-label]").inner_text()

    hybrid = "#course-course-hybrid-h"
    width_close = page.eval_on_selector(f"{hybrid} [data-role=image]", "el => el.style.width")
    far = page.locator(f"{hybrid} [data-scale='0.15']")
    far.click()
    assert far.get_attribute("aria-pressed") == "true"
    assert page.locator(f"{hybrid} [data-scale='1']").get_attribute("aria-pressed") == "false"
    assert page.eval_on_selector(f"{hybrid} [data-role=image]", "el => el.style.width") != width_close
    assert "far" in page.locator(f"{hybrid} [data-role=course-label]").inner_text()
    page.keyboard.press("ArrowLeft")  # arrow keys move between distances
    assert page.locator(f"{hybrid} [data-scale='0.4']").get_attribute("aria-pressed") == "true"

    page.goto(f"{course_url}/embed/course-course-anagram-a.html")  # every widget is embeddable
    page.locator("[data-action=flip]").click()
    assert page.locator("[data-atlas=anagram]").get_attribute("data-turned") == "1"
    watched.assert_clean()
    context.close()
