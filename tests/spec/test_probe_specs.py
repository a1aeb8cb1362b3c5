"""Prompt-file keys of issue 5 (jumps, compare, guidances, seeds): defaults, conversion, one-line errors."""

from __future__ import annotations

import pytest
from spec.spec_errors import assert_one_line_error, write_prompt_file

from generator.spec.prompt_set import JumpSettings, load_prompt_set

BASE = """model: testing:tiny-sd
defaults:
  jumps: {every: 2, steps: [1, 2]}
prompts:
  - id: cat
    text: a red cat
    compare: a blue cat
    guidances: [0, 1, 7.5]
    seeds: [0, 1]
  - id: dog
    text: a dog
EXTRA
"""


def write(tmp_path, extra: str = "", base: str = BASE):
    return write_prompt_file(tmp_path, base.replace("EXTRA", extra), "p.yaml")


def load(tmp_path, extra: str = "", base: str = BASE):
    return load_prompt_set(write(tmp_path, extra, base))


def test_keys_convert_and_defaults_apply(tmp_path):
    cat, dog = load(tmp_path).prompts
    assert cat.compare == "a blue cat" and dog.compare is None
    assert cat.settings.guidances == (0.0, 1.0, 7.5) and cat.settings.seeds == (0, 1)
    assert cat.settings.jumps == dog.settings.jumps == JumpSettings(every=2, steps=(1, 2))
    assert cat.spec_hash("m") != load(tmp_path, "", BASE.replace("a blue cat", "a green cat")).prompts[0].spec_hash("m")
    off = load(tmp_path, "    jumps: false").prompts[1]
    assert off.settings.jumps is None


@pytest.mark.parametrize("extra, line, message", [
    ("    jumps:\n      every: 0", 13, "jumps.every must be an integer >= 1 or null (got 0)"),
    ("    jumps:\n      every: 2\n      method: fast", 14, "jumps.method must be 'ddim' or 'beta-sum' (got 'fast')"),
    ("    jumps: {steps: [0]}", 12, "jumps.steps must hold integers >= 1 (found 0)"),
    ("    jumps: {every: null}", 12, "jumps needs 'every' or a list 'at' of steps to jump from"),
    ("    jumps: {speed: 2}", 12, "jumps.speed is not a jumps key"),
    ("    guidances: [1, -2]", 12, "guidances must be numbers >= 0 (found -2)"),
    ("    seeds: []", 12, "seeds must list 1 to 12 seeds"),
    ("    compare: ''", 12, "'compare' must be a non-empty prompt text"),
    ("    compare: a dog", 12, "'compare' is the same text as the prompt"),
    ("    seeds: [0, 1, 2, 3, 4, 5]\n    guidances: [1, 2, 3, 4, 5, 6]", 10, "42 guidance x seed variants; at most 32"),
])
def test_mistakes_are_one_line_with_file_and_line(tmp_path, extra, line, message):
    assert_one_line_error(write(tmp_path, extra), line, message)
