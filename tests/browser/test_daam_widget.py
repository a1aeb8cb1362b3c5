"""The DAAM widget in headless Chromium: hover/focus/tap a word, opacity, tau mask, time bins, fine/coarse,
keyboard, time bins following the trajectory's step (and driving it), the embed page; zero console errors. The fixture maps are known ramps (tests/render/fakesite.py)."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.browser

PAGE = "generated/pages/red-cat.html"
FIG = "#daam-red-cat"
# Mean overlay alpha of the left and right columns: a left-to-right ramp is brighter (more opaque) on the right.
COLUMNS = """fig => {
  const c = fig.querySelector('canvas'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const col = x => { let s = 0; for (let y = 0; y < c.height; y++) s += d[(y * c.width + x) * 4 + 3]; return s / c.height; };
  let total = 0; for (let i = 3; i < d.length; i += 4) total += d[i];
  return {left: col(0), right: col(c.width - 1), total};
}"""


def open_daam(w, base_url, path=PAGE):
    w.page.goto(f"{base_url}/{path}")
    w.page.wait_for_selector(f"{FIG}[data-atlas-mounted]")
    return w.page, w.page.locator(FIG)


def token(fig, text):
    return fig.locator(".atlas-daam-token").filter(has_text=re.compile(rf"^⟨?{re.escape(text)}⟩?$"))


def test_hover_overlays_the_word_and_tau_shows_the_mask(watched, base_url):
    page, fig = open_daam(watched, base_url)
    texts = fig.locator(".atlas-daam-token").all_inner_texts()
    assert texts == ["⟨start⟩", "a", "smiling", ",", "red", "cat", "chew", "ing", "gum", "⟨end⟩"]  # real pieces
    assert fig.evaluate(COLUMNS)["total"] == 0  # nothing until a word is chosen

    token(fig, "cat").hover()
    cat = fig.evaluate(COLUMNS)
    assert fig.get_attribute("data-entry") == "4" and cat["right"] > cat["left"] + 100  # entry 4: left-to-right ramp
    token(fig, "smiling").hover()
    smiling = fig.evaluate(COLUMNS)
    assert fig.get_attribute("data-entry") == "1" and smiling["left"] > smiling["right"] + 100  # overlay changed
    token(fig, "ing").hover()  # a piece of "chewing": the whole word lights up
    assert fig.get_attribute("data-entry") == "5"
    assert fig.locator(".atlas-daam-lit").all_inner_texts() == ["chew", "ing"]

    token(fig, "cat").hover()
    fig.locator("[data-role=tau]").fill("75")  # moving tau switches to the binary mask (DAAM Eq. 7)
    assert fig.get_attribute("data-mode") == "mask"
    assert float(fig.get_attribute("data-mask-fraction")) == pytest.approx(4 / 16)  # ramp >= 0.75: 4 of 16 columns
    fig.locator("[data-role=tau]").fill("30")
    assert float(fig.get_attribute("data-mask-fraction")) == pytest.approx(11 / 16)
    assert "covers 69%" in fig.locator("[data-role=status]").inner_text()
    fig.locator("[data-action=mask]").click()
    assert fig.get_attribute("data-mode") == "heat"

    fig.locator("[data-role=opacity]").fill("20")
    assert fig.locator("canvas").evaluate("c => c.style.opacity") == "0.2"
    watched.assert_clean()


def test_time_levels_keyboard_and_pinning(watched, base_url):
    page, fig = open_daam(watched, base_url)
    token(fig, "gum").click()  # tap/click pins: the map stays when the pointer leaves
    page.mouse.move(0, 0)
    assert fig.get_attribute("data-entry") == "6" and token(fig, "gum").get_attribute("aria-pressed") == "true"

    fig.locator("[data-role=bin]").fill("1")  # time bin 1 of the fixture: right-to-left ramp
    cols = fig.evaluate(COLUMNS)
    assert fig.get_attribute("data-bin") == "1" and cols["left"] > cols["right"] + 100
    assert "t = 749" in fig.locator("[data-role=status]").inner_text()
    fig.locator("[data-level='1']").click()  # fine layers: back to all steps, a top-to-bottom ramp
    assert fig.get_attribute("data-level") == "fine" and fig.get_attribute("data-bin") == "all"
    fig.locator("[data-action=play]").click()
    page.wait_for_function(f"() => document.querySelector('{FIG}').dataset.bin === '2'")
    fig.locator("[data-action=play]").click()  # pause

    token(fig, "start").focus()
    assert fig.get_attribute("data-entry") == "7"  # the start token is inspectable
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.textContent") == "a" and fig.get_attribute("data-entry") == "0"
    page.keyboard.press("End")
    assert fig.get_attribute("data-entry") == "8"
    watched.assert_clean()


def test_embed_page_works_alone(watched, base_url, built_site):
    page, fig = open_daam(watched, base_url, "embed/red-cat-daam.html")
    assert page.evaluate("!!document.querySelector(\"link[href*='daam.css']\")")  # the script brought its CSS
    token(fig, "red").hover()
    assert fig.get_attribute("data-entry") == "3" and fig.evaluate(COLUMNS)["total"] > 0
    assert fig.locator(".atlas-daam-token").first.evaluate("b => getComputedStyle(b).borderTopStyle") == "solid"
    fig.locator("[data-role=bin]").fill("2")  # no trajectory here: time still works, the bus just has no other reader
    assert fig.get_attribute("data-bin") == "2" and page.evaluate("Atlas.getStep('traj-red-cat')") == first_step_of_bin(daam_manifest(built_site), 2)
    watched.assert_clean()


def daam_manifest(built_site) -> dict:
    return json.loads((built_site / "generated" / "prompts" / "red-cat.json").read_text())


def bin_of_step(manifest, step: int) -> int:
    """The time bin whose recorded timesteps hold the step's timestep (the final image: the last step's)."""
    timesteps = manifest["trajectory"]["timesteps"]
    t = timesteps[min(step, len(timesteps) - 1)]
    return next(b for b, recorded in enumerate(manifest["daam"]["bin_timesteps"]) if t in recorded)


def first_step_of_bin(manifest, b: int) -> int:
    return next(i for i in range(manifest["trajectory"]["steps"] + 1) if bin_of_step(manifest, i) == b)


def test_time_bin_follows_the_trajectory_step_and_drives_it(watched, base_url, built_site):
    m = daam_manifest(built_site)
    steps, bins = m["trajectory"]["steps"], m["daam"]["timestep_bins"]
    page, fig = open_daam(watched, base_url)
    traj, strip = page.locator("#traj-red-cat"), page.locator("#traj-red-cat [role=slider]")
    token(fig, "cat").click()  # pinned: entry 4; its map in bin b is ramp b % 2 (0: brighter right, 1: left)

    def shows(b):
        cols = fig.evaluate(COLUMNS)
        assert fig.get_attribute("data-bin") == str(b) and fig.locator("[data-role=bin]").input_value() == str(b)
        assert (cols["left"] > cols["right"] + 100) if b % 2 else (cols["right"] > cols["left"] + 100)

    strip.focus()
    page.keyboard.press("End")  # "all steps" is not a time: the aggregate stays
    assert traj.get_attribute("data-step") == str(steps) and fig.get_attribute("data-bin") == "all"

    fig.locator("[data-role=bin]").fill("1")  # a time bin: the trajectory comes to its first step
    shows(1)
    assert traj.get_attribute("data-step") == str(first_step_of_bin(m, 1))

    strip.focus()
    page.keyboard.press("End")  # the last step (final image) -> the last step's bin
    assert bin_of_step(m, steps) == bins - 1
    shows(bin_of_step(m, steps))
    page.keyboard.press("Home")
    assert bin_of_step(m, 0) == 0
    shows(0)

    box = page.locator("#traj-red-cat [data-role=cells]").bounding_box()  # a finger drags to step 2
    x, y = box["x"] + 2.5 * box["width"] / (steps + 1), box["y"] + box["height"] / 2
    touch = {"pointerType": "touch", "pointerId": 7, "isPrimary": True, "bubbles": True, "clientX": x, "clientY": y}
    strip.dispatch_event("pointerdown", {**touch, "button": 0, "buttons": 1})
    strip.dispatch_event("pointerup", touch)
    assert traj.get_attribute("data-step") == "2"
    shows(bin_of_step(m, 2))

    fig.locator("[data-role=bin]").focus()  # the time slider's keys drive the trajectory too
    page.keyboard.press("ArrowLeft")
    shows(bin_of_step(m, 2) - 1)
    assert traj.get_attribute("data-step") == str(first_step_of_bin(m, bin_of_step(m, 2) - 1))

    fig.locator("[data-level='1']").click()  # fine layers exist over all steps only: following stops
    strip.focus()
    page.keyboard.press("End")
    assert fig.get_attribute("data-bin") == "all" and fig.get_attribute("data-level") == "fine"
    watched.assert_clean()
