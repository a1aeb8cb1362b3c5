"""A prompt pair, guidance x seed variants and the pipeline's levels in headless Chromium on a real (tiny) bake: one
scrub moves both trajectories and the difference heat map; choosing a variant swaps its frames and highlights its
path on the map; the guidance view shows the trajectory the reader looks at (A, B or the chosen variant); changing
the level of detail animates unless the reader prefers reduced motion."""

from __future__ import annotations

import json
import urllib.request

import fakesite  # (on sys.path through tests/browser/conftest.py)
import pytest
from accessibility_audit import describe, scroll_through, violations
from browser_helpers import serve, watched_page

pytestmark = pytest.mark.browser

PROMPTS = """
model: testing:tiny-sd
defaults: {steps: 3, guidance: 3, daam: false, width: 64, height: 64, scheduler: ddim, preview_size: 64, jumps: false}
prompts:
  - id: pair
    text: a red cat on a mat
    compare: {text: a blue dog on a mat, expect: fail, reason: the tiny model draws noise}
    guidances: [0, 1]
    seeds: [0, 1]
"""
PAGE = "generated/pages/pair.html"
FIG = "#compare-pair"


@pytest.fixture(scope="module")
def pair_url(tmp_path_factory, tiny_sd):
    """Bake with testing:tiny-sd, render and `mkdocs build --strict`, served."""
    with serve(fakesite.bake_and_build(tmp_path_factory.mktemp("pair-site"), PROMPTS, tiny_sd, "Pair fixture")) as url:
        yield url


@pytest.fixture(scope="module")
def pair_manifest(pair_url) -> dict:
    """The baked manifest of the pair page (what the guidance view must show, sheet by sheet)."""
    with urllib.request.urlopen(f"{pair_url}/generated/prompts/pair.json") as response:
        return json.loads(response.read())


@pytest.fixture
def pair(browser, pair_url):
    with watched_page(browser, pair_url) as watched:
        watched.page.goto(f"{pair_url}/{PAGE}")
        watched.page.wait_for_selector(f"{FIG}[data-follow-mounted]")
        yield watched


def frames(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.frame)")


def test_one_scrub_moves_both_trajectories_and_the_difference_view(pair):
    page = pair.page
    sprites = f"{FIG} .atlas-sprite[data-follow=step]"
    assert len(frames(page, sprites)) == 5  # x_t and x0 of A, the heat map, x_t and x0 of B
    distances = page.get_attribute(f"{FIG} [data-role=x0-distance]", "data-step-values").split("|")
    pixels = page.get_attribute(f"{FIG} [data-role=pixel-difference]", "data-step-values").split("|")
    assert len(distances) == len(pixels) == 4
    for step in (2, 0, 3, 1):
        page.fill(f"{FIG} input[data-follow=range]", str(step))  # the pair's one control
        assert frames(page, sprites) == [str(step)] * 5
        assert page.get_attribute("#traj-pair", "data-step") == str(step)  # the main trajectory follows too
        assert page.inner_text(f"{FIG} [data-role=x0-distance]") == distances[step]
        assert page.inner_text(f"{FIG} [data-role=pixel-difference]") == pixels[step]
        assert page.get_attribute(f"{FIG} .atlas-distance-bar.atlas-current", "data-column") == str(step)
        labels = page.eval_on_selector_all(sprites, "els => els.map(e => e.getAttribute('aria-label'))")
        assert all(f"at step {step} of 3" in label for label in labels)
        # other widgets' frames that said "at the current step" now say which
        assert page.get_attribute("#pipeline-pair [data-panel='loop denoiser'] .atlas-sprite", "aria-label") == \
            f"x_t at step {step} of 3"
    # and the main strip drives the pair
    page.locator("#traj-pair [data-role=strip]").focus()
    page.keyboard.press("Home")
    assert frames(page, sprites) == ["0"] * 5 and page.input_value(f"{FIG} input[data-follow=range]") == "0"
    # the heat map is drawn in colour (the SVG filter), from a grayscale sheet of the same grid as the strips
    heat = f"{FIG} .atlas-sprite[data-role=difference]"
    assert "url(" in page.eval_on_selector(heat, "e => getComputedStyle(e).filter")
    assert page.get_attribute(heat, "data-count") == "4"
    # the changed words are marked on both sides, and each side's final image carries its verdict line (none
    # here: tiny-sd has no judge) and a text alternative naming its prompt
    assert page.eval_on_selector_all(f"{FIG} .atlas-pair-prompt mark.atlas-changed", "els => els.map(e => e.textContent)") == \
        ["red", "cat", "blue", "dog"]
    alts = page.eval_on_selector_all(f"{FIG} .atlas-pair-final img", "els => els.map(e => e.alt)")
    assert alts == ["Final image of “a red cat on a mat”", "Final image of “a blue dog on a mat”"]
    pair.assert_clean()


def test_choosing_a_variant_changes_the_frames_and_the_highlighted_map_path(pair):
    page = pair.page
    items = page.eval_on_selector("#variants-pair", "e => JSON.parse(e.dataset.variants)")
    assert {(i["seed"], i["guidance"]) for i in items} == {(s, g) for s in (0, 1) for g in (0, 1, 3)}
    paths = page.eval_on_selector_all("#map-pair g[data-path]", "els => els.map(e => e.dataset.path)")
    assert len(paths) == 7 and "compare" in paths and "main" in paths  # every variant's path, the pair's, the main
    noisy, predicted = "#variants-pair .atlas-sprite[data-role=noisy]", "#variants-pair .atlas-sprite[data-role=predicted]"
    page.fill("#variants-pair input[data-follow=range]", "2")
    assert page.eval_on_selector_all("#map-pair g.atlas-selected", "els => els.map(e => e.dataset.path)") == ["main"]
    for seed, guidance, path in ((1, 3.0, "s1-g3"), (0, 0.0, "s0-g0"), (1, 1.0, "s1-g1")):
        page.click(f"#variants-pair button[data-seed='{seed}']")
        page.click(f"#variants-pair button[data-guidance='{guidance}']")
        wanted = next(i for i in items if (i["seed"], i["guidance"]) == (seed, guidance))
        assert page.get_attribute(noisy, "data-src") == wanted["noisy"]
        assert page.get_attribute(predicted, "data-src") == wanted["predicted"]
        assert wanted["predicted"] in page.eval_on_selector(predicted, "e => e.style.backgroundImage")
        assert frames(page, f"{noisy}, {predicted}") == ["2", "2"]  # the step stays
        final = page.locator("#variants-pair img[data-role=final]")
        assert final.get_attribute("src") == wanted["final"]
        assert final.get_attribute("alt") == f"Final image (seed {seed}, guidance {guidance:g}) of “a red cat on a mat”"
        selected = page.eval_on_selector_all("#map-pair g.atlas-selected", "els => els.map(e => e.dataset.path)")
        expected = "main" if (seed, guidance) == (0, 3.0) else path
        assert selected == [expected]
        assert page.locator(f"#map-pair li.atlas-selected[data-path='{expected}']").count() == 1
    assert len({i["predicted"] for i in items}) == 6  # six different trajectories, not one file shown six ways
    pair.assert_clean()


GUIDE = "#guidance-pair"
SHEETS = ("uncond_noise", "cond_noise", "noise_difference", "guided_noise", "uncond_x0", "cond_x0", "x0_difference")


def shown_sheets(page) -> dict[str, str]:
    """The file name of the sheet each pane of the guidance view shows (the sprite's data-src)."""
    pairs = page.eval_on_selector_all(f"{GUIDE} .atlas-sprite[data-role]", "els => els.map(e => [e.dataset.role, e.dataset.src])")
    return {role: src.rsplit("/", 1)[-1] for role, src in pairs}


def stored_sheets(block: dict, predicted: dict) -> dict[str, str]:
    """The file names of a stored guidance block's sheets, and the trajectory's predicted x0 as the guided x0."""
    return {**{name: block[name]["src"].rsplit("/", 1)[-1] for name in SHEETS},
            "guided_x0": predicted["src"].rsplit("/", 1)[-1]}


def test_the_guidance_view_follows_the_pair_and_the_chosen_variant(pair, pair_manifest):
    page, m = pair.page, pair_manifest
    variants = {(i["seed"], i["guidance"]): i for i in m["variants"]["items"]}
    # baked from each trajectory's one run: the pair and every variant but the prompt's own carry their parts
    assert m["compare"]["guidance_parts"]["decomposed"] and m["compare"]["guidance_parts"]["scale"] == 3
    assert "guidance_parts" not in variants[(0, 3.0)]  # the prompt's own: the page's "guidance" section
    assert [k for k, i in variants.items() if i.get("guidance_parts", {}).get("decomposed")] == [(1, 3.0)]
    assert all(i["guidance_parts"] == {"scale": g, "conditioning": "text", "decomposed": False}
               for (s, g), i in variants.items() if g in (0, 1))
    # tiny-sd is a latent model: its branches' images are decoded at half the preview, the noise at the preview
    preview = m["trajectory"]["predicted"]["frame_width"]
    assert m["guidance"]["uncond_x0"]["frame_width"] == m["compare"]["guidance_parts"]["cond_x0"]["frame_width"] == preview // 2
    assert m["guidance"]["uncond_noise"]["frame_width"] == preview
    parts = f"{GUIDE} [data-role=guide-parts]"
    page.fill(f"{GUIDE} input[data-follow=range]", "2")
    main = stored_sheets(m["guidance"], m["trajectory"]["predicted"])
    assert shown_sheets(page) == main and page.is_visible(parts)
    # B: the pair's second trajectory, its own sheets, sizes, chart and labels
    page.click(f"{GUIDE} button[data-side=b]")
    wanted_b = stored_sheets(m["compare"]["guidance_parts"], m["compare"]["predicted"])
    assert shown_sheets(page) == wanted_b and len(set(wanted_b.values()) & set(main.values())) == 0
    assert page.get_attribute(GUIDE, "data-source") == "b"
    assert page.inner_text(f"{GUIDE} [data-role=rms-noise_difference]") == \
        f"{m['compare']['guidance_parts']['rms']['difference'][2]:.3g}"
    assert page.is_visible(f"{GUIDE} [data-guide-source=b] .atlas-plot-guidance") and not page.is_visible(f"{GUIDE} [data-guide-source=main]")
    labels = page.eval_on_selector_all(f"{GUIDE} .atlas-sprite[data-role]", "els => els.map(e => e.getAttribute('aria-label'))")
    assert all(label.endswith("of “a blue dog on a mat” at step 2 of 3") for label in labels), labels
    assert frames(page, f"{GUIDE} .atlas-sprite[data-role]") == ["2"] * 8  # the step stays
    page.wait_for_function(f"() => [...document.querySelectorAll('{GUIDE} .atlas-sprite[data-role]')]"
                           ".every(e => e.style.backgroundImage.includes(e.dataset.src))")
    # a variant chosen in the variants figure is shown here: seed 1 at guidance 3 has parts, guidance 0 a note
    page.click("#variants-pair button[data-seed='1']")
    assert page.get_attribute(GUIDE, "data-source") == "s1-g3"
    assert shown_sheets(page) == stored_sheets(variants[(1, 3.0)]["guidance_parts"], variants[(1, 3.0)]["predicted"])
    assert page.inner_text(f"{GUIDE} [data-role=guide-what]") == "“a red cat on a mat” (seed 1, guidance 3)"
    assert page.get_attribute(f"{GUIDE} button[data-side=a]", "aria-pressed") == "true"
    page.click("#variants-pair button[data-guidance='0.0']")
    assert page.get_attribute(GUIDE, "data-source") == "s1-g0" and not page.is_visible(parts)
    assert "Guidance scale 0" in page.inner_text(f"{GUIDE} [data-guide-source=s1-g0]")
    # and a variant chosen here is shown by the variants figure and the map
    page.click(f"{GUIDE} button[data-seed='0']")
    page.click(f"{GUIDE} button[data-guidance='3.0']")
    assert page.get_attribute("#variants-pair", "data-seed") == "0"
    assert page.get_attribute("#variants-pair", "data-guidance") == "3"
    assert page.eval_on_selector_all("#map-pair g.atlas-selected", "els => els.map(e => e.dataset.path)") == ["main"]
    assert page.get_attribute(GUIDE, "data-source") == "main" and shown_sheets(page) == main
    pair.assert_clean()


def _level(page, level: str) -> None:
    page.click(f"#pipeline-pair button[data-level='{level}']")


def test_changing_the_level_of_detail_animates_the_blocks(pair):
    page = pair.page
    fig = "#pipeline-pair"
    page.locator(fig).scroll_into_view_if_needed()
    text_block = page.locator(f"{fig} .atlas-flow-l1 [data-block=text]").bounding_box()
    _level(page, "2")
    page.evaluate("() => document.getAnimations().forEach(a => { a.pause(); a.currentTime = 0; })")
    moving = page.eval_on_selector_all(f"{fig} .atlas-flow-l2 [data-block]", "els => els.filter(e => e.getAnimations().length).length")
    assert moving == page.locator(f"{fig} .atlas-flow-l2 [data-block]").count()  # every block moves in
    start = page.locator(f"{fig} .atlas-flow-l2 [data-block=tokenizer]").bounding_box()
    # at time 0 the tokenizer sits where "Text representation" was: it grows out of the block it details
    assert abs(start["x"] - text_block["x"]) < 2 and abs(start["y"] - text_block["y"]) < 2
    page.evaluate("() => document.getAnimations().forEach(a => a.finish())")
    end = page.locator(f"{fig} .atlas-flow-l2 [data-block=tokenizer]").bounding_box()
    assert abs(end["x"] - start["x"]) > 20  # and ends at its own place
    page.click(f"{fig} .atlas-flow-l2 [data-block=denoiser]")  # its panel holds a math line
    _level(page, "3")  # the math lines fade in
    math = f"{fig} [data-panel='loop denoiser'] [data-level-min='3']"
    assert page.locator(math).is_visible() and page.eval_on_selector(math, "e => e.getAnimations().length") == 1
    pair.assert_clean()


def test_reduced_motion_switches_levels_without_animating(browser, pair_url):
    with watched_page(browser, pair_url, reduced_motion="reduce") as watched:
        page = watched.page
        page.goto(f"{pair_url}/{PAGE}")
        page.wait_for_selector("#pipeline-pair[data-atlas-mounted]")
        for level in ("2", "3", "1"):
            _level(page, level)
            assert page.get_attribute("#pipeline-pair", "data-level") == level
            assert page.evaluate("() => document.getAnimations().filter(a => a.playState === 'running').length") == 0
        watched.assert_clean()


def test_pair_page_and_its_embeds_pass_the_accessibility_audit(pair, pair_url):
    page = pair.page
    for url in (PAGE, "embed/pair-compare.html", "embed/pair-variants.html", "embed/pair-map.html",
                "embed/pair-pipeline.html", "generated/gallery.html"):
        page.goto(f"{pair_url}/{url}")
        page.wait_for_load_state("load")
        scroll_through(page)
        found = violations(page)
        assert found == [], f"{url}:\n{describe(found)}"
    cards = page.locator(".atlas-gallery .atlas-card")
    assert cards.count() == 1 and "atlas-card-pair" in cards.get_attribute("class")  # the pair is one card
    assert page.locator(".atlas-card-pair img").count() == 2
    pair.assert_clean()
