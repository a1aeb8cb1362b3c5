"""`diffatlas eval digits` scores every sample by both digit judges, the shipped one and the independent one, and
reports how often they agree. Samples here are real MNIST test digits (sampling is replaced), so the numbers are
known: each judge's share must equal what that judge reads, and a judge that reads everything as a 7 shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from generator.builtin.digits.classifier import classify
from generator.builtin.digits.mnist import load_mnist
from generator.cli import app
from generator.evaluate import digits_report
from generator.evaluate.digits_judge import independent_classifier, shipped_classifier
from generator.evaluate.digits_report import Scored, agreement, evaluate_digits

SLICE = Path(__file__).parents[1] / "builtin" / "data" / "mnist-test-500"  # MNIST test digits 0..499


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    torch.set_num_threads(1)
    split = load_mnist(SLICE, "test")
    return split.images_as_float(), split.labels_as_long()


@pytest.fixture()
def real_samples(monkeypatch, digits):
    """Replace the diffusion sampling by real test digits: the class model "draws" the next test digit of the
    class it is asked for, the time model the first n test digits."""
    images, labels = digits

    def class_samples(model, asked, *args, **kwargs):
        seen: dict[int, int] = {}
        picks = []
        for label in asked.tolist():
            index = seen.get(label, 0)
            seen[label] = index + 1
            picks.append(int(torch.nonzero(labels == label)[index]))
        return images[picks]

    monkeypatch.setattr(digits_report, "sample_class_model", class_samples)
    monkeypatch.setattr(digits_report, "sample_time_model", lambda model, n, *args, **kwargs: images[:n])
    return class_samples


class ReadsEverythingAs(nn.Module):
    """A judge that reads every image as one digit, fully sure."""

    def __init__(self, digit: int) -> None:
        super().__init__()
        self.digit = digit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.full((x.shape[0], 10), -20.0)
        logits[:, self.digit] = 20.0
        return logits


def test_agreement_known_answers() -> None:
    first = Scored({}, torch.tensor([1, 2, 3, -1]), torch.tensor([True, True, False, False]))
    second = Scored({}, torch.tensor([1, 5, 3, -1]), torch.tensor([True, False, True, False]))
    assert agreement(first, second) == {"same_label": 0.75, "same_verdict": 0.5, "right_by_both": 0.25, "n": 4}


def test_eval_report_holds_both_judges(tmp_path: Path, real_samples, digits) -> None:
    out = tmp_path / "eval.json"
    out.write_text(json.dumps({"denoiser": {"n": 7}, "time": {"stale": True}}))
    result = CliRunner().invoke(app, ["eval", "digits", "--n", "100", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["denoiser"] == {"n": 7}  # what this run did not measure is kept
    assert report["judges"]["shipped"]["folder"] == "classifier"
    assert report["judges"]["independent"]["folder"] == "classifier2"
    assert report["judges"]["independent"]["test_accuracy"] >= 0.99
    assert "independent judge" in result.output and "the judges give the same label" in result.output

    asked = torch.arange(100) % 10
    class_images = real_samples(None, asked)
    time_images = digits[0][:100]
    for name, judge in (("shipped", shipped_classifier()), ("independent", independent_classifier())):
        read = classify(judge, class_images).argmax(1)
        scores = report["class"] if name == "shipped" else report["class"]["independent"]
        assert scores["label_accuracy"] == pytest.approx(float((read == asked).float().mean()), abs=1e-4)
        assert scores["label_accuracy"] >= 0.95  # real test digits
        probabilities = classify(judge, time_images)
        scores = report["time"] if name == "shipped" else report["time"]["independent"]
        assert scores["confident_fraction"] == pytest.approx(
            float((probabilities.max(1).values >= 0.9).float().mean()), abs=1e-4)
        assert scores["predicted_histogram"] == torch.bincount(probabilities.argmax(1), minlength=10).tolist()
    same = classify(shipped_classifier(), time_images).argmax(1) == classify(independent_classifier(), time_images).argmax(1)
    assert report["time"]["agreement"]["same_label"] == pytest.approx(float(same.float().mean()), abs=1e-4)
    assert report["class"]["target"] == 0.98 and report["time"]["target"] == 0.8
    for stage in ("class", "time"):
        assert {"same_label", "same_verdict", "right_by_both", "n"} <= set(report[stage]["agreement"])
        assert "meets_target" in report[stage]["independent"] and "stale" not in report[stage]


def test_a_judge_that_disagrees_shows(real_samples) -> None:
    result = evaluate_digits(nn.Identity(), {}, nn.Identity(), {}, shipped_classifier(), n=50,
                             independent=ReadsEverythingAs(7))
    assert result["class"]["label_accuracy"] >= 0.95
    assert result["class"]["independent"]["label_accuracy"] == 0.1  # right only where a 7 was asked
    assert result["class"]["agreement"]["same_label"] <= 0.12
    assert result["time"]["independent"]["confident_fraction"] == 1.0  # sure of everything ...
    assert result["time"]["agreement"]["same_verdict"] == result["time"]["confident_fraction"]  # ... so agrees
    assert result["time"]["agreement"]["right_by_both"] == result["time"]["confident_fraction"]  # where shipped is
    assert evaluate_digits(nn.Identity(), {}, None, None, shipped_classifier(), n=10)["class"].keys().isdisjoint(
        {"independent", "agreement"})  # one judge only when no second is given
