"""Hostile prompt files and input images: each refused in a moment with one line, exit 2, nothing written."""

from __future__ import annotations

import struct
import sys
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from generator.errors import UserError
from generator.experiments.course.inputs import MAX_IMAGE_PIXELS
from generator.spec.bounded_yaml import MAX_DEPTH, MAX_FILE_BYTES, MAX_STRING_CHARS
from generator.spec.prompt_set import SpecError, load_prompt_set

HEAD = "model: testing:tiny-sd\n"
GOOD_PROMPTS = "prompts:\n  - {id: cat, text: a red cat}\n"


def billion_laughs(levels: int = 12) -> str:
    """Each level lists the one before it ten times: 10**levels strings once expanded, about 1 KB as text."""
    lines = ['l0: &l0 "lol"']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels)]
    return HEAD + "\n".join(lines) + "\n" + GOOD_PROMPTS


def run_cli(monkeypatch, capsys, *arguments: str) -> tuple[int, str, str, float]:
    """diffatlas in this process: (exit code, stdout, stderr, seconds)."""
    from generator.cli import main

    monkeypatch.setattr(sys, "argv", ["diffatlas", *arguments])
    started = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        main()
    elapsed = time.perf_counter() - started
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err, elapsed


def assert_refused(monkeypatch, capsys, prompt_file: Path, expected: str) -> None:
    """`diffatlas bake` exits 2 within 2 s, with exactly ``error: expected`` on stderr, and writes nothing."""
    out = prompt_file.parent / "generated"
    code, stdout, stderr, elapsed = run_cli(monkeypatch, capsys, "bake", str(prompt_file), "--out", str(out))
    assert (code, stdout, stderr) == (2, "", f"error: {expected}\n")
    assert elapsed < 2.0
    assert not out.exists()


def test_alias_bomb_is_refused_in_a_moment_without_expanding(tmp_path, monkeypatch, capsys):
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    assert path.stat().st_size < 1500
    expected = f"{path}:2: YAML anchor &l0 refused: prompt files may not use anchors or aliases (write the value out)"
    assert_refused(monkeypatch, capsys, path, expected)


def test_an_alias_without_its_anchor_line_is_refused_by_the_alias(tmp_path):
    path = tmp_path / "alias.yaml"
    path.write_text(HEAD + "prompts:\n  - &p {id: cat, text: a cat}\n  - *p\n")
    with pytest.raises(SpecError, match=r":3: YAML anchor &p refused"):
        load_prompt_set(path)
    path.write_text(HEAD + "defaults: {steps: 4}\nprompts:\n  - {id: cat, text: a cat}\n  - *p\n")
    with pytest.raises(SpecError, match=r":5: (YAML alias \*p refused|invalid YAML: found undefined alias 'p')"):
        load_prompt_set(path)


def test_a_100_mb_file_is_refused_from_its_size_before_reading(tmp_path, monkeypatch, capsys):
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:  # sparse: 100 MB on paper, nothing on disk
        handle.truncate(100 * 2**20)
    assert_refused(monkeypatch, capsys, path, f"{path}:1: the file is 100 MiB; a prompt file may be at most 1 MiB")


def test_a_file_just_under_the_size_limit_still_loads(tmp_path):
    path = tmp_path / "padded.yaml"
    text = HEAD + GOOD_PROMPTS
    path.write_text(text + "#" * (MAX_FILE_BYTES - len(text) - 1) + "\n")
    assert path.stat().st_size == MAX_FILE_BYTES
    assert [p.id for p in load_prompt_set(path).prompts] == ["cat"]


def test_deep_nesting_is_refused_at_the_first_level_too_deep(tmp_path, monkeypatch, capsys):
    path = tmp_path / "deep.yaml"
    path.write_text(HEAD + "prompts: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n")
    assert_refused(monkeypatch, capsys, path, f"{path}:2: nested more than {MAX_DEPTH} levels deep; prompt files need "
                                              "far fewer")
    path.write_text(HEAD + "prompts: " + "[" * 100_000 + "]" * 100_000 + "\n")  # libyaml's own limit (1000) says it
    assert_refused(monkeypatch, capsys, path, f"{path}:2: invalid YAML: exceeded maximum nesting depth")


def test_a_string_over_the_limit_is_refused_and_one_at_it_loads(tmp_path, monkeypatch, capsys):
    path = tmp_path / "long.yaml"
    path.write_text(HEAD + "prompts:\n  - id: cat\n    text: " + "a" * MAX_STRING_CHARS + "\n")
    assert load_prompt_set(path).prompts[0].text == "a" * MAX_STRING_CHARS
    path.write_text(HEAD + "prompts:\n  - id: cat\n    text: " + "a" * (MAX_STRING_CHARS + 1) + "\n")
    assert_refused(monkeypatch, capsys, path, f"{path}:4: a string of {MAX_STRING_CHARS + 1} characters; at most "
                                              f"{MAX_STRING_CHARS} are allowed")


@pytest.mark.parametrize("value,line,message", [
    ("!!python/object/apply:os.system [touch pwned]", 3, "YAML tag !!python/object/apply:os.system refused"),
    ("!!int abc", 3, "YAML tag !!int refused: prompt files hold plain values only"),
    ("9" * 5000, 3, "cannot read this value: Exceeds the limit (4300 digits)"),
], ids=["python tag", "bad explicit int", "5000-digit int"])
def test_tags_and_unreadable_values_are_one_line(tmp_path, monkeypatch, value, line, message):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tags.yaml"
    path.write_text(HEAD + f"defaults:\n  steps: {value}\n" + GOOD_PROMPTS)
    with pytest.raises(SpecError) as error:
        load_prompt_set(path)
    assert str(error.value).startswith(f"{path}:{line}: {message}")
    assert "\n" not in str(error.value) and not (tmp_path / "pwned").exists()


def test_bytes_that_are_not_utf8_and_complex_keys_are_one_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes((HEAD + "prompts:\n  - {id: cat, text: caf\xe9}\n").encode("latin-1"))
    with pytest.raises(SpecError, match=r"latin1.yaml:3: not UTF-8 text \(byte 0xe9\); save the file as UTF-8$"):
        load_prompt_set(path)
    path.write_text(HEAD + "? [a, b]\n: c\n" + GOOD_PROMPTS)
    with pytest.raises(SpecError, match=r":2: a key must be a plain word, not a list or mapping$"):
        load_prompt_set(path)


# --- input images -------------------------------------------------------------------------------------------


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header declares width x height (grey), with a few bytes of image data: a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def experiments_file(folder: Path, image: str) -> Path:
    path = folder / "course.yaml"
    path.write_text(f"model: embedded:shapes\nexperiments:\n  inputs:\n    scene: {image}\n  forward:\n    image: scene\n")
    return path


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any image is decoded (a refusal must come from the header alone)."""
    def refuse(self, *args, **kwargs):
        raise AssertionError("an image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_an_80_megapixel_png_is_refused_from_its_header(tmp_path, monkeypatch, capsys, no_decoding):
    Image.new("1", (10_000, 8_000)).save(tmp_path / "huge.png")  # a real, whole PNG of 80 MP (about 10 KB)
    path = experiments_file(tmp_path, "huge.png")
    assert_refused(monkeypatch, capsys, path, f"{path}:4: input image 'scene' 'huge.png' is 10000x8000 (80.0 "
                                              f"megapixels); at most 67.1 megapixels ({MAX_IMAGE_PIXELS:,} pixels) "
                                              "are allowed")


def test_pil_own_bomb_error_is_one_line_too(tmp_path, monkeypatch, capsys, no_decoding):
    png_header_only(tmp_path / "bomb.png", 30_000, 30_000)  # 900 MP: PIL itself refuses to open it
    path = experiments_file(tmp_path, "bomb.png")
    out = tmp_path / "generated"
    code, stdout, stderr, elapsed = run_cli(monkeypatch, capsys, "bake", str(path), "--out", str(out))
    assert (code, stdout) == (2, "") and elapsed < 2.0 and not out.exists()
    assert stderr.startswith(f"error: {path}:4: input image 'scene' 'bomb.png' is too large to open (Image size "
                             "(900000000 pixels) exceeds limit")
    assert stderr.count("\n") == 1


def test_an_image_at_the_limit_passes_the_check(tmp_path):
    from generator.experiments.course.inputs import open_bounded_image

    png_header_only(tmp_path / "edge.png", 8192, 8192)
    with open_bounded_image(tmp_path / "edge.png") as image:
        assert image.size == (8192, 8192)


def test_input_loading_refuses_a_file_that_grew_after_the_check(tmp_path, no_decoding):
    from generator.experiments.course.inputs import fit_image

    png_header_only(tmp_path / "swapped.png", 9000, 9000)
    with pytest.raises(UserError, match=r"swapped.png is 9000x9000 \(81.0 megapixels\); at most 67.1 megapixels"):
        fit_image(str(tmp_path / "swapped.png"), 32, 32)
