"""The trajectory widget in headless Chromium: scrub by hover, drag, touch, keys and buttons;
permalinks; the embed page alone in an iframe; the Embed button; no errors, no third-party requests."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "render"))
import fakesite  # noqa: E402  (tests/render/fakesite.py: the fixture data)

pytestmark = pytest.mark.browser

NOISY, PREDICTED = fakesite.NOISY, fakesite.PREDICTED
PAGE = "generated/pages/red-cat.html"  # 4 steps: frames 0..4, sheets of 3 columns x 2 rows
FIG = "#traj-red-cat"


def open_page(w, base_url, path=PAGE, hash_=""):
    w.page.goto(f"{base_url}/{path}{hash_}")
    w.page.wait_for_selector(f"{FIG}[data-atlas-mounted]")
    return w.page


def label(page) -> str:
    return page.inner_text(f"{FIG} [data-role=label]")


def frames(page) -> tuple[str, str]:
    return tuple(page.eval_on_selector_all(f"{FIG} .atlas-sprite", "els => els.map(e => e.dataset.frame)"))


def positions(page) -> list[str]:
    return page.eval_on_selector_all(f"{FIG} .atlas-sprite", "els => els.map(e => e.style.backgroundPosition)")


def centre_colour(locator) -> tuple[int, int, int]:
    im = Image.open(io.BytesIO(locator.screenshot())).convert("RGB")
    return im.getpixel((im.width // 2, im.height // 2))


def assert_colour(actual, expected, tol=12):
    assert all(abs(a - b) <= tol for a, b in zip(actual, expected)), f"{actual} != {expected}"


def strip_x(page, step: int, steps: int = 4) -> tuple[float, float]:
    """Viewport point over the strip cell of `step`."""
    box = page.locator(f"{FIG} [data-role=cells]").bounding_box()
    return box["x"] + (step + 0.5) * box["width"] / (steps + 1), box["y"] + box["height"] / 2


def test_prompt_page_loads_clean_and_draws_frame_zero(watched, base_url):
    page = open_page(watched, base_url)
    assert label(page) == "step 0 / 4 · t = 999"
    assert frames(page) == ("0", "0")
    assert page.locator(f"{FIG} .atlas-strip-cell").count() == 5
    noisy, predicted = page.locator(f"{FIG} .atlas-sprite").all()
    assert_colour(centre_colour(noisy), NOISY[0])
    assert_colour(centre_colour(predicted), PREDICTED[0])
    watched.assert_clean()


def test_hover_scrubs_the_frames_and_label(watched, base_url):
    page = open_page(watched, base_url)
    noisy, predicted = page.locator(f"{FIG} .atlas-sprite").all()
    for step, pos in [(3, ["0% 100%", "0% 100%"]), (1, ["50% 0%", "50% 0%"]), (4, ["50% 100%", "50% 100%"])]:
        page.mouse.move(*strip_x(page, step))
        assert label(page).startswith(f"step {step} / 4")
        assert positions(page) == pos
        assert_colour(centre_colour(noisy), NOISY[step])
        assert_colour(centre_colour(predicted), PREDICTED[step])
    assert label(page) == "step 4 / 4 · final image"
    assert page.get_attribute(f"{FIG} [role=slider]", "aria-valuenow") == "4"
    watched.assert_clean()


def test_mouse_drag_and_touch_drag_scrub(watched, base_url):
    page = open_page(watched, base_url)
    page.mouse.move(*strip_x(page, 0))
    page.mouse.down()
    page.mouse.move(*strip_x(page, 2), steps=4)
    assert label(page).startswith("step 2 / 4")
    page.mouse.move(strip_x(page, 4)[0] + 400, strip_x(page, 4)[1] + 60, steps=4)  # past the end, off the strip
    assert label(page).startswith("step 4 / 4")
    page.mouse.up()
    # Touch: pointer events with pointerType "touch" (no hover; only a pressed finger scrubs).
    strip = page.locator(f"{FIG} [role=slider]")
    x1, y = strip_x(page, 1)
    x3, _ = strip_x(page, 3)
    touch = {"pointerType": "touch", "pointerId": 7, "isPrimary": True, "bubbles": True}
    strip.dispatch_event("pointerdown", {**touch, "clientX": x1, "clientY": y, "button": 0, "buttons": 1})
    assert label(page).startswith("step 1 / 4")
    strip.dispatch_event("pointermove", {**touch, "clientX": x3, "clientY": y, "buttons": 1})
    assert label(page).startswith("step 3 / 4")
    strip.dispatch_event("pointerup", {**touch, "clientX": x3, "clientY": y})
    strip.dispatch_event("pointermove", {**touch, "clientX": x1, "clientY": y})  # finger lifted: no change
    assert label(page).startswith("step 3 / 4")
    watched.assert_clean()


def test_keyboard_moves_through_steps(watched, base_url):
    page = open_page(watched, base_url)
    page.focus(f"{FIG} [role=slider]")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert label(page) == "step 2 / 4 · t = 499" and frames(page) == ("2", "2")
    page.keyboard.press("End")
    assert label(page) == "step 4 / 4 · final image"
    page.keyboard.press("ArrowRight")  # clamped
    assert frames(page) == ("4", "4")
    page.keyboard.press("ArrowLeft")
    assert label(page) == "step 3 / 4 · t = 249"
    page.keyboard.press("Home")
    assert label(page) == "step 0 / 4 · t = 999"
    # Tab order reaches the strip and the buttons, and focus is visible.
    outline = page.eval_on_selector(f"{FIG} [role=slider]", "e => getComputedStyle(e).outlineStyle")
    assert outline != "none"
    watched.assert_clean()


def test_buttons_and_playback(watched, base_url):
    page = open_page(watched, base_url)
    page.click(f"{FIG} [data-action=next]")
    page.click(f"{FIG} [data-action=next]")
    page.click(f"{FIG} [data-action=prev]")
    assert label(page).startswith("step 1 / 4")
    page.click(f"{FIG} [data-action=last]")
    assert label(page).startswith("step 4 / 4")
    page.click(f"{FIG} [data-action=first]")
    assert label(page).startswith("step 0 / 4")
    play = page.locator(f"{FIG} [data-action=play]")
    assert play.get_attribute("aria-pressed") == "false" and play.get_attribute("aria-label") == "Play"
    play.click()
    assert play.get_attribute("aria-pressed") == "true"
    page.wait_for_function(f"() => document.querySelector('{FIG}').dataset.step === '4'", timeout=5000)
    page.wait_for_function(f"() => document.querySelector('{FIG} [data-action=play]').getAttribute('aria-pressed') === 'false'")
    for btn in page.locator(f"{FIG} button").all():
        assert btn.get_attribute("aria-label"), "every button has an accessible name"
    watched.assert_clean()


def test_permalink_restores_and_records_the_step(watched, base_url):
    page = open_page(watched, base_url, hash_="#traj-red-cat=3")
    assert label(page) == "step 3 / 4 · t = 249"
    assert_colour(centre_colour(page.locator(f"{FIG} .atlas-sprite").first), NOISY[3])
    page.focus(f"{FIG} [role=slider]")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => location.hash === '#traj-red-cat=2'", timeout=3000)
    page.reload()
    page.wait_for_selector(f"{FIG}[data-atlas-mounted]")
    assert label(page).startswith("step 2 / 4")
    page.evaluate("location.hash = 'traj-red-cat=4'")  # a hash change on the same page also applies
    page.wait_for_function(f"() => document.querySelector('{FIG}').dataset.step === '4'")
    page.goto(f"{base_url}/{PAGE}#traj-red-cat=99")  # out of range: clamped, no error
    page.wait_for_selector(f"{FIG}[data-atlas-mounted]")
    assert label(page).startswith("step 4 / 4")
    watched.assert_clean()


def test_embed_page_works_alone_inside_an_iframe(watched, base_url):
    page = watched.page
    page.goto(f"{base_url}/iframe-test.html")
    frame = page.frame_locator("#fig")
    fig = frame.locator(f"{FIG}[data-atlas-mounted]")
    fig.wait_for()
    assert fig.locator("[data-role=label]").inner_text() == "step 1 / 4 · t = 749"
    assert frame.locator(".md-header").count() == 0  # no MkDocs chrome
    background = fig.evaluate("e => getComputedStyle(document.body).backgroundColor")  # ?theme=dark
    assert sum(map(int, re.findall(r"\d+", background)[:3])) < 150, background
    assert_colour(centre_colour(fig.locator(".atlas-sprite").first), NOISY[1])
    fig.locator("[role=slider]").focus()
    page.keyboard.press("End")
    assert fig.locator("[data-role=label]").inner_text() == "step 4 / 4 · final image"
    assert_colour(centre_colour(fig.locator(".atlas-sprite").nth(1)), PREDICTED[4])
    fig.locator("[data-action=prev]").click()
    assert fig.locator("[data-role=label]").inner_text().startswith("step 3 / 4")
    watched.assert_clean()


def test_embed_button_copies_an_iframe_snippet(watched, base_url):
    page = open_page(watched, base_url, hash_="#traj-red-cat=2")
    page.click(f"{FIG} .atlas-embed")
    page.wait_for_function(f"() => document.querySelector('{FIG} .atlas-embed').dataset.copied === 'true'")
    assert page.inner_text(f"{FIG} .atlas-embed-status") == "Copied embed code"
    snippet = page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(
        rf'<iframe src="{re.escape(base_url)}/embed/red-cat-trajectory\.html#traj-red-cat=2" title="Red cat: denoising trajectory" '
        r'width="100%" height="\d+" style="border:0;max-width:760px" loading="lazy"></iframe>',
        snippet,
    ), snippet
    # The copied URL opens the figure on its own, at the same step.
    page.goto(re.search(r'src="([^"]+)"', snippet).group(1))
    page.wait_for_selector(f"{FIG}[data-atlas-mounted]")
    assert label(page).startswith("step 2 / 4")
    watched.assert_clean()


def test_gallery_links_open_each_prompt_page(watched, base_url):
    page = watched.page
    page.goto(f"{base_url}/generated/gallery.html")
    cards = page.locator(".atlas-card")
    assert cards.count() == 2
    cards.nth(1).click()
    page.wait_for_selector("#traj-two-dogs[data-atlas-mounted]")
    assert page.inner_text("#traj-two-dogs [data-role=label]") == "step 0 / 2 · t = 951.5"
    assert page.evaluate("window.Atlas.getStep('traj-two-dogs')") == 0
    watched.assert_clean()
