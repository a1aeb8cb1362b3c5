"""The independent digit judge (``classifier2``): its documented test accuracy holds on real MNIST test digits, and
it agrees with the shipped judge on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from generator.builtin.digits.classifier import classify, load_classifier
from generator.builtin.digits.classifier2 import Classifier2Config, LeNetClassifier, load_classifier2, random_affine
from generator.builtin.digits.mnist import load_mnist
from generator.builtin.digits.weights import shipped_weights_dir

WEIGHTS = shipped_weights_dir()
SLICE = Path(__file__).parent / "data" / "mnist-test-500"  # MNIST test digits 0..499
MARGIN = 0.015  # 500 digits: one standard error of a 99% accuracy is ~0.45 points


@pytest.fixture(scope="module")
def test_slice() -> tuple[torch.Tensor, torch.Tensor]:
    torch.set_num_threads(1)
    split = load_mnist(SLICE, "test")
    assert len(split) == 500
    return split.images_as_float(), split.labels_as_long()


@pytest.fixture(scope="module")
def judges() -> tuple[torch.nn.Module, torch.nn.Module]:
    return (load_classifier(WEIGHTS / "classifier" / "model.safetensors"), load_classifier2(WEIGHTS / "classifier2"))


def test_shipped_and_documented() -> None:
    config = json.loads((WEIGHTS / "classifier2" / "config.json").read_text())
    assert config["command"].startswith("diffatlas train digits --stage classifier2")
    assert config["hardware"] and config["train_seconds"] > 0 and config["test_images"] == 10_000
    assert config["architecture"] == "LeNetClassifier" and config["dtype"] == "float16"
    shipped = json.loads((WEIGHTS / "classifier" / "config.json").read_text())
    assert config["train"]["seed"] != shipped["train"]["seed"]  # independent: another seed ...
    assert config["architecture"] != shipped["architecture"]  # ... and another network
    assert (WEIGHTS / "classifier2" / "model.safetensors").stat().st_size < 512 * 1024
    readme = (WEIGHTS / "README.md").read_text()
    assert "classifier2" in readme and f"{100 * config['test_accuracy']:.2f}%" in readme


def test_accuracy_on_the_test_slice_holds_the_documented_number(test_slice, judges) -> None:
    images, labels = test_slice
    _, independent = judges
    documented = json.loads((WEIGHTS / "classifier2" / "config.json").read_text())["test_accuracy"]
    measured = float((classify(independent, images).argmax(1) == labels).float().mean())
    assert measured >= documented - MARGIN, f"{measured:.3f} on 500 MNIST test digits, documented {documented}"


def test_the_two_judges_agree_on_real_test_digits(test_slice, judges) -> None:
    images, _ = test_slice
    shipped, independent = judges
    first, second = classify(shipped, images), classify(independent, images)  # (500, 10) each
    same = first.argmax(1) == second.argmax(1)
    assert float(same.float().mean()) >= 0.97  # measured 0.984
    # Where they disagree, at least one of them is unsure or wrong about a digit that is really there:
    # they never both read a different digit with confidence >= 0.9.
    both_sure = (first.max(1).values >= 0.9) & (second.max(1).values >= 0.9)
    assert not bool((both_sure & ~same).any())


def test_the_independent_judge_is_another_network(judges) -> None:
    shipped, independent = judges
    assert isinstance(independent, LeNetClassifier)
    shipped_shapes = sorted(tuple(p.shape) for p in shipped.parameters())
    independent_shapes = sorted(tuple(p.shape) for p in independent.parameters())
    assert shipped_shapes != independent_shapes


def test_augmentation_keeps_shape_and_identity() -> None:
    images = torch.rand(4, 1, 28, 28)
    still = Classifier2Config(rotate_degrees=0.0, scale=0.0, shift_pixels=0.0)
    assert torch.allclose(random_affine(images, still, torch.Generator().manual_seed(0)), images, atol=1e-5)
    moved = random_affine(images, Classifier2Config(), torch.Generator().manual_seed(0))
    assert moved.shape == images.shape and not torch.allclose(moved, images)
