"""The DAAM widget's UNet-part levels (issue 19, item 6): down, mid and up maps baked next to all/fine/coarse.

Each part's frame in the aggregate sheet must be the trace's own map restricted to that part (a wrong frame
order or a part left out fails), and the manifest names each part's resolutions for the widget's titles.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from generator.bake.prompt.daam import bake_daam, part_resolutions
from generator.bake.store import AssetStore
from generator.daam import trace

PROMPT = "a red cat"


def _frame(sheet: np.ndarray, index: int, columns: int, width: int, height: int) -> np.ndarray:
    row, column = divmod(index, columns)
    return sheet[row * height:(row + 1) * height, column * width:(column + 1) * width].astype(float)


def test_each_unet_part_is_a_level_with_its_own_map(tiny_sd, tmp_path):
    with trace(tiny_sd, timestep_bins=2) as traced:
        tiny_sd.generate(PROMPT, steps=2, width=64, height=64)
    section = bake_daam(traced, AssetStore(tmp_path), preview=32)
    parts = part_resolutions(traced)
    assert set(parts) <= {"down", "mid", "up"} and {"down", "up"} <= set(parts)  # tiny SD: down and up blocks attend
    assert section["levels"] == ["all", "fine", "coarse", *parts]
    assert {name: [tuple(r) for r in section["resolutions"][name]] for name in parts} == parts
    aggregate = section["aggregate"]
    levels = len(section["levels"])
    assert aggregate["count"] == levels * len(section["entries"])
    sheet = np.asarray(Image.open(tmp_path / aggregate["src"]))
    cat = next(w for w in section["words"] if w["text"] == "cat")["map"]
    width, height = aggregate["frame_width"], aggregate["frame_height"]
    for part in parts:
        frame = _frame(sheet, cat * levels + section["levels"].index(part), aggregate["columns"], width, height)
        expected = (traced.word_map("cat", locations=[part], size=(height, width)).numpy() * 255).round()
        assert np.abs(frame - expected).max() <= 1, part
    down = _frame(sheet, cat * levels + section["levels"].index("down"), aggregate["columns"], width, height)
    up = _frame(sheet, cat * levels + section["levels"].index("up"), aggregate["columns"], width, height)
    assert np.abs(down - up).max() > 1  # two parts, two different maps: not one frame repeated
