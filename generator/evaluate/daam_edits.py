"""Evaluate stage: attention against intervention (issue 19, item 3): does a word's map show where it acts?

From the same noise, a two-object caption is generated as written and with one word changed: the first
object's colour ("red" -> another colour neither object has), its shape, or the relation turned around
("above" -> "below"). Where the two images differ (per-pixel mean absolute RGB difference above CHANGE_THRESHOLD
of full scale) is where the word acted. The word's DAAM map in the original generation is compared with that
region: IoU of its tau mask and Spearman's rank correlation of the map with the change magnitude. Baseline: the
other object's noun map against the same region (a map of the caption that should not be where the edit acts).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from generator.daam.aggregate import threshold
from generator.builtin.shapes.world import COLOURS, SHAPES, Scene, ShapesStream
from generator.evaluate.daam_stats import mask_iou, mean_interval, paired_difference, rank_correlation
from generator.progress import ProgressCallback, no_progress

CHANGE_THRESHOLD = 0.1  # mean |RGB difference| over full scale; the world's colours differ by far more
EDIT_SEED = 7003
OPPOSITE = {"above": "below", "over": "under", "below": "above", "under": "over", "left": "right", "right": "left"}
EDIT_KINDS = ("colour", "shape", "relation")


def edit_caption(scene: Scene, kind: str) -> tuple[str, str, int] | None:
    """(edited caption, the word changed, its occurrence in the original) or None when the edit does not apply."""
    words = scene.caption.split()
    first, second = scene.objects[0], scene.objects[1]
    if kind == "colour":
        new = next(c for c in COLOURS if c not in (first.colour, second.colour))
        target = first.colour
    elif kind == "shape":
        new = next(s for s in SHAPES if s not in (first.shape, second.shape))
        target = first.shape
    else:
        if scene.relation is None:
            return None
        target = next((w for w in words if w in OPPOSITE), None)
        if target is None:
            return None
        new = OPPOSITE[target]
    position = words.index(target)  # the first object's words come first in every two-object template
    edited = words[:position] + [new] + words[position + 1 :]
    return " ".join(edited), target, 0


def change_map(original: np.ndarray, edited: np.ndarray) -> torch.Tensor:
    """(H, W) mean absolute RGB difference of two uint8 images, in [0, 1]."""
    difference = np.abs(original.astype(np.float32) - edited.astype(np.float32)).mean(axis=-1) / 255.0
    return torch.from_numpy(difference)


def compare(word_map: torch.Tensor, baseline_map: torch.Tensor, change: torch.Tensor, tau: float) -> dict[str, float] | None:
    """IoU and rank correlation of a word's map (and the baseline map) with where the image changed."""
    region = change > CHANGE_THRESHOLD
    if not region.any():
        return None  # the edit changed nothing visible: nothing to locate
    return {"iou": mask_iou(threshold(word_map, tau), region),
            "baseline_iou": mask_iou(threshold(baseline_map, tau), region),
            "rho": rank_correlation(word_map, change), "baseline_rho": rank_correlation(baseline_map, change),
            "changed_area": float(region.float().mean())}


def edit_scenes(n: int, seed: int = EDIT_SEED) -> list[Scene]:
    """``n`` two-object scenes (half "and", half relation captions) from a stream no other measurement reads."""
    stream, chosen, index, wanted = ShapesStream(seed=seed), [], 0, {"pair": n // 2, "relation": n - n // 2}
    while any(wanted.values()):
        scene = stream.scene(index)
        index += 1
        if wanted.get(scene.layout, 0) > 0:
            wanted[scene.layout] -= 1
            chosen.append(scene)
    return chosen


def measure_edits(adapter: Any, n: int = 24, tau: float = 0.5, seed: int = EDIT_SEED, steps: int | None = None,
                  guidance: float | None = None, batch: int = 12,
                  progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """Every applicable edit of ``n`` scenes: IoU and rho of the edited word's map with the change, and baselines."""
    from generator.daam import trace

    scenes = edit_scenes(n, seed)
    rows: dict[str, list[dict[str, float]]] = {kind: [] for kind in EDIT_KINDS}
    skipped: dict[str, int] = {kind: 0 for kind in EDIT_KINDS}
    for start in range(0, len(scenes), batch):
        chunk = scenes[start : start + batch]
        options = {"seed": seed + start, "steps": steps, "guidance": guidance}
        with trace(adapter, timestep_bins=1) as tc:
            originals = [np.asarray(i.convert("RGB")) for i in adapter.generate([s.caption for s in chunk], **options)]
        for kind in EDIT_KINDS:
            edits = [edit_caption(scene, kind) for scene in chunk]
            # the same batch size and seed give every row the same start noise as its original
            captions = [edit[0] if edit else scene.caption for scene, edit in zip(chunk, edits)]
            edited = [np.asarray(i.convert("RGB")) for i in adapter.generate(captions, **options)]
            for index, (scene, edit) in enumerate(zip(chunk, edits)):
                if edit is None:
                    continue
                other_noun = scene.objects[1].shape
                occurrence = 1 if scene.objects[0].shape == other_noun else 0
                result = compare(tc.word_map(edit[1], edit[2], index), tc.word_map(other_noun, occurrence, index),
                                 change_map(originals[index], edited[index]), tau)
                if result is None:
                    skipped[kind] += 1
                else:
                    rows[kind].append(result)
        progress(start + len(chunk), len(scenes), "editing")
    report = {}
    for kind, results in rows.items():
        column = lambda key: [r[key] for r in results]  # noqa: E731
        report[kind] = {
            "edits": len(results), "unchanged": skipped[kind],
            "iou": mean_interval(column("iou")), "baseline_iou": mean_interval(column("baseline_iou")),
            "iou_minus_baseline": paired_difference(column("iou"), column("baseline_iou")),
            "rho": mean_interval(column("rho")), "baseline_rho": mean_interval(column("baseline_rho")),
            "changed_area": mean_interval(column("changed_area")),
        }
    return {"tau": tau, "change_threshold": CHANGE_THRESHOLD, "captions": len(scenes), "by_edit": report,
            "baseline": "the other object's noun map against the same changed region"}
