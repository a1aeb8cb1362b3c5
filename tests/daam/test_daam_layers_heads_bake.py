"""The DAAM section's maps per layer and per head, and its special tokens, checked on the bake's own output.

The PNG frames are min-max scaled; ``ranges`` gives each frame's raw [min, max], so the raw maps are rebuilt from
the sheets and must add up: the heads of a layer to that layer, the layers to the "all" map. A head frame put
in the wrong place, a layer missing or a range wrong breaks the sums by far more than 8-bit rounding.
"""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest
import torch
from PIL import Image

from generator.bake.prompt.daam import bake_daam
from generator.bake.prompt.daam_parts import capture_options, layer_label
from generator.bake.store import AssetStore
from generator.daam import trace
from generator.manifest.schema import manifest_schema as load_schema

PROMPT = "a red cat chewing gum"


def frames(root, sprite) -> list[np.ndarray]:
    """Every frame of a sprite sheet, as float arrays in 0..255."""
    sheet = np.asarray(Image.open(root / sprite["src"])).astype(float)
    w, h, columns = sprite["frame_width"], sprite["frame_height"], sprite["columns"]
    return [sheet[(i // columns) * h:(i // columns + 1) * h, (i % columns) * w:(i % columns + 1) * w] for i in range(sprite["count"])]


def raw(frame: np.ndarray, bounds: list[float]) -> np.ndarray:
    lo, hi = bounds
    return lo + frame / 255.0 * (hi - lo)


def step(bounds: list[float]) -> float:
    """The largest error one 8-bit frame adds (half a gray level), plus the 6-digit rounding of its range."""
    return (bounds[1] - bounds[0]) / 510 + 1e-5 * max(abs(bounds[0]), abs(bounds[1]))


@pytest.fixture(scope="module")
def baked(tiny_sd, tmp_path_factory):
    root = tmp_path_factory.mktemp("daam-heads")
    options = capture_options(tiny_sd)
    with trace(tiny_sd, timestep_bins=2, **options) as traced:
        tiny_sd.generate(PROMPT, steps=2, width=64, height=64)
    return root, bake_daam(traced, AssetStore(root), preview=32, padding=options["padding"]), options


def test_capture_keeps_heads_and_folds_padding_for_a_cross_attention_model(baked, tiny_sd):
    root, section, options = baked
    assert options == {"keep": "heads", "padding": "folded"}
    schema = load_schema()
    jsonschema.validate(section, {"$defs": schema["$defs"], **schema["properties"]["daam"]})
    layers = section["layers"]
    assert len(layers) == 7 and all(layer["heads"] == 4 for layer in layers)  # tiny SD: 7 layers x 4 heads
    assert [layer["label"] for layer in layers] == ["down 0.0", "down 1.0", "mid 0", "up 1.0", "up 1.1", "up 2.0", "up 2.1"]
    entries = len(section["entries"])
    assert section["by_layer"]["count"] == entries * len(layers)
    assert len(section["by_head"]) == entries and all(s["count"] == 28 for s in section["by_head"])


def test_heads_sum_to_their_layer_and_layers_to_the_whole_map(baked):
    root, section, _ = baked
    layers = section["layers"]
    aggregate = frames(root, section["aggregate"])
    by_layer = frames(root, section["by_layer"])
    levels = len(section["levels"])
    for e in range(len(section["entries"])):
        whole_bounds = section["ranges"]["all"][e]
        whole = raw(aggregate[e * levels], whole_bounds)  # the "all" level frame the page shows
        layer_bounds = section["ranges"]["by_layer"][e]
        layer_maps = [raw(by_layer[e * len(layers) + i], layer_bounds[i]) for i in range(len(layers))]
        tolerance = step(whole_bounds) + sum(step(b) for b in layer_bounds)
        assert np.abs(sum(layer_maps) - whole).max() <= tolerance
        heads = frames(root, section["by_head"][e])
        head_bounds = section["ranges"]["by_head"][e]
        offset = 0
        for i, layer in enumerate(layers):
            mine = range(offset, offset + layer["heads"])
            head_sum = sum(raw(heads[k], head_bounds[k]) for k in mine)
            assert np.abs(head_sum - layer_maps[i]).max() <= step(layer_bounds[i]) + sum(step(head_bounds[k]) for k in mine)
            assert sum(section["shares"]["by_head"][e][k] for k in mine) == pytest.approx(section["shares"]["by_layer"][e][i], abs=2e-4)
            offset += layer["heads"]
        assert sum(section["shares"]["by_layer"][e]) == pytest.approx(1.0, abs=1e-3)
        assert np.ptp(np.stack(layer_maps), axis=0).max() > 10 * tolerance  # the layers differ: the sums mean something


def test_start_end_and_padding_entries(baked, tiny_sd):
    root, section, _ = baked
    specials = {s["kind"]: s for s in section["specials"]}
    tokens = section["tokens"]
    assert specials["start"]["entry"] == next(t["map"] for t in tokens if t["special"] == "start")
    assert specials["end"]["entry"] == next(t["map"] for t in tokens if t["special"] == "end")
    padding = section["entries"][specials["padding"]["entry"]]
    pads = sum(p.special == "pad" for p in tiny_sd.tokenize(PROMPT))
    assert padding == {"label": f"padding ({pads} tokens)", "padding": True} and specials["padding"]["note"] == ""
    assert 0 < specials["padding"]["share"] < 1  # CLIP's padding is attended (not masked)


def test_folded_padding_is_the_sum_of_every_padding_position(tiny_sd):
    maps = {}
    for padding in (True, "folded"):
        with trace(tiny_sd, timestep_bins=1, padding=padding) as traced:
            tiny_sd.generate(PROMPT, steps=2, width=64, height=64, seed=3)
        end = traced.prompt_tokens(0).end_position
        maps[padding] = [traced.token_map(p, normalized=False) for p in range(end + 1, traced.kept_tokens)]
    assert len(maps["folded"]) == 1 and len(maps[True]) > 10
    torch.testing.assert_close(maps["folded"][0], torch.stack(maps[True]).sum(0), rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def shapes_section(tmp_path_factory) -> dict:
    """The shipped shapes model's section for "a red circle" (2 steps)."""
    from generator.models.registry import load_model

    adapter = load_model("embedded:shapes", device="cpu", dtype="fp32")
    options = capture_options(adapter)
    with trace(adapter, timestep_bins=2, **options) as traced:
        adapter.generate("a red circle", steps=2, seed=0)
    return bake_daam(traced, AssetStore(tmp_path_factory.mktemp("shapes")), preview=32, padding=options["padding"])


def test_shapes_model_has_no_start_token_and_masks_its_padding(shapes_section):
    section = shapes_section
    specials = {s["kind"]: s for s in section["specials"]}
    assert specials["start"] == {"kind": "start", "entry": None, "reason": "absent", "note": "this model's tokenizer adds no start token"}
    assert specials["padding"]["reason"] == "masked"
    assert specials["end"]["entry"] is not None
    assert specials["padding"]["entry"] is None and specials["padding"]["share"] == 0
    assert specials["padding"]["note"].startswith("the model masks its 16 padding tokens out of cross-attention")
    assert [layer["label"] for layer in section["layers"]] == ["down 1.0", "down 2.0", "mid 0", "up 0.0", "up 0.1", "up 1.0", "up 1.1"]
    assert all(layer["heads"] == 2 for layer in section["layers"])


def test_layer_labels_name_deeper_transformer_blocks_only_when_there_are_some():
    plain = ["up_blocks.1.attentions.2.transformer_blocks.0.attn2.processor"]
    deep = plain + ["up_blocks.1.attentions.2.transformer_blocks.1.attn2.processor"]
    assert layer_label(plain[0], plain) == "up 1.2"
    assert [layer_label(n, deep) for n in deep] == ["up 1.2.0", "up 1.2.1"]
    assert layer_label("mid_block.attentions.0.transformer_blocks.0.attn2.processor", plain) == "mid 0"


def test_widget_says_why_a_special_token_has_no_button(shapes_section):
    """The shapes model's section on the page: an ⟨end⟩ button, and no empty control for ⟨start⟩ or ⟨pad⟩."""
    from types import SimpleNamespace

    from generator.render.site import environment

    section = shapes_section
    final = SimpleNamespace(src="f.png", width=32, height=32, verdict=None)
    p = SimpleNamespace(id="p", title="a red circle", text="a red circle", timesteps=[999, 1], final=final)
    traj = SimpleNamespace(group="traj-p", embed=lambda kind: f"embed/p-{kind}.html")
    html = str(environment().get_template("sections/daam.html.j2").module.daam_figure(p, section, traj, lambda src: src))
    start = html.index('class="atlas-daam-specials"')
    specials = html[start:html.index("</span>\n</div>", start)]
    assert specials.count('data-action="special"') == 1 and 'data-kind="end"' in specials
    assert '>no ⟨start⟩</span>' in specials and '>⟨pad⟩ masked</span>' in specials
    assert 'title="the model masks its 16 padding tokens out of cross-attention: no attention reaches them"' in specials
    assert "⟨start⟩ is absent: this model&#39;s tokenizer adds no start token" in html  # the caption says it too
    assert html.count('data-role="by-head"') == len(section["entries"]) and 'data-role="by-layer"' in html
