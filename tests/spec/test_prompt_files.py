"""Prompt-file validation: every mistake is one line 'FILE:LINE: ...', exit code 2, and nothing is written."""

from __future__ import annotations

import sys

import pytest
from spec.spec_errors import assert_one_line_error, write_prompt_file

from generator.spec.prompt_set import SpecError, load_prompt_set

GOOD = """\
model: testing:tiny-sd
defaults:
  steps: 4
  width: 64
  height: 64
prompts:
  - id: cat
    text: a red cat
  - id: dog
    text: a dog
    steps: 6
"""


def test_good_file_resolves_defaults_and_overrides(tmp_path):
    prompt_set = load_prompt_set(write_prompt_file(tmp_path, GOOD))
    assert prompt_set.model == "testing:tiny-sd"
    assert [p.id for p in prompt_set.prompts] == ["cat", "dog"]
    assert [p.settings.steps for p in prompt_set.prompts] == [4, 6]
    assert prompt_set.prompts[1].settings.width == 64
    path = write_prompt_file(tmp_path, GOOD)
    assert load_prompt_set(path, model_override="testing:tiny-sdxl").model == "testing:tiny-sdxl"


BAD = [
    ("broken yaml", GOOD.replace("  - id: dog", "  - id: [dog"), 10, "invalid YAML"),
    ("unknown top key", GOOD + "colour: red\n", 12, "unknown top-level key 'colour'"),
    ("unknown default", GOOD.replace("  steps: 4", "  stepz: 4"), 3, "unknown key in defaults 'stepz'"),
    ("unknown prompt key", GOOD.replace("    steps: 6", "    stpes: 6"), 11, "unknown prompt key 'stpes'"),
    ("wrong type", GOOD.replace("  steps: 4", "  steps: four"), 3, "steps must be int"),
    ("steps < 1", GOOD.replace("    steps: 6", "    steps: 0"), 11, "steps must be >= 1"),
    ("negative guidance", GOOD.replace("  steps: 4", "  guidance: -1"), 3, "guidance must be >= 0"),
    ("empty list", "model: testing:tiny-sd\nprompts: []\n", 2, "'prompts' must be a non-empty list"),
    ("duplicate id", GOOD.replace("id: dog", "id: cat"), 9, "duplicate id 'cat' (first on line 7)"),
    ("unsafe id", GOOD.replace("id: dog", "id: ../dog"), 9, "must be a slug"),
    ("empty text", GOOD.replace("text: a dog", "text: '  '"), 10, "needs a non-empty 'text'"),
    ("bool as int", GOOD.replace("  steps: 4", "  steps: true"), 3, "steps must be int"),
]


@pytest.mark.parametrize("name,text,line,message", BAD, ids=[b[0] for b in BAD])
def test_bad_file_is_one_line_with_file_and_line(tmp_path, name, text, line, message):
    assert_one_line_error(write_prompt_file(tmp_path, text), line, message)


MODEL_CHECKS = [
    ("size not multiple of 8", GOOD.replace("  width: 64", "  width: 60"), "width 60 is not a multiple of 8"),
    ("unknown scheduler", GOOD.replace("  steps: 4", "  scheduler: heun9"), "unknown scheduler 'heun9'"),
    ("too long", GOOD.replace("text: a dog", "text: " + "a dog " * 40 + "chewing gum"), "would be cut: "),
    ("unknown model", GOOD.replace("testing:tiny-sd", "testing:nope"), "unknown model id 'testing:nope'"),
]


@pytest.mark.parametrize("name,text,message", MODEL_CHECKS, ids=[m[0] for m in MODEL_CHECKS])
def test_cli_exits_2_with_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, name, text, message):
    from generator.cli import main

    path = write_prompt_file(tmp_path, text)
    out = tmp_path / "generated"
    monkeypatch.setattr(sys, "argv", ["diffatlas", "bake", str(path), "--out", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0]
    assert not out.exists()


def test_too_long_prompt_names_the_cut_words(tmp_path):
    from generator.bake.preflight import check_against_model
    from generator.models.registry import model_limits

    text = GOOD.replace("text: a dog", "text: " + "a dog " * 37 + "chewing gum")
    with pytest.raises(SpecError, match=r"set.yaml:9: .*these words would be cut: chewing gum$"):
        check_against_model(load_prompt_set(write_prompt_file(tmp_path, text)), model_limits("testing:tiny-sd"))
