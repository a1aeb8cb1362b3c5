"""Evaluate stage: ``diffatlas eval daam``: what DAAM's maps tell us, measured on the shapes world (issue 19).

1. Two caption sets from the world's stream under two seeds training never reads: calibration and test,
   disjoint by caption text (a caption drawn in both is dropped from test). Layouts are mixed so every analysis
   has material: one object, two objects ("and", a relation) and counts.
2. Each caption gets one image (the model's sampler, steps and guidance) traced with heads kept apart
   (``trace(keep="heads", padding=True)``); the checker finds the objects, the judge says whether binding held.
3. Nouns whose object was drawn right give (map summands, true mask) pairs for ``daam_faithfulness``; every
   caption gives its words' summed maps and token masses for ``daam_analyses``.

The faithfulness tau comes from calibration only; the analyses threshold at the summed map's calibrated tau
and pool both sets (they fit nothing to the truth).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Sequence

import numpy as np
import torch

from generator.builtin.shapes.world import COUNT_WORDS, PLURALS, Scene, ShapesStream
from generator.evaluate.daam_analyses import CaptionMaps, ObjectMaps, adjective_spread, entanglement, head_dependent, special_tokens
from generator.evaluate.daam_faithfulness import NounTruth, faithfulness, short_layer
from generator.evaluate.shapes_checker import score_scene
from generator.evaluate.shapes_judge import judge_scene
from generator.progress import ProgressCallback, no_progress

LAYOUT_SHARES = {"single": 0.2, "pair": 0.3, "relation": 0.3, "count": 0.2}
RELATION_WORDS = ("above", "over", "below", "under", "left", "right")
CALIBRATION_SEED, TEST_SEED = 7001, 7002  # training reads seed 0, ``eval shapes`` 1234 and its sweep 4321


def caption_sets(n: int, calibration_seed: int = CALIBRATION_SEED, test_seed: int = TEST_SEED) -> tuple[list[Scene], list[Scene]]:
    """``n`` calibration and ``n`` test scenes in LAYOUT_SHARES, no caption text in both sets."""
    calibration = _scenes(n, calibration_seed, excluded=set())
    test = _scenes(n, test_seed, excluded={scene.caption for scene in calibration})
    return calibration, test


def _scenes(n: int, seed: int, excluded: set[str]) -> list[Scene]:
    wanted = {layout: round(n * share) for layout, share in LAYOUT_SHARES.items()}
    wanted["single"] += n - sum(wanted.values())
    stream, chosen, seen, index = ShapesStream(seed=seed), [], set(excluded), 0
    while any(wanted.values()):
        scene = stream.scene(index)
        index += 1
        if wanted.get(scene.layout, 0) > 0 and scene.caption not in seen:
            wanted[scene.layout] -= 1
            seen.add(scene.caption)
            chosen.append(scene)
    return chosen


def _occurrences(scene: Scene) -> list[dict[str, tuple[str, int]]]:
    """Per object, the (word, occurrence) of its noun, colour and size (occurrence: count of that word before)."""
    seen: Counter[str] = Counter()
    words = []
    for obj in scene.objects[:1] if scene.layout == "count" else scene.objects:
        noun = PLURALS[obj.shape] if scene.layout == "count" else obj.shape
        entry = {}
        for role, word in (("size", obj.size if scene.size_stated else None), ("colour", obj.colour), ("noun", noun)):
            if word is not None:
                entry[role] = (word, seen[word])
                seen[word] += 1
        words.append(entry)
    return words


def _caption_maps(tc: Any, index: int, scene: Scene, pixels: np.ndarray) -> tuple[CaptionMaps, list[NounTruth]]:
    """One traced image: its words' maps and token masses, and (summands, truth) of each noun drawn right."""
    from generator.daam.aggregate import normalize
    from generator.daam.components import token_mass, word_components

    score, claims = score_scene(scene, pixels), judge_scene(scene, pixels)
    objects, truths = [], []
    for position, words in enumerate(_occurrences(scene)):
        obj, blob = scene.objects[position], score.matched[position]
        parts = word_components(tc, *words["noun"], image_index=index)
        truth = None
        if scene.layout == "count":
            found = [b.mask for b in score.matched if b is not None and (b.colour, b.shape) == (obj.colour, obj.shape)]
            truth = torch.from_numpy(np.any(found, axis=0)) if found else None
        elif blob is not None and (blob.colour, blob.shape) == (obj.colour, obj.shape):
            truth = torch.from_numpy(blob.mask)
        if truth is not None:
            truths.append(NounTruth(parts.maps, truth))
        modifiers = {role: tc.word_map(*words[role], image_index=index) for role in ("colour", "size") if role in words}
        objects.append(ObjectMaps(obj.shape, obj.colour, normalize(parts.maps.sum(dim=(0, 1))), modifiers, truth))
    words = tc.words(index)
    relation = next((w for w in words if w in RELATION_WORDS), None) if scene.layout == "relation" else None
    object_claims = [c for c in claims if c.kind == "object"]
    groups, mass = token_mass(tc, index)
    maps = CaptionMaps(
        caption=scene.caption, layout=scene.layout, objects=tuple(objects),
        relation=tc.word_map(relation, image_index=index) if relation else None,
        count=tc.word_map(COUNT_WORDS[len(scene.objects)], image_index=index) if scene.layout == "count" else None,
        binding_failed=(not all(c.correct for c in object_claims)) if len(scene.objects) == 2 and object_claims else None,
        token_mass=mass, token_kinds=tuple(p.special for p in tc.tokens(index))[: mass.shape[-1]],
    )
    return maps, truths


def trace_captions(adapter: Any, scenes: Sequence[Scene], *, bins: int, seed: int, steps: int, guidance: float,
                   scheduler: str | None, batch: int = 16, value_norm: bool = False,
                   progress: ProgressCallback = no_progress) -> tuple[list[CaptionMaps], list[NounTruth], dict[str, Any]]:
    """Generate and trace every scene (heads kept apart); its maps, its nouns' (summands, truth) and the groups."""
    from generator.daam import trace

    captions, nouns, layout = [], [], {}
    for start in range(0, len(scenes), batch):
        chunk = scenes[start : start + batch]
        with trace(adapter, timestep_bins=bins, keep="heads", padding=True, value_norm=value_norm) as tc:
            images = adapter.generate([s.caption for s in chunk], seed=seed + start, steps=steps, guidance=guidance,
                                      scheduler=scheduler)
        for index, (scene, image) in enumerate(zip(chunk, images)):
            maps, truths = _caption_maps(tc, index, scene, np.asarray(image.convert("RGB")))
            captions.append(maps)
            nouns.extend(truths)
        layout = {"groups": tuple(tc.record.accumulator.groups), "bin_timesteps": tc.bin_timesteps}
        progress(start + len(chunk), len(scenes), "tracing")
    return captions, nouns, layout


def measure(adapter: Any, n: int = 48, bins: int = 5, steps: int | None = None, guidance: float | None = None,
            scheduler: str | None = None, value_norm: bool = False, calibration_seed: int = CALIBRATION_SEED, test_seed: int = TEST_SEED,
            progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """The whole report: faithfulness by step range, layer and head, and the paper's analyses, JSON-ready."""
    started = time.perf_counter()
    scheduler = scheduler or adapter.default_scheduler
    steps = steps or adapter.default_steps
    guidance = adapter.default_guidance if guidance is None else guidance
    calibration, test = caption_sets(n, calibration_seed, test_seed)
    options = {"bins": bins, "steps": steps, "guidance": guidance, "scheduler": scheduler, "value_norm": value_norm}
    cal_maps, cal_nouns, layout = trace_captions(adapter, calibration, seed=calibration_seed, progress=progress, **options)
    test_maps, test_nouns, _ = trace_captions(adapter, test, seed=test_seed, progress=progress, **options)
    groups = layout["groups"]
    faithful = faithfulness(cal_nouns, test_nouns, groups, bins)
    tau = faithful["summed"]["tau"]
    pooled = cal_maps + test_maps
    label = lambda name: short_layer(name) if "." in name else name  # noqa: E731
    return {
        "settings": {"n_per_set": n, "bins": bins, "bin_timesteps": layout["bin_timesteps"], "steps": steps,
                     "guidance": guidance, "sampler": scheduler, "value_norm": value_norm, "model": adapter.id, "weight_hash": adapter.weight_hash,
                     "calibration_seed": calibration_seed, "test_seed": test_seed, "layout_shares": LAYOUT_SHARES},
        "sets": {"calibration": len(calibration), "test": len(test),
                 "shared_captions": len({s.caption for s in calibration} & {s.caption for s in test})},
        "layers": [{"name": short_layer(g.layer or ""), "location": g.location, "resolution": f"{g.height}x{g.width}",
                    "head": g.head} for g in groups],
        "faithfulness": faithful,
        "analyses": {"captions": len(pooled), "pooled": "calibration + test (the analyses fit nothing to the truth)",
                     "head_dependent": head_dependent(pooled, tau), "adjective_spread": adjective_spread(pooled, tau),
                     "entanglement": entanglement(pooled, tau), "special_tokens": special_tokens(pooled, groups, label)},
        "seconds": round(time.perf_counter() - started, 1),
    }
