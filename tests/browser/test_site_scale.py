"""A site of 150 prompts in headless Chromium: a prompt page (trajectory and DAAM) loads at most 1 MB before the
reader scrolls, and the gallery shows one page of cards (lazy images: only those are fetched), finds prompts
by their words and shows more on demand.

Two prompts are really baked with testing:tiny-sd: p000 with the trajectory and DAAM, p001 with jump previews
and a prompt pair too (over the budget: every sprite sheet waits until its widget comes near the viewport,
atlas-core.js, but daam.js loads its map sheets at once); the other 148 are copies of its manifest under other ids and texts (the
same assets), enough for a search index or a gallery that grows with the prompt count to show in the bytes.
"""

from __future__ import annotations

import json

import fakesite  # (on sys.path through tests/browser/conftest.py)
import pytest
from browser_helpers import serve, watched_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COUNT = 150
PAGE_BUDGET = 1_000_000  # bytes a prompt page may load before the reader scrolls
PROMPTS = """
model: testing:tiny-sd
defaults: {steps: 6, guidance: 7.5, width: 64, height: 64, scheduler: ddim, preview_size: 96, jumps: false}
prompts:
  - id: p000
    text: a smiling, red cat chewing gum
  - id: p001
    text: a smiling, red cat chewing gum
    compare: a smiling, blue cat chewing gum
    jumps: {every: 2, steps: [1, 2, 4]}
"""
SUBJECTS = ["owl", "fox", "lighthouse", "teapot", "violin"]


def clone_prompts(generated) -> None:
    """Copies of p000's manifest as p002..p149 ('an owl number 2', ...) and an index that lists all of them."""
    manifest = json.loads((generated / "prompts" / "p000.json").read_text())
    index = json.loads((generated / "index.json").read_text())
    for number in range(2, COUNT):
        prompt_id, text = f"p{number:03d}", f"a {SUBJECTS[number % len(SUBJECTS)]} number {number}"
        (generated / "prompts" / f"{prompt_id}.json").write_text(json.dumps({**manifest, "id": prompt_id,
                                                                              "text": text}))
        index["prompts"].append({**index["prompts"][0], "id": prompt_id, "text": text,
                                 "manifest": f"prompts/{prompt_id}.json"})
    (generated / "index.json").write_text(json.dumps(index))


@pytest.fixture(scope="module")
def scale_url(tmp_path_factory, tiny_sd):
    from generator.bake.runner import bake
    from generator.render import render_site
    from generator.spec.prompt_set import load_prompt_set

    root = fakesite.copy_site(tmp_path_factory.mktemp("scale-site"))
    (root / "prompts.yaml").write_text(PROMPTS)
    generated = root / "site" / "generated"
    bake(load_prompt_set(root / "prompts.yaml"), generated, adapter=tiny_sd)
    clone_prompts(generated)
    render_site(generated, root / "site")
    (root / "site" / "index.md").write_text("# Scale fixture\n\n[Gallery](generated/gallery.md)\n")
    with serve(fakesite.mkdocs_build(root)) as url:
        yield url


def loaded_bytes(page, url: str) -> tuple[int, dict[str, int]]:
    """Open ``url`` without scrolling; the bytes of every response until the network is idle, by URL."""
    sizes: dict[str, int] = {}

    def finished(request) -> None:
        sizes[request.url] = request.sizes()["responseBodySize"]

    page.on("requestfinished", finished)
    page.goto(url, wait_until="networkidle")
    page.wait_for_timeout(500)  # late requests (a search worker, a lazy image at the edge)
    return sum(sizes.values()), sizes


EVERYTHING = "p001"  # 1.05 MB while daam.js fetched its two map sheets (178 KB) at mount; now through Atlas.whenNear


@pytest.mark.parametrize("prompt_id", ["p042", EVERYTHING])  # trajectory + DAAM (a copy of p000); + jumps, pair
def test_a_prompt_page_loads_at_most_1_mb_before_scrolling(browser, scale_url, prompt_id):
    with watched_page(browser, scale_url) as watched:
        total, sizes = loaded_bytes(watched.page, f"{scale_url}/generated/pages/{prompt_id}.html")
        largest = sorted(sizes.items(), key=lambda item: -item[1])[:5]
        assert total <= PAGE_BUDGET, f"{total} bytes before scrolling; largest: {largest}"
        assert any("/generated/assets/" in url for url in sizes)  # the figures above the fold did load
        watched.assert_clean()


JUMPS = "[data-atlas=jumps] .atlas-sprite"
JUMP_FRAMES = f"() => [...document.querySelectorAll('{JUMPS}')].map(e => [e.dataset.src, e.style.backgroundPosition])"
JUMP_SHOWN = f"() => getComputedStyle(document.querySelector('{JUMPS}')).backgroundImage"


def test_a_sheet_below_the_fold_loads_when_its_widget_comes_near_with_the_same_frame(browser, scale_url):
    with watched_page(browser, scale_url) as watched:
        page = watched.page
        _, fetched = loaded_bytes(page, f"{scale_url}/generated/pages/p001.html")  # keeps counting after
        frames = page.evaluate(JUMP_FRAMES)
        on_top = set(page.evaluate("() => [...document.querySelectorAll('[data-atlas=trajectory] .atlas-sprite')]"
                                   ".map(e => e.dataset.src.split('/').pop())"))
        jump_sheets = {src.rsplit("/", 1)[-1] for src, _ in frames} - on_top  # the trajectory's x_t is shown on top
        assert len(jump_sheets) == 3  # one per jump length
        assert not any(url.rsplit("/", 1)[-1] in jump_sheets for url in fetched)  # 4,000 px down: not yet
        assert page.evaluate(JUMP_SHOWN) == "none"

        page.locator("[data-atlas=jumps]").scroll_into_view_if_needed()
        page.wait_for_function(f"() => ({JUMP_SHOWN[6:]}) !== 'none'")
        for _ in range(100):  # the responses finish after the style changed (networkidle was reached once already)
            if jump_sheets <= {url.rsplit("/", 1)[-1] for url in fetched}:
                break
            page.wait_for_timeout(100)
        assert jump_sheets <= {url.rsplit("/", 1)[-1] for url in fetched}  # fetched now
        assert page.evaluate(JUMP_FRAMES) == frames  # the same frames: only their sheets arrived
        watched.assert_clean()


def test_the_gallery_shows_a_page_of_cards_finds_by_words_and_shows_more(browser, scale_url):
    with watched_page(browser, scale_url) as watched:
        page = watched.page
        total, sizes = loaded_bytes(page, f"{scale_url}/generated/gallery.html")
        page.wait_for_selector(".atlas-gallery[data-gallery-mounted]")
        cards = page.locator(".atlas-gallery .atlas-card")
        visible = page.locator(".atlas-gallery .atlas-card:not([hidden])")
        assert cards.count() == COUNT and visible.count() == 60
        assert page.locator("[data-gallery-count]").inner_text() == f"60 of {COUNT} prompts shown"
        images = [url for url in sizes if "/generated/assets/" in url]
        assert 0 < len(images) <= 60 * 2  # lazy: the hidden cards' images were not fetched (pairs have two)
        assert total <= PAGE_BUDGET

        page.fill("[data-gallery-filter]", "owl NUMBER")
        owls = [n for n in range(2, COUNT) if SUBJECTS[n % len(SUBJECTS)] == "owl"]
        assert visible.count() == len(owls)
        assert page.locator("[data-gallery-count]").inner_text() == f"{len(owls)} of {len(owls)} matching prompts shown"
        assert page.locator("[data-gallery-more]").is_hidden()
        assert "q=owl+NUMBER" in page.url  # a filtered gallery can be linked

        page.fill("[data-gallery-filter]", "")
        page.click("[data-gallery-more]")
        assert visible.count() == 120
        page.click("[data-gallery-more]")
        assert visible.count() == COUNT and page.locator("[data-gallery-more]").is_hidden()
        watched.assert_clean()
