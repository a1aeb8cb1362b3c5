"""Small chapter manifests (experiments, training, faithfulness) with real image files, for render tests.

Each has the shape the bake module of its kind writes (generator/bake/<kind>.py), with flat-colour stills and
sprite sheets in place of model output, so the render stage can be tested without torch. Shared by tests/render
and tests/browser (the latter loads it by path).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Callable

from PIL import Image

PROVENANCE = {"spec_hash": "s", "cache_key": "c", "versions": {}}


def asset(generated: Path, image: Image.Image, ext: str = "png") -> dict:
    """Store ``image`` under generated/assets like the bake stage (content-addressed); its image entry."""
    buffer = io.BytesIO()
    image.save(buffer, "WEBP" if ext == "webp" else "PNG", **({"lossless": True} if ext == "webp" else {}))
    name = f"assets/{hashlib.sha256(buffer.getvalue()).hexdigest()[:16]}.{ext}"
    (generated / "assets").mkdir(parents=True, exist_ok=True)
    (generated / name).write_bytes(buffer.getvalue())
    return {"src": name, "width": image.width, "height": image.height}


def sprite(generated: Path, count: int, size: int = 16) -> dict:
    """A one-row sprite sheet of ``count`` grey frames."""
    sheet = asset(generated, Image.new("RGB", (size * count, size), (90, 90, 90)), "webp")
    return {"src": sheet["src"], "frame_width": size, "frame_height": size, "columns": count, "count": count}


def trajectory(generated: Path, steps: int) -> dict:
    """A course run's trajectory entry: x_t and predicted x0 sprites of steps + 1 frames."""
    entry = sprite(generated, steps + 1)
    return {"start_index": 0, "steps": steps, "timesteps": [900 - 100 * i for i in range(steps)], "noisy": entry, "predicted": entry}


def text_asset(generated: Path, text: str) -> dict:
    """A stored caption file (content-addressed, like the bake stage's)."""
    data = text.encode()
    name = f"assets/{hashlib.sha256(data).hexdigest()[:16]}.txt"
    (generated / "assets").mkdir(parents=True, exist_ok=True)
    (generated / name).write_bytes(data)
    return {"src": name}


def downloads(generated: Path, name: str, animated: bool = False) -> dict:
    """A figure's slide files: a caption naming it, a PNG, and a GIF and MP4 (any bytes) when ``animated``."""
    entry = {"name": name, "caption": text_asset(generated, f"{name}\n\nWhat it shows.\n"),
             "png": asset(generated, Image.new("RGB", (64, 32), (250, 250, 250)))}
    if animated:
        entry["gif"] = asset(generated, Image.new("RGB", (8, 8), (1, 2, 3)))  # a PNG stands in for the GIF's bytes
        entry["mp4"] = text_asset(generated, f"mp4 of {name}")
    return entry


def judgement(asked: str, agrees: bool) -> dict:
    """A verdict's words (what a seed pick stores for every view of every seed)."""
    return {"judge": "shapes", "asked": asked, "agrees": agrees,
            "claims": [{"kind": "object", "asked": asked, "found": asked if agrees else "nothing", "correct": agrees}]}


def pick(generated: Path, prompts: list[str], passed: list[bool]) -> dict:
    """A seed pick over seeds 0..n-1 whose views passed as ``passed`` says."""
    seeds = [{"seed": seed, "passed": ok, "score": 1.0 if ok else 0.5,
              "image": asset(generated, Image.new("RGB", (32, 32), (10 * seed, 0, 0))),
              "views": [{"view": view, "prompt": prompt, "judgement": judgement(prompt, ok)}
                        for view, prompt in zip(("upright", "turned 180°"), prompts)]}
             for seed, ok in enumerate(passed)]
    return {"rule": "first-pass" if any(passed) else "best", "tried": len(passed), "passed": sum(passed),
            "seeds": seeds}


def experiments_manifest(generated: Path) -> dict:
    """An experiments chapter: one SDEdit (two runs), one inpainting, one anagram (3 seeds, the second passed), one
    hybrid (2 seeds, none passed), with their slide files."""
    img = lambda colour: asset(generated, Image.new("RGB", (32, 32), colour))  # noqa: E731
    traj = trajectory(generated, 3)
    return {
        "schema": 1, "kind": "experiments", "id": "course", "title": "Course fixture",
        "model": {"id": "testing:tiny-if", "weight_hash": "w", "prediction_type": "epsilon", "pixel_space": True},
        "settings": {"scheduler": "ddim", "width": 32, "height": 32},
        "provenance": PROVENANCE,
        "inputs": {"scene": img((200, 0, 0))},
        "sdedit": [{"id": "scene", "image": "scene", "prompt": "a photo", "steps": 10, "guidance": 3.0, "runs": [
            {"start_index": i, "timestep": 900 - 100 * i, "image": img((0, 20 * i, 200)), "trajectory": traj} for i in (1, 5)]}],
        "inpaint": [{"id": "box", "image": "scene", "prompt": "a square", "steps": 10, "guidance": 3.0,
                     "mask": img((255, 255, 255)), "result": img((0, 200, 0)), "trajectory": traj}],
        "anagrams": [{"id": "a", "prompts": ["up", "down"], "steps": 3, "guidance": 3.0, "warning": None,
                      "result": img((0, 0, 200)), "trajectory": traj, "seed": 1,
                      "pick": pick(generated, ["up", "down"], [False, True, True]),
                      "downloads": downloads(generated, "course-course-anagram-a", animated=True)}],
        "hybrids": [{"id": "h", "prompts": ["far", "near"], "steps": 3, "guidance": 3.0, "warning": None,
                     "kernel_size": 33, "sigma": 2.0, "result": img((200, 200, 0)), "trajectory": traj, "seed": 0,
                     "pick": pick(generated, ["far", "near"], [False, False]),
                     "downloads": downloads(generated, "course-course-hybrid-h", animated=True)}],
    }


def training_manifest(generated: Path) -> dict:
    """A training chapter with only the time-conditioned model shipped: test digits, forward noising, its epochs."""
    still = lambda shade, count=3: {**asset(generated, Image.new("RGB", (90 * count, 90), (shade,) * 3)),  # noqa: E731
                                    "columns": count, "count": count}
    return {
        "schema": 1, "kind": "training", "id": "digits", "title": "Training fixture",
        "settings": {"steps": 4, "frames": 3, "seed": 0, "scheduler": "ddpm", "sigmas": [0.0, 0.5], "denoiser_sigma": 0.5,
                     "samples_per_digit": 4, "time_samples": 3, "guidances": [0, 5], "guidance_samples": 1},
        "provenance": PROVENANCE,
        "models": {"time": {"stage": "time", "hidden": 4, "epochs_completed": 2, "snapshot_epochs": [1, 2],
                            "command": "diffatlas train digits --stage time", "hardware": "test"}},
        "missing": {"class": "diffatlas train digits --stage class", "denoiser": "diffatlas train digits --stage denoiser"},
        "losses": {"time": {"step_losses": [0.9, 0.5, 0.3, 0.2], "epoch_losses": [0.7, 0.25], "steps_per_epoch": 2,
                            "batch_size": 8}},
        "quality": None,
        "jumps": [],
        "test_digits": {"source": "mnist-test", "labels": [0, 1, 2], "image": still(255),
                        "attribution": "MNIST database of handwritten digits by Yann LeCun, Corinna Cortes and "
                                       "Christopher J.C. Burges, CC BY-SA 3.0"},
        "forward": {"levels": [{"sigma": sigma, "image": still(int(255 - 200 * sigma))} for sigma in (0.0, 0.5)],
                    "downloads": downloads(generated, "training-digits-forward")},
        "losses_downloads": downloads(generated, "training-digits-losses"),
        "time": {"columns": 3, "samples": 3, "labels": None, "guidance": 1.0, "epochs": [
            {"epoch": epoch, "frame_steps": [0, 2, 4], "timesteps": [299.0, 149.0], "sprite": sprite(generated, 3, 28),
             "final": still(40 * epoch)} for epoch in (1, 2)],
            "downloads": downloads(generated, "training-digits-epochs-time", animated=True)},
    }


def faithfulness_manifest(generated: Path) -> dict:
    """A measured faithfulness chapter: fidelity, DAAM's mIoU at two taus and one best and one worst example."""
    img = lambda colour: asset(generated, Image.new("RGB", (32, 32), colour))  # noqa: E731

    def example(iou: float, colour: tuple[int, int, int]) -> dict:
        return {"caption": "a red circle", "group": "one_object", "noun": "circle", "colour": "red", "iou": iou,
                "sample": 0, "image": img(colour), "heat": img((colour[0], 0, 0)), "truth": img((255, 255, 255))}

    return {
        "schema": 1, "kind": "faithfulness", "id": "faith", "title": "Faithful?",
        "report": "reports/eval.json", "command": "diffatlas eval shapes --n 2 --steps 5 --guidance 3 --seed 0",
        "provenance": PROVENANCE, "measured": True,
        "settings": {"n": 2, "sampler": "ddim", "steps": 5, "guidance": 3.0, "seed": 0, "trained_steps": 100,
                     "weight_hash": "abcdef0123456789"},
        "fidelity": {"groups": {"one_object": 0.9, "two_object": None}, "targets": {"one_object": 0.9, "two_object": 0.75},
                     "met": None, "images": 2, "by_attribute": {"one_object": {"colour": 1.0, "shape": 0.8}}},
        "daam": {"nouns": 2, "images": 2, "miou": {"0.20": 0.3, "0.40": 0.5}, "best_tau": 0.4, "best_miou": 0.5,
                 "baselines": {"whole_image": 0.1, "centre_box": 0.2}},
        "examples": {"tau": 0.4, "best": [example(0.75, (250, 10, 10))], "worst": [example(0.25, (10, 10, 250))]},
    }


MANIFESTS: dict[str, Callable[[Path], dict]] = {
    "experiments": experiments_manifest, "training": training_manifest, "faithfulness": faithfulness_manifest}


def write_chapter(generated: Path, kind: str, manifest: dict | None = None) -> Path:
    """Write a chapter manifest of ``kind`` (the fixture one unless given) where the bake stage puts it; its path."""
    manifest = MANIFESTS[kind](generated) if manifest is None else manifest
    path = generated / kind / f"{manifest['id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    return path
