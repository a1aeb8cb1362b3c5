"""Judged figures in headless Chromium: the verdict line under the final image, the line that follows the variants
widget, the gallery's badges and the judged-figures page (fake bake output with verdicts; no torch)."""

from __future__ import annotations

import fakesite  # (on sys.path through tests/browser/conftest.py)
import pytest
from browser_helpers import serve, watched_page

pytestmark = pytest.mark.browser

SEEN = """e => { const copy = e.cloneNode(true); copy.querySelectorAll('.atlas-sr').forEach(s => s.remove());
               return copy.textContent.trim(); }"""  # the line as a sighted reader sees it


@pytest.fixture(scope="module")
def judged_url(tmp_path_factory):
    """The fixture site with verdicts (red-cat agrees and has two judged variants; two-dogs is an expected failure)."""
    def judge(generated):
        fakesite.judge_fake_site(generated, expect_fail=True, variants=True)

    with serve(fakesite.build_fixture_site(tmp_path_factory.mktemp("judged-site"), judge)) as url:
        yield url


@pytest.fixture
def judged(browser, judged_url):
    with watched_page(browser, judged_url) as watched:
        yield watched


def test_the_line_shows_under_the_final_image_and_follows_the_chosen_variant(judged, judged_url):
    page = judged.page
    page.goto(f"{judged_url}/generated/pages/red-cat.html")
    final = page.locator("img.atlas-final")
    line = page.locator("img.atlas-final >> xpath=ancestor::p/following-sibling::p[1]")
    assert line.get_attribute("data-verdict") == "agrees" and line.is_visible()
    assert line.evaluate(SEEN) == fakesite.AGREES_LINE
    final.scroll_into_view_if_needed()
    assert line.bounding_box()["y"] >= final.bounding_box()["y"] + final.bounding_box()["height"]  # under it

    page.wait_for_selector("#variants-red-cat[data-atlas-mounted]")
    shown = "#variants-red-cat [data-variant]:not([hidden]) .atlas-verdict"
    assert page.locator(shown).count() == 1 and page.locator(shown).evaluate(SEEN) == fakesite.AGREES_LINE
    page.click("#variants-red-cat button[data-seed='7']")
    page.wait_for_function("() => document.querySelector('#variants-red-cat [data-variant=\"0\"]').hidden")
    assert page.locator(shown).count() == 1 and page.locator(shown).is_visible()
    assert page.locator(shown).evaluate(SEEN) == fakesite.DISAGREES_LINE
    assert page.locator(shown).get_attribute("data-verdict") == "disagrees"
    page.click("#variants-red-cat button[data-seed='42']")
    page.wait_for_function("() => !document.querySelector('#variants-red-cat [data-variant=\"0\"]').hidden")
    assert page.locator(shown).evaluate(SEEN) == fakesite.AGREES_LINE
    judged.assert_clean()  # the CSP let everything run


def test_gallery_badges_and_the_judged_figures_page(judged, judged_url):
    page = judged.page
    page.goto(f"{judged_url}/generated/gallery.html")
    badges = page.locator(".atlas-card .atlas-badge")
    assert badges.all_inner_texts() == ["✓ agrees", "✗ expected failure"]
    page.goto(f"{judged_url}/generated/quality.html")
    assert "Judged figures" in page.locator("nav").first.inner_text()  # in the site's navigation
    rows = page.locator("table.atlas-quality tbody tr")
    assert [r.get_attribute("data-verdict") for r in rows.all()] == ["agrees", "agrees", "disagrees", "expected"]
    assert rows.nth(3).locator(".atlas-verdict").evaluate(SEEN) == (
        f"{fakesite.DISAGREES_LINE} · expected failure: {fakesite.BINDING}")
    border = "e => getComputedStyle(e).borderLeftColor"  # each status its own colour (besides its words)
    colours = [r.locator(".atlas-verdict").evaluate(border) for r in rows.all()]
    assert colours[0] == colours[1] and len({colours[0], colours[2], colours[3]}) == 3
    width = page.locator(".md-content__inner").evaluate("e => e.getBoundingClientRect().right")
    assert rows.nth(3).locator(".atlas-verdict").evaluate("e => e.getBoundingClientRect().right") <= width  # wraps
    rows.nth(3).locator("a").click()
    page.wait_for_url("**/generated/pages/two-dogs.html")
    assert page.locator(".atlas-verdict-expected").first.is_visible()
    judged.assert_clean()

