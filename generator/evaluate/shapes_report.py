"""Evaluate stage: how good the "shapes" model is, measured against the world's own truth.

1. Prompt fidelity: held-out captions come from the world's stream under an evaluation seed that training never
   uses (training reads seed 0; the caption space is small, so a caption's words may still have been seen,
   but never this scene). Each caption gets one image from the model (our sampling loop through the
   ModelAdapter: the model's sampler or ``--scheduler``, with classifier-free guidance); the rule-based checker
   scores every attribute the caption states. Split into one-object prompts ("a large red circle on the left") and two-object prompts ("a red
   circle above a blue square", "a red circle and a red square"); the targets are >= 90% and >= 75%.
2. DAAM faithfulness, on the same generations: for every noun whose object the checker found (right colour and
   shape), the IoU between the noun's DAAM mask (Tang et al. 2023, Eq. 7, at several tau) and the checker's blob
   mask; mIoU per tau, the best tau, and trivial baselines (whole image; centre box) so the number means
   something. The DAAM paper needed human annotations for this; here the world provides them.
3. Examples: the nouns with the highest and the lowest IoU at the best tau, each with the generated image, the
   noun's normalized heat map and the checker's mask as tiny base64 PNGs inside the report (the site's page
   "How faithful is DAAM?" shows them; generator/bake/chapters/faithfulness.py).
"""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from generator.builtin.shapes.world import PLURALS, Scene, ShapesStream
from generator.evaluate.daam_identity import trained_grounding
from generator.evaluate.rates import claim_rates
from generator.evaluate.shapes_checker import SceneScore, score_scene
from generator.evaluate.shapes_judge import Claim, judge_scene
from generator.progress import ProgressCallback, no_progress

TARGETS = {"one_object": 0.90, "two_object": 0.75}
# what a cell's score averages, (group, rate) -> the shipped model's target for it
CLAIM_TARGETS: dict[tuple[str, str], float] = {
    ("one_object", "scene_right"): 0.95,
    ("two_object", "binding"): 0.85,
    ("two_object", "relation"): 0.80,
}
GROUP_OF_LAYOUT = {"single": "one_object", "pair": "two_object", "relation": "two_object"}
TAUS: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6)
EXAMPLES = 6  # best and worst noun entries kept in the report


def tau_key(tau: float) -> str:
    """How a tau names its entry in the report: 0.4 -> "0.40"."""
    return f"{tau:.2f}"


@dataclass(frozen=True)
class NounScore:
    """One noun whose object the checker found: its DAAM mask's IoU per tau, the baselines, and both masks."""

    noun: str
    colour: str  # the object's colour: tells two nouns of one caption apart ("a red square and a blue square")
    ious: dict[str, float]  # tau_key(tau) -> IoU of the thresholded map with the truth
    baseline_whole: float  # IoU of the whole image with the truth
    baseline_centre: float  # IoU of the centre box with the truth
    heat: np.ndarray  # (H, W) uint8: the min-max normalized map, 255 = its maximum
    truth: np.ndarray  # (H, W) bool: the checker's blob mask of the object

    def to_json(self) -> dict[str, Any]:
        """The numbers (not the masks), as each sample of the report lists them."""
        return {"noun": self.noun, "colour": self.colour, "iou": dict(self.ious), "baseline_whole": self.baseline_whole,
                "baseline_centre": self.baseline_centre}


@dataclass(frozen=True)
class SampleScore:
    """One generated image, the scene its caption came from, the checker's verdict and DAAM IoUs per tau."""

    scene: Scene
    group: str
    image: np.ndarray  # (H, W, 3) uint8
    score: SceneScore
    nouns: tuple[NounScore, ...] = field(default_factory=tuple)  # one per noun with a found object
    claims: tuple[Claim, ...] = field(default_factory=tuple)  # the judge's verdict, claim by claim


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


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    union = (a | b).sum().item()
    return 1.0 if union == 0 else (a & b).sum().item() / union


def centre_box(height: int, width: int) -> torch.Tensor:
    """Baseline mask: the central box covering half the height and half the width."""
    box = torch.zeros((height, width), dtype=torch.bool)
    box[height // 4 : height - height // 4, width // 4 : width - width // 4] = True
    return box


def _noun_scores(tc: Any, image_index: int, scene: Scene, score: SceneScore, taus: Sequence[float]) -> list[NounScore]:
    """IoU of each found object's noun map (DAAM Eq. 7 at every tau) with the checker's blob mask."""
    from generator.daam.aggregate import threshold

    results = []
    seen: dict[str, int] = defaultdict(int)
    for obj, blob in zip(scene.objects, score.matched):
        noun = PLURALS[obj.shape] if scene.layout == "count" else obj.shape
        occurrence = 0 if scene.layout == "count" else seen[noun]
        seen[noun] += 1
        if blob is None or blob.colour != obj.colour or blob.shape != obj.shape:
            continue  # no ground truth for an object the model did not draw
        truth = torch.from_numpy(blob.mask)
        if scene.layout == "count":  # a plural noun covers every object of its kind
            truth = torch.from_numpy(np.any([b.mask for b in score.matched if b is not None], axis=0))
        heat = tc.word_map(noun, occurrence, image_index)  # min-max normalized, as the DAAM authors threshold it
        results.append(NounScore(
            noun=noun,
            colour=obj.colour,
            ious={tau_key(tau): round(iou(threshold(heat, tau), truth), 4) for tau in taus},
            baseline_whole=round(iou(torch.ones_like(truth), truth), 4),
            baseline_centre=round(iou(centre_box(*truth.shape), truth), 4),
            heat=(heat.clamp(0, 1) * 255).round().to(torch.uint8).numpy(),
            truth=truth.numpy(),
        ))
        if scene.layout == "count":
            break
    return results


def generate_and_score(adapter: Any, n: int = 200, steps: int = 25, guidance: float = 3.0, seed: int = 1234,
                       scheduler: str | None = None, batch: int = 25, daam: bool = True, taus: Sequence[float] = TAUS,
                       progress: ProgressCallback = no_progress) -> list[SampleScore]:
    """Generate ``n`` images (half one-object, half two-object captions), score each, and trace DAAM maps."""
    from generator.daam import trace

    scenes = held_out_scenes(max(1, n // 2), seed)
    results: list[SampleScore] = []
    progress(0, len(scenes), "generating")
    for start in range(0, len(scenes), batch):
        chunk = scenes[start : start + batch]
        captions = [scene.caption for _, scene in chunk]
        if daam:
            with trace(adapter, timestep_bins=1) as tc:
                images = adapter.generate(captions, seed=seed + start, steps=steps, guidance=guidance, scheduler=scheduler)
        else:
            tc = None
            images = adapter.generate(captions, seed=seed + start, steps=steps, guidance=guidance, scheduler=scheduler)
        for index, ((group, scene), image) in enumerate(zip(chunk, images)):
            pixels = np.asarray(image.convert("RGB"))
            score = score_scene(scene, pixels)
            nouns = tuple(_noun_scores(tc, index, scene, score, taus)) if tc is not None else ()
            results.append(SampleScore(scene, group, pixels, score, nouns, judge_scene(scene, pixels)))
        progress(len(results), len(scenes), "generating")
    return results


def summarize_fidelity(results: list[SampleScore]) -> dict[str, Any]:
    """Per-group and per-attribute shares of attributes right, plus every sample's verdict."""
    right: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    by_kind: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    samples = []
    for result in results:
        for attribute in result.score.attributes:
            right[result.group] += int(bool(attribute.correct))
            total[result.group] += 1
            counts = by_kind[result.group][attribute.kind]
            counts[0] += int(bool(attribute.correct))
            counts[1] += 1
        samples.append({
            "caption": result.scene.caption,
            "group": result.group,
            "right": int(sum(bool(a.correct) for a in result.score.attributes)),
            "total": len(result.score.attributes),
            "wrong": [a.claim for a in result.score.attributes if not a.correct],
            "claims": [claim.to_json() for claim in result.claims],
            "daam": [noun.to_json() for noun in result.nouns],
        })
    summary = {group: round(right[group] / total[group], 4) if total[group] else None for group in TARGETS}
    claims = {group: claim_rates([r.claims for r in results if r.group == group]) for group in TARGETS}
    return {
        "summary": {
            **summary,
            "targets": TARGETS,
            "met": all(summary[g] is not None and summary[g] >= TARGETS[g] for g in TARGETS),
            "images": len(results),
        },
        "claims": claims,
        "claim_targets": {f"{group}.{rate}": target for (group, rate), target in CLAIM_TARGETS.items()},
        "claims_met": all((claims[group].get(rate) or {}).get("rate", 0.0) >= target
                          for (group, rate), target in CLAIM_TARGETS.items()),
        "by_attribute": {
            group: {kind: round(c[0] / c[1], 4) for kind, c in sorted(kinds.items())} for group, kinds in sorted(by_kind.items())
        },
        "samples": samples,
    }


def summarize_daam(results: list[SampleScore], taus: Sequence[float] = TAUS, examples: int = EXAMPLES) -> dict[str, Any]:
    """mIoU of noun masks against checker masks per tau, the best tau, the trivial baselines and examples."""
    nouns = [entry for result in results for entry in result.nouns]
    if not nouns:
        return {"nouns": 0, "miou": {}, "best_tau": None, "best_miou": None, "baselines": {},
                "examples": {"tau": None, "best": [], "worst": []}}
    miou = {tau_key(tau): round(float(np.mean([e.ious[tau_key(tau)] for e in nouns])), 4) for tau in taus}
    best = max(miou, key=lambda k: miou[k])
    return {
        "nouns": len(nouns),
        "images": sum(1 for r in results if r.nouns),
        "miou": miou,
        "best_tau": float(best),
        "best_miou": miou[best],
        "baselines": {
            "whole_image": round(float(np.mean([e.baseline_whole for e in nouns])), 4),
            "centre_box": round(float(np.mean([e.baseline_centre for e in nouns])), 4),
        },
        "examples": pick_examples(results, float(best), examples),
    }


def png_base64(pixels: np.ndarray) -> str:
    """A lossless PNG of (H, W, 3) uint8 RGB, (H, W) uint8 gray or (H, W) bool (1-bit), base64-encoded."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", compress_level=9)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def pick_examples(results: list[SampleScore], tau: float, k: int = EXAMPLES) -> dict[str, Any]:
    """The ``k`` noun entries with the highest IoU at ``tau`` and the ``k`` lowest among the rest.

    Best come highest first, worst lowest first; ties go to the earlier sample, then the earlier noun, so the
    choice is deterministic. The two lists never share an entry (with fewer than 2k nouns, worst gets fewer).
    Each entry holds the caption, the noun and its object's colour, its IoU, ``sample`` (the index into the
    report's samples) and three base64 PNGs: the generated image, the noun's heat map (8-bit gray) and the
    checker's mask (1-bit).
    """
    key = tau_key(tau)
    entries = [(noun.ious[key], sample, position) for sample, result in enumerate(results)
               for position, noun in enumerate(result.nouns)]
    best = sorted(entries, key=lambda e: (-e[0], e[1], e[2]))[:k]
    chosen = {(sample, position) for _, sample, position in best}
    worst = sorted((e for e in entries if (e[1], e[2]) not in chosen), key=lambda e: e[:3])[:k]

    def example(value: float, sample: int, position: int) -> dict[str, Any]:
        result, noun = results[sample], results[sample].nouns[position]
        return {"caption": result.scene.caption, "group": result.group, "noun": noun.noun, "colour": noun.colour,
                "iou": value, "sample": sample, "image": png_base64(result.image), "heat": png_base64(noun.heat),
                "truth": png_base64(noun.truth.astype(bool))}

    return {"tau": float(key), "best": [example(*e) for e in best], "worst": [example(*e) for e in worst]}


def evaluate(weights: Path, n: int = 200, device: str = "cpu", steps: int | None = None, guidance: float | None = None,
             seed: int = 1234, daam: bool = True, scheduler: str | None = None,
             progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """Load the model in ``weights``, generate and score ``n`` images, and return the JSON-ready report.

    ``scheduler``, ``steps`` and ``guidance`` default to the model's measured settings (its defaults.json),
    whose sweep table the report carries.
    """
    import json

    from generator.builtin.defaults import read_defaults

    adapter = shapes_world_model(weights, device)
    scheduler = scheduler or adapter.default_scheduler
    steps = steps or adapter.default_steps
    guidance = adapter.default_guidance if guidance is None else guidance
    adapter.make_scheduler(scheduler)  # an unknown name is a UserError before any work
    results = generate_and_score(adapter, n=n, steps=steps, guidance=guidance, seed=seed, daam=daam,
                                 scheduler=scheduler, progress=progress)
    report = summarize_fidelity(results)
    report["daam"] = summarize_daam(results) if daam else None
    measured = read_defaults(weights)
    report["sweep"] = None if measured is None or "sweep" not in measured else {  # unmeasured defaults: no table
        "chosen": {k: measured[k] for k in ("scheduler", "steps", "guidance")},
        "measured": measured["measured"], "rows": measured["sweep"]}
    training = weights / "training.json"
    trained = json.loads(training.read_text()) if training.exists() else {}
    trained = trained.get("unet", trained)  # a latent model's record has one entry per trained part
    model = trained.get("config", {}).get("model", {})
    text_encoder = getattr(adapter, "text_encoder", None) or adapter.pipeline.text_encoder
    report["settings"] = {"n": n, "sampler": scheduler, "steps": steps, "guidance": guidance,
                          "seed": seed, "trained_steps": trained.get("steps"), "weight_hash": adapter.weight_hash,
                          "text_encoder": text_encoder.config.model_type,  # "clip_text_model" or "t5"
                          "coordinates": bool(model.get("coordinates", False)),
                          "p2_gamma": trained.get("config", {}).get("p2_gamma"),
                          "prediction": adapter.prediction_type,  # "epsilon" or "v_prediction"
                          "noisy_share": trained.get("config", {}).get("noisy_share") or None,
                          "started_from_step": _earlier_steps(trained.get("started_from")),
                          "grounding": trained_grounding(weights)}
    return report


def shapes_world_model(weights: Path, device: str) -> Any:
    """The adapter of a model of the shapes world: the pixel model's folder, or a Stable Diffusion folder (the
    latent model), loaded as any SD folder is and judged by the checker."""
    from generator.models.registry import load_model
    from generator.models.shapes import ShapesAdapter

    if not (weights / "model_index.json").exists():
        return ShapesAdapter(weights, device=device)
    adapter = load_model(str(weights), device=device, dtype="fp32")
    adapter.judge = "shapes"
    return adapter


def _earlier_steps(origin: dict[str, Any] | None) -> int | None:
    """Steps of every run the weights grew from (``started_from`` chain in training.json); None when none. The pixel
    model records the step it started from (``step``), the latent model the earlier run's record (``steps``)."""
    total = None
    while origin:
        total = (total or 0) + int(origin["step"] if "step" in origin else origin["steps"])
        origin = origin.get("started_from")
    return total


def measured_section(report: dict[str, Any]) -> str:
    """The weights README's "## Measured" section, written from an eval report (so a re-export + eval renews it)."""
    s, summary, daam = report["settings"], report["summary"], report.get("daam")
    command = (f"diffatlas eval shapes --n {s['n']} --scheduler {s['sampler']} --steps {s['steps']} "
               f"--guidance {s['guidance']:g} --seed {s['seed']}")
    lines = [f"## Measured (`eval.json`: `{command}`)", ""]
    verdict = "met" if summary["met"] else "not met yet"
    earlier = f"{s['started_from_step']} + " if s.get("started_from_step") else ""
    lines.append(f"- Prompt fidelity after {earlier}{s['trained_steps']} steps: **{summary['one_object']:.1%}** of one-object and "
                 f"**{summary['two_object']:.1%}** of two-object attributes right (targets "
                 f"{TARGETS['one_object']:.0%} / {TARGETS['two_object']:.0%}: {verdict}).")
    for group, name in (("one_object", "one object"), ("two_object", "two objects")):
        parts = ", ".join(f"{kind} {value:.0%}" for kind, value in report["by_attribute"].get(group, {}).items())
        lines.append(f"  - {name}: {parts}")
    claims = report.get("claims")
    if claims:
        verdict = "met" if report.get("claims_met") else "not met yet"
        lines.append(f"- Judged claim by claim (targets {', '.join(f'{k} {v:.0%}' for k, v in report['claim_targets'].items())}: {verdict}):")
        for group, name in (("one_object", "one object"), ("two_object", "two objects")):
            parts = ", ".join(f"{kind.replace('_', ' ')} {r['rate']:.1%} [{r['low']:.1%}, {r['high']:.1%}] (n={r['n']})"
                              for kind, r in claims.get(group, {}).items() if r)
            lines.append(f"  - {name}: {parts}")
    if daam and daam.get("best_miou") is not None:
        lines.append(f"- DAAM: mIoU **{daam['best_miou']:.3f}** at tau {daam['best_tau']:g} over {daam['nouns']} nouns "
                     f"(whole image {daam['baselines']['whole_image']:.3f}, centre box {daam['baselines']['centre_box']:.3f}).")
    return "\n".join(lines) + "\n"


def replace_section(markdown: str, section: str) -> str:
    """``markdown`` with its section of the same "## " heading replaced by ``section`` (appended if absent)."""
    heading = section.split("(", 1)[0].strip()  # "## Measured"
    lines = markdown.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(heading)), None)
    if start is None:
        return markdown.rstrip("\n") + "\n\n" + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "".join(lines[:start]) + section + ("\n" if end < len(lines) else "") + "".join(lines[end:])
