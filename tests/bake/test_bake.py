"""Bake: frame counts, sprite geometry, schema, determinism, cache hits and crash safety."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from PIL import Image

from generator.bake.manifest import manifest_assets
from generator.bake.runner import bake
from generator.manifest.schema import manifest_schema
from generator.spec.prompt_set import load_prompt_set

PROMPTS = """\
model: testing:tiny-sd
defaults: {steps: 5, width: 64, height: 48, preview_size: 40, seed: 3}
prompts:
  - {id: cat, text: a red cat}
  - {id: dog, text: a dog, scheduler: euler}
"""


@pytest.fixture(scope="module")
def baked(tmp_path_factory, tiny_sd):
    root = tmp_path_factory.mktemp("bake")
    (root / "set.yaml").write_text(PROMPTS)
    prompt_set = load_prompt_set(root / "set.yaml")
    events: list[str] = []
    outcomes = bake(prompt_set, root / "generated", adapter=tiny_sd, on_event=events.append)
    return root, prompt_set, outcomes, events


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_manifest_validates_and_counts_frames(baked):
    root, _, outcomes, _ = baked
    assert [o.status for o in outcomes] == ["baked", "baked"]
    schema = manifest_schema()
    for outcome in outcomes:
        manifest = json.loads(outcome.manifest.read_text())
        jsonschema.validate(manifest, schema)
        trajectory = manifest["trajectory"]
        assert trajectory["steps"] == 5 and len(trajectory["timesteps"]) == 5
        for strip in ("noisy", "predicted"):
            sprite = trajectory[strip]
            assert sprite["count"] == 6  # steps + 1: every x_t, then the final image
            with Image.open(root / "generated" / sprite["src"]) as sheet:
                rows = -(-sprite["count"] // sprite["columns"])
                assert sheet.size == (sprite["columns"] * sprite["frame_width"], rows * sprite["frame_height"])
            assert (sprite["frame_width"], sprite["frame_height"]) == (40, 30)  # 64x48 scaled to longest side 40
        assert manifest["settings"]["width"] == 64 and manifest["settings"]["height"] == 48
        assert manifest["final"]["width"] == 64 and manifest["final"]["height"] == 48


def test_sprite_sheet_places_frame_i_at_its_grid_cell():
    from generator.bake.encoders import MAX_SPRITE_SIDE, sprite_sheet

    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    frames = [Image.new("RGB", (8, 6), colour) for colour in colours]
    sheet = sprite_sheet(frames, (32, 24))  # upscaled: lossless, exact colours
    image = Image.open(io.BytesIO(sheet.data)).convert("RGB")
    assert (sheet.columns, sheet.count) == (5, 5) and image.size == (160, 24)
    for index, colour in enumerate(colours):
        assert image.getpixel((index * 32 + 16, 12)) == colour
    wide = sprite_sheet([Image.new("RGB", (8, 8))] * 600, (64, 64))
    assert wide.columns == MAX_SPRITE_SIDE // 64  # wraps into rows instead of exceeding WebP's limit


def test_assets_are_content_addressed(baked):
    root, _, outcomes, _ = baked
    for outcome in outcomes:
        for asset in manifest_assets(json.loads(outcome.manifest.read_text())):
            data = (root / "generated" / asset).read_bytes()
            assert Path(asset).stem == hashlib.sha256(data).hexdigest()[:16]
    gif = next(a for a in manifest_assets(json.loads(outcomes[0].manifest.read_text())) if a.endswith(".gif"))
    with Image.open(root / "generated" / gif) as animation:
        assert animation.n_frames >= 5


def test_second_bake_is_a_cache_hit_and_byte_identical(baked, tiny_sd):
    root, prompt_set, _, _ = baked
    before = tree_bytes(root / "generated")
    events: list[str] = []
    outcomes = bake(prompt_set, root / "generated", adapter=tiny_sd, on_event=events.append)
    assert [o.status for o in outcomes] == ["cached", "cached"]
    assert any("cached" in e for e in events)
    assert tree_bytes(root / "generated") == before
    forced_root = root / "forced"
    bake(prompt_set, forced_root, adapter=tiny_sd, force=True)
    assert tree_bytes(forced_root) == before  # a fresh bake reproduces every byte


def test_index_lists_prompts_in_file_order(baked):
    root, _, _, _ = baked
    index = json.loads((root / "generated" / "index.json").read_text())
    assert [p["id"] for p in index["prompts"]] == ["cat", "dog"]
    assert all((root / "generated" / p["thumbnail"]).exists() for p in index["prompts"])


@pytest.mark.slow
def test_killed_bake_leaves_no_partial_files_and_rerun_completes(tmp_path):
    # long enough to be killed mid-way; no optional sections, so the time goes to the trajectory and its writes
    (tmp_path / "set.yaml").write_text(PROMPTS.replace("steps: 5", "steps: 12, daam: false, jumps: false"))
    out = tmp_path / "generated"
    command = [sys.executable, "-m", "generator", "bake", str(tmp_path / "set.yaml"), "--out", str(out), "--device", "cpu"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "assets").glob("*.webp")) if out.exists() else time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # land somewhere inside the next writes
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    for asset in (out / "assets").glob("*.*"):  # every named asset is whole (a killed write leaves only a .tmp)
        if asset.name.startswith(".") and asset.suffix == ".tmp":
            continue
        assert asset.stem == hashlib.sha256(asset.read_bytes()).hexdigest()[:16]
    for manifest in (out / "prompts").glob("*.json") if (out / "prompts").exists() else []:
        jsonschema.validate(json.loads(manifest.read_text()), manifest_schema())
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    assert not list(out.rglob("*.tmp"))
    assert sorted(p.name for p in (out / "prompts").glob("*.json")) == ["cat.json", "dog.json"]
    for manifest in (out / "prompts").glob("*.json"):
        for asset in manifest_assets(json.loads(manifest.read_text())):
            assert (out / asset).exists()


def test_changed_baking_code_invalidates_the_cache(baked, tiny_sd, monkeypatch):
    from generator.bake import cache

    root, prompt_set, _, _ = baked
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "other-code")
    outcomes = bake(prompt_set.only(["cat"]), root / "generated", adapter=tiny_sd)
    assert [o.status for o in outcomes] == ["baked"]
