"""``variants_expect:``: one guidance x seed cell of a prompt's grid marked as an expected failure, with its reason;
the other cells keep the prompt's own expectation, and mistakes are one FILE:LINE line."""

from __future__ import annotations

import pytest
from spec.spec_errors import assert_one_line_error, write_prompt_file

from generator.spec.fields import Expectation
from generator.spec.prompt_set import load_prompt_set

BASE = """model: testing:tiny-sd
prompts:
  - id: two
    text: two green triangles
    seed: 1
    guidances: [0, 1, 3]
    seeds: [1, 2]
EXTRA"""


def write(tmp_path, extra: str):
    return write_prompt_file(tmp_path, BASE.replace("EXTRA", extra), "variants.yaml")


def test_a_marked_cell_fails_on_purpose_and_the_others_keep_the_prompts_expectation(tmp_path):
    (plain,) = load_prompt_set(write(tmp_path, "")).prompts
    extra = """    variants_expect:
      - guidance: 1
        seed: 1
        expect: fail
        reason: weak guidance grows a third triangle
      - {guidance: 3, expect: fail, reason: every seed at 3}
"""
    (marked,) = load_prompt_set(write(tmp_path, extra)).prompts
    weak = Expectation("fail", "weak guidance grows a third triangle")
    assert marked.variant_expect(1, 1.0) == weak
    assert marked.variant_expect(2, 1.0) is None  # another seed at the same guidance: the prompt's (none)
    assert marked.variant_expect(2, 3.0) == marked.variant_expect(1, 3.0) == Expectation("fail", "every seed at 3")
    assert plain.variant_expect(1, 1.0) is None
    assert marked.spec_hash("m") != plain.spec_hash("m")  # the expectation is part of the cache key


@pytest.mark.parametrize("extra, line, message", [
    ("    variants_expect: {guidance: 1}\n", 8, "variants_expect must be a non-empty list"),
    ("    variants_expect:\n      - {guidance: 5, expect: fail, reason: r}\n", 9,
     "variants_expect needs a guidance of its guidances (0, 1, 3)"),
    ("    variants_expect:\n      - {guidance: 1, seed: 9, expect: fail, reason: r}\n", 9,
     "variants_expect seed 9 is not one of its seeds"),
    ("    variants_expect:\n      - {guidance: 1}\n", 9, "needs expect: fail and a reason"),
    ("    variants_expect:\n      - {guidance: 1, expect: fail}\n", 9, "expect: fail needs a 'reason'"),
    ("    variants_expect:\n      - {guidance: 1, why: r}\n", 9, "unknown key 'why' in variants_expect"),
])
def test_variants_expect_mistakes_are_one_line_with_file_and_line(tmp_path, extra, line, message):
    assert_one_line_error(write(tmp_path, extra), line, message)
