"""DAAM in the bake (manifest section, sprite sheets, schema) and the `diffatlas daam` command."""

from __future__ import annotations

import dataclasses

import jsonschema
import numpy as np
from PIL import Image
from typer.testing import CliRunner

from generator.bake.prompt.daam import DaamSection, bake_daam
from generator.bake.prompt.daam import DaamSection
from generator.bake.prompt.registry import SECTIONS
from generator.bake.store import AssetStore
from generator.daam import trace
from generator.manifest.schema import manifest_schema as load_schema
from generator.spec.prompt_set import PromptSpec, Settings

PROMPT = "a cat chewing gum, cat"


def test_daam_section_is_registered_and_follows_the_prompt_setting(tiny_sd):
    assert DaamSection in SECTIONS
    on = PromptSpec("p", PROMPT, Settings())
    off = dataclasses.replace(on, settings=Settings(daam=False))
    assert DaamSection().applies(tiny_sd, on) and not DaamSection().applies(tiny_sd, off)


def test_baked_section_matches_the_trace_and_validates(tiny_sd, tmp_path):
    with trace(tiny_sd, timestep_bins=2) as traced:
        tiny_sd.generate(PROMPT, steps=2, width=96, height=64)
    section = bake_daam(traced, AssetStore(tmp_path), preview=48)
    schema = load_schema()
    jsonschema.validate(section, {"$defs": schema["$defs"], **schema["properties"]["daam"]})
    assert [w["text"] for w in section["words"]] == ["a", "cat", "chewing", "gum", ",", "cat"]
    chewing = next(w for w in section["words"] if w["text"] == "chewing")
    assert len(chewing["tokens"]) >= 2 and {t["map"] for t in section["tokens"] if t["word"] == chewing["index"]} == {chewing["map"]}
    specials = [t for t in section["tokens"] if t["special"]]
    assert [t["special"] for t in specials] == ["start", "end"] and all(t["map"] is not None for t in specials)
    aggregate, over_time = section["aggregate"], section["over_time"]
    assert (aggregate["frame_width"], aggregate["frame_height"]) == (48, 32)  # aspect of the 96x64 image
    levels = len(section["levels"])  # all, fine, coarse, then the UNet parts (tests/bake/test_daam_parts.py)
    assert aggregate["count"] == levels * len(section["entries"]) and over_time["count"] == 2 * len(section["entries"])
    sheet = np.asarray(Image.open(tmp_path / aggregate["src"]))
    assert sheet.ndim == 2 and sheet.dtype == np.uint8  # 8-bit grayscale
    entry = chewing["map"]
    row, column = divmod(entry * levels, aggregate["columns"])
    frame = sheet[row * 32 : (row + 1) * 32, column * 48 : (column + 1) * 48]
    expected = (traced.word_map("chewing", size=(32, 48)).numpy() * 255).round()
    assert np.abs(frame.astype(float) - expected).max() <= 1 and frame.max() == 255


def test_daam_command_writes_image_and_one_overlay_per_word(tmp_path):
    from generator.cli import app

    result = CliRunner().invoke(
        app, ["daam", "a cat chewing gum", "--model", "testing:tiny-sd", "--out", str(tmp_path), "--steps", "1",
              "--tau", "0.4", "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["00-a.png", "01-cat.png", "02-chewing.png", "03-gum.png", "image.png"]
    assert Image.open(tmp_path / "02-chewing.png").size == Image.open(tmp_path / "image.png").size == (64, 64)


def test_daam_command_refuses_bad_tau(tmp_path):
    from generator.cli import app

    result = CliRunner().invoke(app, ["daam", "a cat", "--tau", "2", "--out", str(tmp_path)])
    assert result.exit_code != 0 and not any(tmp_path.iterdir())
