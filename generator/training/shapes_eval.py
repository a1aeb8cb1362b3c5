"""Training stage (metrics): prompt fidelity of the "shapes" model, scored by the rule-based checker.

Held-out captions come from the world's stream under an evaluation seed that training never uses (the training
stream is seed 0). Each caption gets one image (DDIM + classifier-free guidance, seeded noise); the checker
scores every attribute the caption states. Results are split into one-object prompts ("a large red circle on the
left") and two-object prompts ("a red circle above a blue square", "a red circle and a red square"); the issue's
targets are >= 90% and >= 75% of attributes right.

Seam for DAAM faithfulness: ``generate_and_score`` returns every image with its scene and the checker's matched
blob masks, so the DAAM evaluation can trace the same generations and compare each noun's mask with
``SampleScore.score.matched[i].mask`` (and with the ground-truth-free baselines) without re-running anything.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from generator.progress import ProgressCallback, no_progress
from generator.training.shapes_checker import SceneScore, score_scene
from generator.training.shapes_model import ShapesParts, load_parts, tokenize
from generator.training.shapes_world import Scene, ShapesStream, from_model_range

TARGETS = {"one_object": 0.90, "two_object": 0.75}
GROUP_OF_LAYOUT = {"single": "one_object", "pair": "two_object", "relation": "two_object"}


@dataclass(frozen=True)
class SampleScore:
    """One generated image, the scene its caption came from, and the checker's verdict."""

    scene: Scene
    group: str
    image: np.ndarray  # (H, W, 3) uint8
    score: SceneScore


@torch.no_grad()
def generate(parts: ShapesParts, captions: list[str], steps: int = 25, guidance: float = 3.0, seed: int = 0,
             device: str = "cpu") -> np.ndarray:
    """(B, H, W, 3) uint8 images for ``captions``: DDIM (eta 0) with classifier-free guidance.

    A compact sampler for evaluation; the site uses ``generator.sampling`` through the model adapter.
    """
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(parts.scheduler.config)
    scheduler.set_timesteps(steps)
    unet, text_encoder = parts.unet.to(device), parts.text_encoder.to(device)
    ids = tokenize(parts.tokenizer, list(captions) + [""] * len(captions)).to(device)
    hidden = text_encoder(ids).last_hidden_state.to(unet.dtype)  # (2B, tokens, dim): conditional, then empty
    resolution = unet.config.sample_size
    noise = torch.randn((len(captions), 3, resolution, resolution), generator=torch.Generator().manual_seed(seed))
    sample = noise.to(device=device, dtype=unet.dtype)
    for t in scheduler.timesteps:
        both = unet(torch.cat([sample, sample]), t, encoder_hidden_states=hidden).sample
        cond, uncond = both.chunk(2)
        eps = uncond + guidance * (cond - uncond)  # Ho & Salimans 2022, Eq. 6
        sample = scheduler.step(eps, t, sample).prev_sample
    return from_model_range(sample.float().clamp(-1, 1).cpu().numpy())


def held_out_scenes(count_per_group: int, seed: int) -> list[tuple[str, Scene]]:
    """``count_per_group`` one-object and two-object scenes from the evaluation stream, as (group, scene)."""
    stream = ShapesStream(seed=seed)
    wanted = {"one_object": count_per_group, "two_object": count_per_group}
    chosen: list[tuple[str, Scene]] = []
    index = 0
    while any(wanted.values()):
        scene = stream.scene(index)
        index += 1
        group = GROUP_OF_LAYOUT.get(scene.layout)
        if group is not None and wanted[group] > 0:
            wanted[group] -= 1
            chosen.append((group, scene))
    return chosen


def generate_and_score(parts: ShapesParts, n: int = 200, steps: int = 25, guidance: float = 3.0, seed: int = 1234,
                       batch: int = 25, device: str = "cpu", progress: ProgressCallback = no_progress) -> list[SampleScore]:
    """Generate ``n`` images (half one-object, half two-object captions) and score each."""
    scenes = held_out_scenes(max(1, n // 2), seed)
    results: list[SampleScore] = []
    progress(0, len(scenes), "generating")
    for start in range(0, len(scenes), batch):
        chunk = scenes[start : start + batch]
        images = generate(parts, [s.caption for _, s in chunk], steps, guidance, seed=seed + start, device=device)
        for (group, scene), image in zip(chunk, images):
            results.append(SampleScore(scene, group, image, score_scene(scene, image)))
        progress(len(results), len(scenes), "generating")
    return results


def summarize(results: list[SampleScore]) -> dict[str, Any]:
    """Per-group and per-attribute shares of attributes right, plus every sample's verdict."""
    right: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    by_kind: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    samples = []
    for result in results:
        for attribute in result.score.attributes:
            right[result.group] += attribute.correct
            total[result.group] += 1
            counts = by_kind[result.group][attribute.kind]
            counts[0] += attribute.correct
            counts[1] += 1
        samples.append({
            "caption": result.scene.caption,
            "group": result.group,
            "fraction": round(result.score.fraction, 4),
            "wrong": [a.claim for a in result.score.attributes if not a.correct],
        })
    summary = {group: round(right[group] / total[group], 4) if total[group] else None for group in TARGETS}
    return {
        "summary": {
            **summary,
            "targets": TARGETS,
            "met": all(summary[g] is not None and summary[g] >= TARGETS[g] for g in TARGETS),
            "images": len(results),
        },
        "by_attribute": {
            group: {kind: round(c[0] / c[1], 4) for kind, c in sorted(kinds.items())} for group, kinds in sorted(by_kind.items())
        },
        "samples": samples,
    }


def evaluate_fidelity(weights: Path, n: int = 200, device: str = "cpu", steps: int = 25, guidance: float = 3.0,
                      seed: int = 1234, progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """Load the model in ``weights``, generate and score ``n`` images, and return the JSON-ready report."""
    parts = load_parts(weights)
    results = generate_and_score(parts, n=n, steps=steps, guidance=guidance, seed=seed, device=device, progress=progress)
    report = summarize(results)
    training = weights / "training.json"
    trained_steps = None
    if training.exists():
        import json

        trained_steps = json.loads(training.read_text()).get("steps")
    report["settings"] = {"n": n, "sampler": "ddim", "steps": steps, "guidance": guidance, "seed": seed,
                          "trained_steps": trained_steps}
    report["daam"] = None  # filled by the DAAM faithfulness evaluation (mIoU vs checker masks) once it exists
    return report
