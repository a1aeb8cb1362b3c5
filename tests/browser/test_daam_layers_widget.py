"""The DAAM widget's layer, head and special-token controls (issue 19, item 6) in headless Chromium.

The fixture site's red-cat DAAM section is rebaked here with three layers (2, 2 and 1 heads), a padding entry
and the specials table, every map a known ramp (tests/render/fakesite.py ``daam_ramp``: 0 brighter right,
1 brighter left, 2 brighter bottom, 3 one lit column at the left). Entry e's "all" map is ramp e % 2; its layer
maps are ramps LAYER_RAMPS; cat's (entry 4) head maps HEAD_RAMPS (the end token's all ramp 2, the others' ramp 0). A wrong frame offset, a
sheet of the wrong entry or a control that does nothing lights the wrong part of the overlay.
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
HEADS = (2, 2, 1)
LAYER_RAMPS = (2, 1, 3)
HEAD_RAMPS = (1, 2, 2, 3, 0)
END, PADDING = 8, 9
SHAPE = """fig => {
  const c = fig.querySelector('canvas'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let left = 0, right = 0, top = 0, bottom = 0, total = 0, first = 0, second = 0;
  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
    const a = d[(y * c.width + x) * 4 + 3];
    total += a;
    if (x === 0) first += a;
    if (x === 1) second += a;
    if (x < c.width / 2) left += a; else right += a;
    if (y < c.height / 2) top += a; else bottom += a;
  }
  return {left, right, top, bottom, total, first, second, pixels: Array.from(d).join(',')};
}"""


def sheet(generated: Path, frames: list, columns: int) -> dict:
    width, height = fakesite.DAAM_FRAME
    image = fakesite.Image.new("L", (columns * width, -(-len(frames) // columns) * height))
    for i, frame in enumerate(frames):
        image.paste(frame, (i % columns * width, i // columns * height))
    src = fakesite._save(generated, fakesite._encode(image, "PNG"), "png")
    return {"src": src, "frame_width": width, "frame_height": height, "columns": columns, "count": len(frames)}


def with_layers(generated: Path) -> None:
    """Rewrite red-cat's DAAM section: a padding entry, the specials, three layers and their heads."""
    path = generated / "prompts" / "red-cat.json"
    manifest = json.loads(path.read_text())
    daam = manifest["daam"]
    ramp = lambda kind: fakesite.daam_ramp(*fakesite.DAAM_FRAME, kind)  # noqa: E731
    daam["entries"].append({"label": "padding (67 tokens)", "padding": True})
    entries, bins = len(daam["entries"]), daam["timestep_bins"]
    daam["aggregate"] = sheet(generated, [ramp(k) for e in range(entries) for k in (e % 2, 2, 3)], 3)
    daam["over_time"] = sheet(generated, [ramp(b % 2) for _ in range(entries) for b in range(bins)], bins)
    daam["specials"] = [{"kind": "start", "entry": 7, "note": ""}, {"kind": "end", "entry": END, "note": ""},
                        {"kind": "padding", "entry": PADDING, "note": "", "tokens": 67, "share": 0.3}]
    daam["layers"] = [{"name": f"layer{i}", "label": label, "location": loc, "resolution": res, "heads": heads}
                      for i, (label, loc, res, heads) in enumerate(zip(("down 1.0", "mid 0", "up 1.0"), ("down", "mid", "up"),
                                                                       ([8, 8], [2, 2], [8, 8]), HEADS))]
    daam["by_layer"] = sheet(generated, [ramp(k) for _ in range(entries) for k in LAYER_RAMPS], len(HEADS))
    daam["by_head"] = [sheet(generated, [ramp(2 if e == END else k if e == 4 else 0) for k in HEAD_RAMPS], len(HEAD_RAMPS)) for e in range(entries)]
    daam["shares"] = {"by_layer": [[0.5, 0.3, 0.2]] * entries, "by_head": [[0.25, 0.25, 0.1, 0.2, 0.2]] * entries}
    path.write_text(json.dumps(manifest, sort_keys=True, indent=1))


@pytest.fixture(scope="module")
def layers_url(tmp_path_factory):
    built = fakesite.build_fixture_site(tmp_path_factory.mktemp("atlas-daam-layers"), with_layers)
    with serve(built) as url:
        yield url


def brightest(fig) -> str:
    """'right', 'left', 'bottom' or 'column' (one lit column at the left)."""
    s = fig.evaluate(SHAPE)
    if s["bottom"] > 1.3 * s["top"]:
        return "bottom"
    if s["right"] > 1.3 * s["left"]:
        return "right"
    if s["left"] > 1.3 * s["right"]:
        return "column" if s["first"] > 3 * s["second"] else "left"
    return "even"


def loaded(page) -> list[str]:
    return page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")


def test_layer_and_head_controls_show_their_maps_and_load_lazily(browser, layers_url):
    with watched_page(browser, layers_url) as watched:
        page = watched.page
        page.goto(f"{layers_url}/generated/pages/red-cat.html")
        page.wait_for_selector(f"{FIG}[data-atlas-mounted]")
        fig = page.locator(FIG)
        status = fig.locator("[data-role=status]")
        layer, head = fig.locator("[data-role=layer]"), fig.locator("[data-role=head]")
        head_src = fig.locator("[data-role=by-head][data-entry='4']").get_attribute("data-src").split("/")[-1]
        layer_src = fig.locator("[data-role=by-layer]").get_attribute("data-src").split("/")[-1]
        assert not any(head_src in u or layer_src in u for u in loaded(page))  # nothing per layer or head yet
        assert head.is_disabled()

        fig.locator(".atlas-daam-token", has_text="cat").click()  # entry 4: "all" is ramp 0
        before = fig.evaluate(SHAPE)["pixels"]
        assert brightest(fig) == "right" and "all layers" in status.inner_text()
        fig.locator("[data-role=bin]").fill("1")  # a time bin: choosing a layer returns to all steps
        layer.select_option("1")
        assert fig.get_attribute("data-layer") == "1" and fig.get_attribute("data-bin") == "all"
        assert brightest(fig) == "left" and fig.evaluate(SHAPE)["pixels"] != before
        assert "layer mid 0 (2×2) · all 2 heads · 30% of its attention" in status.inner_text()
        assert fig.locator("[data-level][aria-pressed=true]").count() == 0
        assert any(layer_src in u for u in loaded(page)) and not any(head_src in u for u in loaded(page))

        assert head.is_enabled() and head.locator("option").all_inner_texts() == ["all", "1 of 2", "2 of 2"]
        head.select_option("0")  # layer 1's first head: head frame 2 (ramp 2)
        assert fig.get_attribute("data-head") == "0" and brightest(fig) == "bottom"
        assert "head 1 of 2 · 10% of its attention" in status.inner_text()
        head.select_option("1")  # its second head: head frame 3 (ramp 3)
        assert brightest(fig) == "column" and "head 2 of 2 · 20%" in status.inner_text()
        assert any(head_src in u for u in loaded(page))
        other = fig.locator("[data-role=by-head][data-entry='5']").get_attribute("data-src").split("/")[-1]
        assert not any(other in u for u in loaded(page))  # only the shown entry's head sheet

        layer.select_option("2")  # a new layer starts with all its heads
        assert fig.get_attribute("data-head") == "" and brightest(fig) == "column"  # layer 2: ramp 3
        head.select_option("0")  # its only head: head frame 4 (ramp 0)
        assert brightest(fig) == "right"
        layer.select_option("0")
        assert brightest(fig) == "bottom"  # layer 0: ramp 2

        fig.locator("[data-action=special][data-kind=end]").click()  # the end token's heads have their own sheet
        layer.select_option("1")
        head.select_option("1")
        assert fig.get_attribute("data-entry") == str(END) and brightest(fig) == "bottom"
        assert "“<|endoftext|>”" in status.inner_text()

        fig.locator("[data-level='0']").click()  # a level button clears the layer
        assert fig.get_attribute("data-layer") == "" and layer.input_value() == "-1" and head.is_disabled()
        fig.locator("[data-role=bin]").fill("1")
        layer.select_option("0")
        fig.locator("[data-role=bin]").fill("0")  # and a time bin too
        assert fig.get_attribute("data-layer") == "" and layer.input_value() == "-1"
        watched.assert_clean()


def test_special_token_buttons_beside_the_time_control(browser, layers_url):
    with watched_page(browser, layers_url) as watched:
        page = watched.page
        page.goto(f"{layers_url}/generated/pages/red-cat.html")
        page.wait_for_selector(f"{FIG}[data-atlas-mounted]")
        fig = page.locator(FIG)
        buttons = fig.locator("[data-action=special]")
        assert buttons.all_inner_texts() == ["⟨start⟩", "⟨end⟩", "⟨pad⟩"]
        assert buttons.evaluate_all("bs => bs.every(b => !!b.closest('.atlas-controls').querySelector('[data-role=bin]'))")
        buttons.nth(2).click()
        assert fig.get_attribute("data-entry") == str(PADDING) and buttons.nth(2).get_attribute("aria-pressed") == "true"
        assert "“padding (67 tokens)”" in fig.locator("[data-role=status]").inner_text()
        assert brightest(fig) == "left"  # entry 9: ramp 1
        buttons.nth(0).click()
        assert fig.get_attribute("data-entry") == "7" and brightest(fig) == "left"
        assert buttons.nth(2).get_attribute("aria-pressed") == "false"
        fig.locator("[data-role=bin]").fill("0")  # the start token's map at a time bin: ramp 0
        assert fig.get_attribute("data-bin") == "0" and brightest(fig) == "right"
        watched.assert_clean()
