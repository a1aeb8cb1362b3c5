"""Browser: one prompt on two models, switched in place (assets/js/models.js)."""

from __future__ import annotations

import pytest

import fakesite
from browser_helpers import serve, watched_page


@pytest.fixture(scope="module")
def two_model_site(tmp_path_factory):
    with serve(fakesite.build_fixture_site(tmp_path_factory.mktemp("atlas-models"), fakesite.put_alongside)) as url:
        yield url


def _shown(page) -> list[str]:
    return page.eval_on_selector_all(".atlas-model-view", "els => els.filter(e => !e.hidden).map(e => e.id)")


def _toc_shown(page) -> list[str]:
    """The table of contents' entries that are not hidden, as the ids of their headings."""
    return page.eval_on_selector_all(
        ".md-nav--secondary a.md-nav__link[href^='#']",
        "links => links.filter(a => !a.closest('[hidden]')).map(a => decodeURIComponent(a.hash.slice(1)))")


def _panel_of(page, heading_id: str) -> str:
    return page.evaluate("id => (document.getElementById(id).closest('.atlas-model-view') || {id: ''}).id", heading_id)


def test_table_of_contents_lists_the_shown_models_headings_only(browser, two_model_site):
    with watched_page(browser, two_model_site) as w:
        page = w.page
        page.goto(f"{two_model_site}/generated/pages/red-cat.html")
        owner = {_panel_of(page, h) for h in _toc_shown(page)}
        assert "model-red-cat" in owner and "model-two-dogs" not in owner
        settings = [h for h in _toc_shown(page) if h.startswith("settings")]
        assert len(settings) == 1  # both panels have a Settings heading; one is listed
        page.get_by_role("tab").nth(1).click()
        partner = {_panel_of(page, h) for h in _toc_shown(page)}
        assert "model-two-dogs" in partner and "model-red-cat" not in partner
        w.assert_clean()


def test_one_panel_at_a_time_by_click_keys_and_permalink(browser, two_model_site):
    with watched_page(browser, two_model_site) as w:
        page = w.page
        page.goto(f"{two_model_site}/generated/pages/red-cat.html")
        tabs = page.get_by_role("tab")
        assert tabs.count() == 2 and page.locator("[data-atlas=models]").is_visible()
        assert _shown(page) == ["model-red-cat"]
        partner_frame = page.locator("#model-two-dogs figure[data-atlas=trajectory]")
        assert not partner_frame.is_visible()
        # every part of each model's page (scrubber, sections, final image, settings) sits in its own panel
        for panel in ("model-red-cat", "model-two-dogs"):
            assert page.locator(f"#{panel} img.atlas-final").count() == 1
            assert page.locator(f"#{panel} h2", has_text="Settings").count() == 1
        assert not page.locator("#model-two-dogs img.atlas-final").is_visible()
        tabs.nth(1).click()
        assert _shown(page) == ["model-two-dogs"] and partner_frame.is_visible()
        assert tabs.nth(1).get_attribute("aria-selected") == "true" and tabs.nth(0).get_attribute("aria-selected") == "false"
        page.wait_for_timeout(400)  # the hash is written debounced (atlas-core hashSet, 200 ms)
        assert "model=model-two-dogs" in page.evaluate("location.hash")
        # the partner's own scrubber works in its panel: its step label moves, the owner's does not
        page.locator("#model-two-dogs [data-action=next]").first.click()
        assert page.locator("#model-two-dogs [data-role=label]").first.inner_text().startswith("step 1 /")
        assert page.locator("#model-red-cat [data-role=label]").first.inner_text().startswith("step 0 /")
        tabs.nth(1).focus()
        page.keyboard.press("ArrowRight")  # wraps round to the first tab
        assert _shown(page) == ["model-red-cat"] and page.evaluate("document.activeElement.id") == "model-tab-red-cat"
        page.goto(f"{two_model_site}/generated/pages/red-cat.html#model=model-two-dogs")
        page.reload()
        assert _shown(page) == ["model-two-dogs"]  # a link opens the page on the model it names
        w.assert_clean()


def test_without_script_both_models_show_one_after_the_other(browser, two_model_site):
    with watched_page(browser, two_model_site, java_script_enabled=False) as w:
        w.page.goto(f"{two_model_site}/generated/pages/red-cat.html")
        assert not w.page.locator("[data-atlas=models]").is_visible()
        assert sorted(_shown(w.page)) == ["model-red-cat", "model-two-dogs"]
