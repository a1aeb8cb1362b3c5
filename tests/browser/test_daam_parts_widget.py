"""The DAAM widget's issue-19 controls in headless Chromium: the UNet-part levels (down, mid, up) and the end
token's button beside the time control.

The fixture site's red-cat DAAM section is rebaked here with six levels whose maps are known ramps
(tests/render/fakesite.py ``daam_ramp``): entry e's "all" map is ramp e % 2, then fine 2, coarse 3, down 3,
mid 0, up 1; its time bin b is ramp b % 2. A wrong frame index, a level button that does nothing or an end
button that pins the wrong map shows up as the wrong side of the overlay lighting up.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "render"))
import fakesite  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_helpers import serve, watched_page  # noqa: E402

pytestmark = pytest.mark.browser

FIG = "#daam-red-cat"
LEVEL_RAMPS = (None, 2, 3, 3, 0, 1)  # ramp per level; None: entry e % 2
COLUMNS = """fig => {
  const c = fig.querySelector('canvas'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const col = x => { let s = 0; for (let y = 0; y < c.height; y++) s += d[(y * c.width + x) * 4 + 3]; return s / c.height; };
  return {left: col(0), right: col(c.width - 1)};
}"""


def six_levels(generated: Path) -> None:
    """Rewrite red-cat's DAAM section with the levels all, fine, coarse, down, mid, up (known ramps)."""
    path = generated / "prompts" / "red-cat.json"
    manifest = json.loads(path.read_text())
    daam = manifest["daam"]
    width, height = fakesite.DAAM_FRAME
    frames = [fakesite.daam_ramp(width, height, e % 2 if ramp is None else ramp)
              for e in range(len(daam["entries"])) for ramp in LEVEL_RAMPS]
    columns = len(LEVEL_RAMPS)
    sheet = fakesite.Image.new("L", (columns * width, -(-len(frames) // columns) * height))
    for i, frame in enumerate(frames):
        sheet.paste(frame, (i % columns * width, i // columns * height))
    src = fakesite._save(generated, fakesite._encode(sheet, "PNG"), "png")
    daam["aggregate"] = {"src": src, "frame_width": width, "frame_height": height, "columns": columns, "count": len(frames)}
    daam["levels"] = ["all", "fine", "coarse", "down", "mid", "up"]
    daam["resolutions"].update({"down": [[8, 8], [4, 4]], "mid": [[2, 2]], "up": [[4, 4], [8, 8]]})
    path.write_text(json.dumps(manifest, sort_keys=True, indent=1))


@pytest.fixture(scope="module")
def parts_url(tmp_path_factory):
    built = fakesite.build_fixture_site(tmp_path_factory.mktemp("atlas-daam-parts"), six_levels)
    with serve(built) as url:
        yield url


def brighter(fig) -> str:
    cols = fig.evaluate(COLUMNS)
    return "right" if cols["right"] > cols["left"] + 100 else "left" if cols["left"] > cols["right"] + 100 else "even"


def test_unet_part_levels_show_their_own_maps(browser, parts_url):
    with watched_page(browser, parts_url) as watched:
        watched.page.goto(f"{parts_url}/generated/pages/red-cat.html")
        watched.page.wait_for_selector(f"{FIG}[data-atlas-mounted]")
        fig = watched.page.locator(FIG)
        levels = fig.locator(".atlas-daam-levels .atlas-button")
        assert levels.all_inner_texts() == ["all", "fine", "coarse", "down", "mid", "up"]
        assert levels.nth(4).get_attribute("title") == "mid blocks of the UNet layers: 2×2"
        fig.locator(".atlas-daam-token", has_text="cat").click()  # entry 4: "all" is ramp 0 (brighter right)
        assert fig.get_attribute("data-entry") == "4" and brighter(fig) == "right"
        fig.locator("[data-role=bin]").fill("1")  # a time bin first: a part level returns to all steps
        for name, side in (("up", "left"), ("mid", "right"), ("down", "left")):
            fig.locator(".atlas-daam-levels .atlas-button", has_text=name).click()
            assert fig.get_attribute("data-level") == name and fig.get_attribute("data-bin") == "all"
            assert brighter(fig) == side, name
            assert f"{name} layers" in fig.locator("[data-role=status]").inner_text()
        watched.assert_clean()


def test_end_token_button_beside_time_pins_its_map(browser, parts_url):
    with watched_page(browser, parts_url) as watched:
        watched.page.goto(f"{parts_url}/generated/pages/red-cat.html")
        watched.page.wait_for_selector(f"{FIG}[data-atlas-mounted]")
        fig = watched.page.locator(FIG)
        end = fig.locator("[data-action=special]")
        # it sits in the time control's row, right after the time slider
        assert end.evaluate("b => !!b.closest('.atlas-controls').querySelector('[data-role=bin]')")
        assert end.inner_text() == "⟨end⟩" and end.get_attribute("aria-pressed") == "false"
        end.click()
        assert fig.get_attribute("data-entry") == "8" and end.get_attribute("aria-pressed") == "true"
        assert fig.locator(".atlas-daam-token", has_text="⟨end⟩").get_attribute("aria-pressed") == "true"
        assert "<|endoftext|>" in fig.locator("[data-role=status]").inner_text()
        assert brighter(fig) == "right"  # entry 8, all steps: ramp 0
        fig.locator("[data-role=bin]").fill("1")  # its map in time bin 1: ramp 1
        assert fig.get_attribute("data-bin") == "1" and brighter(fig) == "left"
        end.click()  # a second click unpins
        watched.page.mouse.move(0, 0)
        assert fig.get_attribute("data-entry") == "" and end.get_attribute("aria-pressed") == "false"
        watched.assert_clean()
