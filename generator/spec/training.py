"""Spec stage: the ``training:`` section of a prompt file (the MNIST training chapter), validated in one place.

Parsed by ``generator.spec.prompt_set.load_prompt_set`` with ``generator.spec.fields.Fields``; every mistake is one
``FILE:LINE: message`` ``SpecError`` raised before any model loads. ``weights`` and ``data`` are folders relative
to the prompt file; the bake checks that they exist (and that ``data`` holds the MNIST test files) before any
work (generator/bake/preflight.py), and hashes the weights into its cache key (generator/bake/chapters/training.py).
See README.md, "Prompt file: training", for the format.

Nothing here reads MNIST: test digits come from ``data`` only when it is set (a folder with the standard
IDX files, as ``diffatlas train digits --data DIR`` takes; ``prompts/digits.yaml`` names the ten test digits
shipped in ``prompts/inputs/mnist-test-digits``); otherwise the chapter noises and denoises samples of the
class-conditioned model and says so, so a bake never depends on a dataset outside the repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generator.spec.fields import Fields

SECTION_KEYS = {"title", "weights", "data", "seed", "sigmas", "denoiser_sigma", "test_digits", "steps", "frames",
                "samples_per_digit", "time_samples", "guidances", "guidance_samples", "expect"}
JUDGED_STAGES = ("time", "class", "flow-time", "flow-class")  # sections whose sample grids the classifier judges
DEFAULT_SIGMAS = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class TrainingSpec:
    """The whole ``training:`` section, resolved (absolute folders, defaults filled in)."""

    title: str = "Training a diffusion model from scratch"
    weights: str | None = None  # None: the shipped generator/weights/digits
    data: str | None = None  # MNIST IDX folder for the test digits; None: class-model samples
    seed: int = 0
    sigmas: tuple[float, ...] = DEFAULT_SIGMAS  # forward noising and the denoiser's out-of-distribution sweep
    denoiser_sigma: float = 0.5  # the noise level the single-step denoiser was trained at
    test_digits: int = 5  # how many test digits to noise and denoise
    steps: int = 50  # DDPM sampling steps of every trajectory and sweep
    frames: int = 21  # frames per epoch animation (evenly spread over the steps, first and last included)
    samples_per_digit: int = 4  # class model: samples of each digit per epoch animation
    time_samples: int = 40  # time model: unconditional samples per epoch animation
    guidances: tuple[float, ...] = (0.0, 5.0, 10.0)
    guidance_samples: int = 2  # samples of each digit per guidance scale
    expect: tuple[tuple[str, str], ...] = ()  # (stage, reason): its final sample grid is expected to miss its target
    line: int = 0


def parse_training(f: Fields, data: Any) -> TrainingSpec:
    """The validated ``training:`` section."""
    root = ("training",)
    data, values = f.chapter(root, data, SECTION_KEYS)
    for name, kind in (("weights", "folder"), ("data", "mnist")):
        if data.get(name) is not None:
            values[name] = f.folder(root + (name,), data[name], name, kind)
    integers = {"seed": (0, None), "test_digits": (1, 10), "steps": (2, 300), "frames": (2, 301),
                "samples_per_digit": (1, 8), "time_samples": (1, 80), "guidance_samples": (1, 4)}
    for name, (low, high) in integers.items():
        if name in data:
            values[name] = f.number(root + (name,), data[name], name, integer=True, low=low, high=high)
    if "denoiser_sigma" in data:
        values["denoiser_sigma"] = f.number(root + ("denoiser_sigma",), data["denoiser_sigma"], "denoiser_sigma",
                                            integer=False, low=0, high=2, low_open=True)
    if "sigmas" in data:
        sigmas = f.numbers(root + ("sigmas",), data["sigmas"], "sigmas", integer=False, low=0, high=2)
        if len(sigmas) > 12:
            raise f.error(root + ("sigmas",), f"sigmas must list at most 12 noise levels (got {len(sigmas)})")
        values["sigmas"] = tuple(dict.fromkeys(sigmas))
    if "guidances" in data:
        guidances = f.numbers(root + ("guidances",), data["guidances"], "guidances", integer=False, low=0, high=30)
        if len(guidances) > 6:
            raise f.error(root + ("guidances",), f"guidances must list at most 6 scales (got {len(guidances)})")
        values["guidances"] = tuple(dict.fromkeys(guidances))
    if "expect" in data:
        expected = data["expect"]
        if not isinstance(expected, dict) or not expected or set(expected) - set(JUDGED_STAGES) or not all(
                isinstance(r, str) and r.strip() for r in expected.values()):
            raise f.error(root + ("expect",), "expect must map a stage (time, class, flow-time, flow-class) to the "
                                              "reason its final samples are expected to miss their target")
        values["expect"] = tuple(sorted((stage, reason.strip()) for stage, reason in expected.items()))
    spec = TrainingSpec(**values)
    if spec.frames > spec.steps + 1:
        raise f.error(root + ("frames",) if "frames" in data else root,
                      f"frames ({spec.frames}) must be at most steps + 1 ({spec.steps + 1})")
    return spec
