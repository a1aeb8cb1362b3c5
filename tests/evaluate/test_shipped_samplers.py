"""The shipped models through every scheduler, judged: each sampler must give the model's quality.

The shapes model's default was DDIM until it drew nonsense (6.7% of single-object attributes right in the issue's
measurement: clipped x0 with an unclipped noise estimate); these tests are what would have caught it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generator.evaluate.digits_judge import read_digit
from generator.evaluate.shapes_checker import score_scene
from generator.evaluate.shapes_report import held_out_scenes
from generator.models import load_model
from generator.models.schedulers import SCHEDULERS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def shapes(one_thread):
    return load_model("embedded:shapes", device="cpu")


@pytest.fixture(scope="module")
def single_object_scenes():
    return [scene for group, scene in held_out_scenes(6, seed=2024) if group == "one_object"]


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_shapes_model_draws_single_objects_with_every_scheduler(shapes, single_object_scenes, scheduler):
    images = shapes.generate([s.caption for s in single_object_scenes], seed=7, scheduler=scheduler)  # recorded steps
    scores = [score_scene(scene, np.asarray(image)) for scene, image in zip(single_object_scenes, images)]
    right = sum(a.correct for s in scores for a in s.attributes) / sum(len(s.attributes) for s in scores)
    assert right >= 0.9, f"{scheduler}: {right:.0%} of single-object attributes right"


@pytest.fixture(scope="module")
def shapes_latent(one_thread):
    return load_model("embedded:shapes-latent", device="cpu", dtype="fp32")


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_latent_shapes_model_draws_single_objects_with_every_scheduler(shapes_latent, single_object_scenes, scheduler):
    """The Stable Diffusion folder through the adapter every SD folder gets, at its recorded guidance (3) and 25
    steps, its recorded count; LMS, a multistep method that extrapolates from past slopes, gets 50 (its sweep cells
    at guidance 5 score 0.66 at 25 steps and 0.91 at 50; at 50 steps and guidance 5 these captions got 81% of
    attributes, at guidance 3 at least 90%). A mis-set scheduler scores near 0."""
    captions = [s.caption for s in single_object_scenes]
    steps = 50 if scheduler == "lms" else 25
    images = shapes_latent.generate(captions, seed=7, steps=steps, scheduler=scheduler, width=128, height=128)
    scores = [score_scene(scene, np.asarray(image)) for scene, image in zip(single_object_scenes, images)]
    right = sum(a.correct for s in scores for a in s.attributes) / sum(len(s.attributes) for s in scores)
    assert right >= 0.9, f"{scheduler}: {right:.0%} of single-object attributes right"


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_digits_model_draws_the_asked_digit_with_every_scheduler(one_thread, scheduler):
    adapter = load_model("embedded:digits", device="cpu")
    images = adapter.generate([str(d) for d in range(10)], seed=3, steps=50, scheduler=scheduler)
    read = [read_digit(np.asarray(image))[0] for image in images]
    assert sum(digit == wanted for wanted, digit in enumerate(read)) >= 9, f"{scheduler}: read {read}"
