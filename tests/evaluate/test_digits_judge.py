"""The digits judge: a sample is labelled exactly as the shipped classifier reads it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generator.builtin.digits.classifier import classify
from generator.evaluate.digits_judge import ANY_DIGIT, CONFIDENT, judge_digit, shipped_classifier
from generator.evaluate.verdicts import grid_verdict
from generator.models import load_model


@pytest.fixture(scope="module")
def samples():
    torch.set_num_threads(1)
    adapter = load_model("embedded:digits", device="cpu")
    return [np.asarray(image) for image in adapter.generate([str(d) for d in range(10)], seed=11, steps=25)]


def test_a_sample_is_labelled_as_the_classifier_reads_it(samples):
    for wanted, image in enumerate(samples):
        probabilities = classify(shipped_classifier(), torch.from_numpy(image[..., 0] / 255.0).float()[None, None])[0]
        digit, confidence = int(probabilities.argmax()), float(probabilities.max())
        (claim,) = judge_digit(str(wanted), image)
        assert (claim.kind, claim.asked) == ("label", str(wanted))
        assert claim.found == f"{digit}, {confidence:.0%} sure"
        assert claim.correct == (digit == wanted)
        (any_digit,) = judge_digit(ANY_DIGIT, image)
        assert any_digit.correct == (confidence >= CONFIDENT)
    assert sum(judge_digit(str(d), image)[0].correct for d, image in enumerate(samples)) >= 9  # the model works
    assert judge_digit("a cat", samples[0]) is None


def test_a_grid_agrees_when_enough_cells_are_right(samples):
    cells = torch.from_numpy(np.stack([image[..., 0] for image in samples])).float() / 255  # (10, 28, 28)
    asked = [str(d) for d in range(10)]
    right = sum(judge_digit(a, image)[0].correct for a, image in zip(asked, samples))
    verdict = grid_verdict("digits", cells, asked, target=0.9)
    assert len(verdict["claims"]) == 10 and verdict["share_right"] == right / 10
    assert verdict["agrees"] == (right >= 9)
    shuffled = grid_verdict("digits", cells, asked[1:] + asked[:1], target=0.9)  # every label asked of the wrong cell
    assert shuffled["agrees"] is False and shuffled["share_right"] <= 0.1


def test_noise_is_not_a_digit_however_sure_the_classifier_is() -> None:
    """The classifier alone reads Gaussian noise as an 8 with confidence 1.00; the judge refuses it."""
    from generator.evaluate.digits_judge import judge_digit, read_digit

    rng = np.random.default_rng(0)
    noise = (np.clip(rng.standard_normal((28, 28)), 0, 1) * 255).astype(np.uint8)
    assert read_digit(noise) == (None, 0.0)
    for asked in ("8", "a digit"):
        (claim,) = judge_digit(asked, noise)
        assert not claim.correct and claim.found.startswith("not a digit")
    blank = np.zeros((28, 28), dtype=np.uint8)
    assert read_digit(blank)[0] is None  # no ink at all


def test_the_shipped_models_digits_pass_the_gate(samples) -> None:
    from generator.evaluate.digits_judge import not_a_digit

    assert [not_a_digit(image[..., 0].astype(np.float32) / 255) for image in samples] == [None] * 10
