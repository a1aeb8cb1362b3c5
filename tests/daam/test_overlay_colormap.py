"""The inferno colormap exists twice: baked overlays (generator/daam/overlay.py) and the DAAM widget
(site/assets/js/daam.js) colour maps in the browser. Both must hold the same polynomial, to the digit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from generator.daam.overlay import INFERNO, inferno

DAAM_JS = Path(__file__).resolve().parents[2] / "site" / "assets" / "js" / "daam.js"


def js_inferno() -> np.ndarray:
    """The ``var INFERNO = [...]`` table of daam.js, read as JSON."""
    found = re.search(r"var INFERNO = (\[.*?\]);", DAAM_JS.read_text(), re.S)
    assert found, "daam.js has no `var INFERNO = [...];` table"
    return np.array(json.loads(found.group(1)))


def test_widget_and_overlay_use_the_same_colormap():
    assert js_inferno().shape == INFERNO.shape == (7, 3)
    assert np.array_equal(js_inferno(), INFERNO)  # same digits, same doubles


def test_colormap_runs_from_black_to_pale_yellow():
    ends = inferno(np.array([0.0, 1.0]))
    assert np.allclose(ends[0], 0, atol=0.02)  # inferno starts black
    assert ends[1][0] > 0.95 and ends[1][1] > 0.95 and ends[1][2] > 0.5  # and ends pale yellow
