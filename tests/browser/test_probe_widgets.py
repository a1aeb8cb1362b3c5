"""Probe widgets in headless Chromium on a real (tiny) bake: jump rows, prompt pair, variants, map, text view
and pipeline overview follow the trajectory's step; variants swap without reload; no errors, no third-party
requests."""

from __future__ import annotations

import fakesite  # (on sys.path through tests/browser/conftest.py)
import pytest
from browser_helpers import Watched, serve, watched_page

pytestmark = pytest.mark.browser

TEXT = "a smiling, red cat chewing gum"
PROMPTS = f"""
model: testing:tiny-sd
defaults: {{steps: 3, guidance: 1, daam: false, width: 64, height: 64, scheduler: ddim, preview_size: 32,
           jumps: {{every: 2, steps: [1, 2]}}}}
prompts:
  - id: cat
    text: {TEXT}
    compare: a smiling, blue cat chewing gum
    guidances: [0]
    seeds: [0, 1]
"""
PAGE = "generated/pages/cat.html"


@pytest.fixture(scope="module")
def probe_site(tmp_path_factory, tiny_sd):
    """Bake with testing:tiny-sd, render and `mkdocs build --strict`; returns build/site."""
    return fakesite.bake_and_build(tmp_path_factory.mktemp("probe-site"), PROMPTS, tiny_sd, "Probe fixture")


@pytest.fixture(scope="module")
def probe_url(probe_site):
    with serve(probe_site) as url:
        yield url


@pytest.fixture
def probe(browser, probe_url):
    with watched_page(browser, probe_url) as watched:
        watched.page.goto(f"{probe_url}/{PAGE}")
        watched.page.wait_for_selector("#traj-cat[data-atlas-mounted]")
        yield watched


def frames(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.frame)")


def test_jump_rows_pair_and_map_scrub_in_sync_with_the_main_strip(probe):
    page = probe.page
    frame_of_step = [int(v) for v in page.get_attribute("#jumps-cat", "data-column-map").split(",")]
    assert frame_of_step == [0, 0, 1, 2]  # jump points 0 and 2, then the final frame
    strip = page.locator("#traj-cat [data-role=strip]")
    strip.focus()
    for key, step in (("ArrowRight", 1), ("ArrowRight", 2), ("End", 3), ("Home", 0)):
        page.keyboard.press(key)
        assert page.get_attribute("#traj-cat", "data-step") == str(step)
        # jump rows: x_t at the step, each jump row at the latest jump point
        assert frames(page, "#jumps-cat .atlas-sprite[data-follow=step]") == [str(step)] + [str(frame_of_step[step])] * 2
        assert page.locator("#jumps-cat .atlas-jump-col.atlas-current").get_attribute("data-column") == str(frame_of_step[step])
        assert frames(page, "#compare-cat .atlas-sprite[data-follow=step]") == [str(step)] * 5  # A, B, the heat map
        assert page.input_value("#compare-cat input[data-follow=range]") == str(step)
        assert page.locator("#map-cat circle.atlas-current").count() == 5  # main, pair, three variants
        assert set(page.eval_on_selector_all("#map-cat circle.atlas-current", "els => els.map(e => e.dataset.column)")) == {str(step)}
    # the other way round: the pair's slider and a jump column drive the main strip
    page.fill("#compare-cat input[data-follow=range]", "2")
    assert page.inner_text("#traj-cat [data-role=label]").startswith("step 2 / 3")
    page.click("#jumps-cat .atlas-jump-col[data-set-step='0']")
    assert page.get_attribute("#traj-cat", "data-step") == "0"
    page.hover("#map-cat .atlas-map-main circle[data-column='3']", force=True)  # may lie under the pair's dot
    assert page.get_attribute("#traj-cat", "data-step") == "3"
    probe.assert_clean()


def test_variant_selector_swaps_strips_without_reload(probe):
    page = probe.page
    page.evaluate("window.__sameDocument = true")
    page.locator("#traj-cat [data-role=strip]").focus()
    page.keyboard.press("ArrowRight")
    noisy = "#variants-cat .atlas-sprite[data-role=noisy]"
    before = page.get_attribute(noisy, "data-src")
    items = page.eval_on_selector("#variants-cat", "e => JSON.parse(e.dataset.variants)")
    assert {(i["seed"], i["guidance"]) for i in items} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    page.click("#variants-cat button[data-guidance='0.0']")
    page.click("#variants-cat button[data-seed='1']")
    wanted = next(i for i in items if (i["seed"], i["guidance"]) == (1, 0))
    assert page.get_attribute(noisy, "data-src") == wanted["noisy"] != before
    assert wanted["noisy"] in page.eval_on_selector(noisy, "e => e.style.backgroundImage")
    assert page.get_attribute(noisy, "data-frame") == "1"  # the step survived the swap
    assert page.get_attribute("#variants-cat img[data-role=final]", "src") == wanted["final"]
    assert page.get_attribute("#variants-cat button[data-seed='1']", "aria-pressed") == "true"
    assert page.eval_on_selector_all("#map-cat g.atlas-selected", "els => els.map(e => e.dataset.path)") == ["s1-g0"]
    assert page.evaluate("window.__sameDocument") is True  # no reload
    page.wait_for_function("() => location.hash.includes('variants-cat=s1-g0')")  # a permalink to the choice
    page.reload()
    page.wait_for_selector("#variants-cat[data-atlas-mounted]")
    assert page.get_attribute(noisy, "data-src") == wanted["noisy"]
    assert page.eval_on_selector_all("#map-cat g.atlas-selected", "els => els.map(e => e.dataset.path)") == ["s1-g0"]
    probe.assert_clean()


def test_text_view_lists_the_tokenizers_real_pieces(probe, tiny_sd):
    page = probe.page
    shown = page.eval_on_selector_all("#tokens-cat [data-role=piece]", "els => els.map(e => e.textContent)")
    real = [p.text for p in tiny_sd.tokenize(TEXT) if p.special != "pad"]
    assert shown == real and real[0] == "<|startoftext|>" and real[-1] == "<|endoftext|>"
    assert len(real) > len(TEXT.split()) + 2  # the tiny tokenizer splits words: not a split on spaces
    pads = sum(p.special == "pad" for p in tiny_sd.tokenize(TEXT))
    assert f"padding × {pads}" in page.inner_text("#tokens-cat .atlas-token-pad")
    assert page.locator("#tokens-cat .atlas-sim-cell").count() == (len(real) + 1) ** 2
    probe.assert_clean()


def test_pipeline_blocks_open_live_data_by_keyboard(probe):
    page = probe.page
    fig = "#pipeline-cat"
    page.focus(f"{fig} .atlas-flow-l1 [data-block=loop]")
    page.keyboard.press("Enter")
    assert page.get_attribute(f"{fig} .atlas-flow-l1 [data-block=loop]", "aria-expanded") == "true"
    panel = page.locator(f"{fig} [data-panel='loop denoiser']")
    assert panel.is_visible()
    page.locator("#traj-cat [data-role=strip]").focus()
    page.keyboard.press("ArrowRight")
    assert frames(page, f"{fig} [data-panel='loop denoiser'] .atlas-sprite") == ["1", "1", "1"]
    assert page.inner_text(f"{fig} [data-panel='loop denoiser'] [data-role=flow-t]") == page.get_attribute("#traj-cat", "data-timesteps").split(",")[1]
    page.click(f"{fig} button[data-level='3']")
    assert page.locator(f"{fig} .atlas-flow-l2").is_visible() and not page.locator(f"{fig} .atlas-flow-l1").is_visible()
    assert page.locator(f"{fig} [data-panel='loop denoiser'] .atlas-flow-math").is_visible()
    page.focus(f"{fig} .atlas-flow-l2 [data-block=tokenizer]")
    page.keyboard.press(" ")
    assert page.locator(f"{fig} [data-panel='text tokenizer']").is_visible() and not panel.is_visible()
    probe.assert_clean()


def test_embed_pages_of_the_probe_widgets_load_clean(browser, probe_url):
    context = browser.new_context(viewport={"width": 700, "height": 800})
    page = context.new_page()
    watched = Watched(page, probe_url)
    for key in ("jumps", "compare", "variants", "map", "tokens", "pipeline"):
        page.goto(f"{probe_url}/embed/cat-{key}.html#traj-cat=2")
        page.wait_for_load_state("load")
        if key in ("jumps", "compare", "variants", "map"):  # follow the step from the permalink
            assert page.get_attribute("[data-follow-group]", "data-step") == "2"
    watched.assert_clean()
    context.close()
