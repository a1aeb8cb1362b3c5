"""The experiments chapter as baked: every part of a small section on the tiny IF model matches the chapter schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from PIL import Image

from generator.bake.chapters.runner import bake_chapters
from generator.bake.store import AssetStore
from generator.manifest.schema import chapter_schema, schema_errors
from generator.render.chapters.pages import load_chapters
from generator.spec.prompt_set import load_prompt_set

INPUTS = Path(__file__).resolve().parents[2] / "prompts" / "inputs"
SECTION = """\
model: testing:tiny-if
defaults:
  steps: 3
  seed: 0
experiments:
  title: Tiny course
  inputs:
    scene: scene.png
  forward: {image: scene, timesteps: [250, 750]}
  denoise: {image: scene, prompt: a red circle, timesteps: [500], blur_sigmas: [1]}
  samples: {prompt: a square, step_counts: [2], guidance_scales: [0, 3]}
  sdedit:
    - {id: scene, image: scene, prompt: a picture, start_indices: [1]}
  inpaint:
    - {id: box, image: scene, mask: {box: [0.5, 0.2, 0.95, 0.8]}, prompt: a triangle}
  anagrams:
    - {id: flip, prompts: [a circle, a square]}
  hybrids:
    - {id: mix, prompts: [a circle, a square], kernel_size: 5, sigma: 1}
"""


def test_a_baked_chapter_matches_its_schema_and_passes_the_render_checks(tmp_path: Path, tiny_if) -> None:
    shutil.copy(INPUTS / "shapes-scene.png", tmp_path / "scene.png")
    (tmp_path / "tiny.yaml").write_text(SECTION)
    generated = tmp_path / "generated"
    (path,) = bake_chapters(load_prompt_set(tmp_path / "tiny.yaml"), generated, AssetStore(generated), "fingerprint",
                            lambda: tiny_if)
    manifest = json.loads(path.read_text())
    assert {"forward", "denoise", "samples"} <= set(manifest)
    assert all(len(manifest[key]) == 1 for key in ("sdedit", "inpaint", "anagrams", "hybrids"))
    assert schema_errors(manifest, chapter_schema("experiments")) == []
    assert load_chapters(generated, "experiments") == [(path, manifest)]  # schema, assets and sprite sheets


CAPTION_STARTS = {"forward": "The forward process", "denoise": "Denoising baselines",
                  "samples": '"a square": step counts and guidance', "sdedit-scene": 'SDEdit of the input "scene"',
                  "inpaint-box": 'Inpainting "scene"', "anagram-flip": 'Visual anagram: "a circle" upright',
                  "hybrid-mix": 'Hybrid image: "a circle" from afar'}


def test_every_figure_has_slide_files_whose_caption_names_it(tmp_path: Path, tiny_if) -> None:
    shutil.copy(INPUTS / "shapes-scene.png", tmp_path / "scene.png")
    (tmp_path / "tiny.yaml").write_text(SECTION.replace("{prompt: a square,", "{prompt: a square, seeds: [0, 1],"))
    generated = tmp_path / "generated"
    (path,) = bake_chapters(load_prompt_set(tmp_path / "tiny.yaml"), generated, AssetStore(generated), "fingerprint",
                            lambda: tiny_if)
    manifest = json.loads(path.read_text())
    figures = {"forward": manifest["forward"], "denoise": manifest["denoise"], "samples": manifest["samples"]}
    for key, kind in (("sdedit", "sdedit"), ("inpaint", "inpaint"), ("anagrams", "anagram"), ("hybrids", "hybrid")):
        figures.update({f"{kind}-{e['id']}": e for e in manifest[key]})
    assert set(figures) == set(CAPTION_STARTS)
    for figure, entry in figures.items():
        files = entry["downloads"]
        assert files["name"] == f"course-tiny-{figure}"
        caption = (generated / files["caption"]["src"]).read_text(encoding="utf-8")
        assert caption.splitlines()[0].startswith(CAPTION_STARTS[figure]), (figure, caption)
        assert "model testing:tiny-if" in caption
        with Image.open(generated / files["png"]["src"]) as png:
            assert png.format == "PNG" and png.size == (files["png"]["width"], files["png"]["height"])
        animated = figure != "forward"  # every other figure has a run to animate
        assert ("gif" in files) == animated and ("mp4" in files) == animated
        if animated:
            with Image.open(generated / files["gif"]["src"]) as gif:
                assert gif.format == "GIF" and gif.n_frames > 1
    assert manifest["samples"]["seeds"] == [0, 1]  # one grid row per seed, the second seed's images under others
    assert all(len(cell["others"]) == 1 and cell["others"][0]["seed"] == 1
               for cell in manifest["samples"]["by_steps"] + manifest["samples"]["by_guidance"])
    pick = manifest["anagrams"][0]["pick"]  # no judge for the tiny model: its one seed, shown as the first
    assert (pick["rule"], pick["tried"], pick["passed"], manifest["anagrams"][0]["seed"]) == ("first", 1, None, 0)
