"""The experiments: section of prompt files: one-line file:line errors, inputs and masks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image
from spec.spec_errors import assert_one_line_error, load_checked, write_prompt_file

from generator.spec.prompt_set import SpecError, load_prompt_set

INPUTS = Path(__file__).resolve().parents[2] / "prompts" / "inputs"


def _write(tmp_path: Path, experiments: str) -> Path:
    shutil.copy(INPUTS / "shapes-scene.png", tmp_path / "scene.png")
    head = "model: testing:tiny-if\nexperiments:\n  inputs:\n    scene: scene.png\n"
    return write_prompt_file(tmp_path, head + experiments, "course.yaml")


def test_shipped_course_file_is_valid():
    spec = load_prompt_set(INPUTS.parent / "course.yaml").experiments
    assert spec.forward.timesteps == (250, 500, 750)
    assert [e.id for e in spec.sdedit] == ["scene", "drawing", "img2img"]
    assert spec.sdedit[0].start_indices == (1, 3, 5, 7, 10, 20)
    assert spec.hybrids[0].kernel_size == 33 and spec.hybrids[0].sigma == 2.0


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("  sdedit:\n    - image: nope\n", 6, "image 'nope' is not one of the names"),
        ("  sdedit:\n    - image: scene\n      steps: 25\n      start_indices: [1, 40]\n", 8, "start_indices must be >= 0 and <= 24"),
        ("  inpaint:\n    - image: scene\n      mask: {box: [0.8, 0, 0.2, 1]}\n", 7, "left < right"),
        ("  hybrids:\n    - prompts: [a]\n", 6, "exactly two prompts"),
        ("  hybrids:\n    - prompts: [a, b]\n      kernel_size: 32\n", 7, "kernel_size must be odd"),
        ("  forward:\n    image: scene\n    colour: red\n", 7, "unknown key 'colour'"),
    ],
)
def test_mistakes_are_one_line_with_file_and_line(tmp_path, body, line, message):
    assert_one_line_error(_write(tmp_path, body), line, message)


def test_unreadable_images_and_masks_of_the_wrong_size(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not an image")
    path = _write(tmp_path, "    broken: broken.png\n")
    with pytest.raises(SpecError, match=rf"{path}:5: cannot read input image 'broken'"):
        load_checked(path)
    Image.new("L", (64, 64)).save(tmp_path / "mask.png")
    path = _write(tmp_path, "  inpaint:\n    - image: scene\n      mask: mask.png\n")
    with pytest.raises(SpecError, match=r":7: mask 'mask.png' is 64x64 but image 'scene' is 128x128"):
        load_checked(path)
    Image.new("RGB", (8, 8)).save(tmp_path / "odd.bmp")
    path = _write(tmp_path, "    odd: odd.bmp\n")
    with pytest.raises(SpecError, match="is BMP; use PNG, JPEG or WebP"):
        load_checked(path)


def test_inputs_of_any_size_are_centre_cropped_and_resized(tmp_path):
    from generator.experiments.course.inputs import fit_image, mask_tensor
    from generator.spec.experiments import MaskSpec

    wide = Image.new("RGB", (90, 30), (255, 0, 0))
    wide.paste((0, 0, 255), (30, 0, 60, 30))  # blue centre third: all that survives the centre crop
    wide.save(tmp_path / "wide.webp", lossless=True)
    image = fit_image(str(tmp_path / "wide.webp"), 32, 32)
    assert image.shape == (3, 32, 32) and image[2].min() > 0.95 and image[0].max() < 0.05
    box = mask_tensor(MaskSpec("box", bounds=(0.5, 0.0, 1.0, 1.0)), 32, 32)
    assert box.shape == (1, 32, 32) and box[0, :, 16:].all() and not box[0, :, :16].any()
