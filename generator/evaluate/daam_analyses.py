"""Evaluate stage: DAAM's own analyses (Tang et al. 2023, §4 and §5) redone on the shapes world (issue 19, item 2).

Inputs are per caption: the summed, min-max normalized map of each word that matters (nouns, their colour and
size adjectives, the count word, the relation word), the checker's true masks, the judge's binding verdict and
the attention mass per token position. Everything is a plain function of those tensors, so each analysis is
tested on constructed maps with known answers (full overlap, no overlap, a known spread).

* head-dependent overlap (§4): a modifier's map against its own noun's map, against the other noun's, and
  against a noun of an unrelated caption (the chance baseline);
* adjective spread (§5): area and spread of colour/size maps against their nouns' maps and the true mask;
* entanglement (§5, cohyponyms): two-object captions whose objects share a colour, a shape, or neither: the
  overlap of the two nouns' maps, the binding failure rate, and how well overlap predicts failure (AUC);
* special tokens: the share of attention that goes to start, end and padding positions per step bin and layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from generator.daam.aggregate import LayerGroup
from generator.evaluate.daam_stats import area, auc_interval, mask_iou, mean_interval, paired_difference, soft_overlap, spread

SPECIAL_KINDS = ("start", "end", "pad")


@dataclass(frozen=True)
class ObjectMaps:
    """One object of a caption: its noun's map, its modifiers' maps (None when the caption has none), its truth."""

    shape: str
    colour: str
    noun: torch.Tensor  # (H, W) in [0, 1]
    modifiers: dict[str, torch.Tensor]  # "colour", "size" -> (H, W) in [0, 1]
    truth: torch.Tensor | None = None  # the checker's mask of the object, when it was drawn right


@dataclass(frozen=True)
class CaptionMaps:
    """What the analyses need of one generated caption."""

    caption: str
    layout: str
    objects: tuple[ObjectMaps, ...]
    relation: torch.Tensor | None = None  # the relation word's map (relation layout)
    count: torch.Tensor | None = None  # the count word's map (count layout)
    binding_failed: bool | None = None  # the judge: some object not drawn with its colour and shape
    token_mass: torch.Tensor | None = None  # (groups, bins, tokens): attention received per position
    token_kinds: tuple[str, ...] = field(default_factory=tuple)  # "" for a word piece, else start / end / pad


def _mask(heat: torch.Tensor, tau: float) -> torch.Tensor:
    """DAAM Eq. 7 on a normalized map (a flat map marks nothing)."""
    peak = heat.max()
    return heat >= tau * peak if peak > 0 else torch.zeros_like(heat, dtype=torch.bool)


def _overlaps(a: torch.Tensor, b: torch.Tensor, tau: float) -> tuple[float, float]:
    return mask_iou(_mask(a, tau), _mask(b, tau)), soft_overlap(a, b)


def head_dependent(captions: Sequence[CaptionMaps], tau: float) -> dict[str, Any]:
    """Per modifier kind: IoU (at tau) and soft overlap with its own noun, the other noun and an unrelated noun."""
    rows: dict[str, dict[str, list[float]]] = {}

    def add(kind: str, key: str, value: float) -> None:
        rows.setdefault(kind, {}).setdefault(key, []).append(value)

    unrelated = [c.objects[0].noun for c in captions[1:]] + [captions[0].objects[0].noun] if captions else []
    for caption, stranger in zip(captions, unrelated):
        nouns = [obj.noun for obj in caption.objects]
        for index, obj in enumerate(caption.objects):
            for kind, heat in obj.modifiers.items():
                own, own_soft = _overlaps(heat, obj.noun, tau)
                chance, chance_soft = _overlaps(heat, stranger, tau)
                add(kind, "own", own), add(kind, "own_soft", own_soft)
                add(kind, "unrelated", chance), add(kind, "unrelated_soft", chance_soft)
                if len(nouns) == 2:
                    other, other_soft = _overlaps(heat, nouns[1 - index], tau)
                    add(kind, "paired_own", own), add(kind, "other", other), add(kind, "other_soft", other_soft)
        if caption.relation is not None and len(nouns) == 2:
            for position, name in ((0, "first"), (1, "second")):
                value, soft = _overlaps(caption.relation, nouns[position], tau)
                add("relation", name, value), add("relation", f"{name}_soft", soft)
            add("relation", "unrelated", _overlaps(caption.relation, stranger, tau)[0])
        if caption.count is not None:
            own, own_soft = _overlaps(caption.count, nouns[0], tau)
            add("count", "own", own), add("count", "own_soft", own_soft)
            add("count", "unrelated", _overlaps(caption.count, stranger, tau)[0])
    report = {}
    for kind, values in sorted(rows.items()):
        entry = {key: mean_interval(series) for key, series in sorted(values.items()) if key != "paired_own"}
        if "other" in values:
            entry["own_minus_other"] = paired_difference(values["paired_own"], values["other"])
        report[kind] = entry
    return {"tau": tau, "by_modifier": report, "baseline": "unrelated: the same modifier map against the first noun "
            "of the next caption (two maps that have nothing to do with each other)"}


def adjective_spread(captions: Sequence[CaptionMaps], tau: float) -> dict[str, Any]:
    """Area (of the tau mask) and spread of each adjective map against its noun's map; the true mask as baseline."""
    report = {}
    for kind in ("colour", "size"):
        pairs = [(obj.modifiers[kind], obj.noun, obj.truth) for c in captions for obj in c.objects if kind in obj.modifiers]
        if not pairs:
            continue
        adjective_area = [area(_mask(a, tau)) for a, _, _ in pairs]
        noun_area = [area(_mask(n, tau)) for _, n, _ in pairs]
        adjective_spread_ = [spread(a) for a, _, _ in pairs]
        noun_spread = [spread(n) for _, n, _ in pairs]
        # the whole map's spread is dominated by its diffuse floor; the tau mask's spread says where it points
        adjective_mask_spread = [spread(_mask(a, tau).float()) for a, _, _ in pairs]
        noun_mask_spread = [spread(_mask(n, tau).float()) for _, n, _ in pairs]
        truths = [t for _, _, t in pairs if t is not None]
        report[kind] = {
            "area": {"adjective": mean_interval(adjective_area), "noun": mean_interval(noun_area),
                     "adjective_minus_noun": paired_difference(adjective_area, noun_area),
                     "true_object": mean_interval([area(t) for t in truths])},
            "spread": {"adjective": mean_interval(adjective_spread_), "noun": mean_interval(noun_spread),
                       "adjective_minus_noun": paired_difference(adjective_spread_, noun_spread),
                       "true_object": mean_interval([spread(t.float()) for t in truths])},
            "mask_spread": {"adjective": mean_interval(adjective_mask_spread), "noun": mean_interval(noun_mask_spread),
                            "adjective_minus_noun": paired_difference(adjective_mask_spread, noun_mask_spread)},
        }
    return {"tau": tau, "by_adjective": report, "units": "area: share of the image; spread: RMS distance of the "
            "map's mass from its centroid, in image sides (a uniform square of side s: s/sqrt(6)); mask_spread: "
            "the same of the tau mask"}


def sharing(caption: CaptionMaps) -> str:
    """'colour', 'shape' or 'neither': what a two-object caption's objects have in common (never both)."""
    first, second = caption.objects
    if first.colour == second.colour:
        return "colour"
    return "shape" if first.shape == second.shape else "neither"


def entanglement(captions: Sequence[CaptionMaps], tau: float) -> dict[str, Any]:
    """Noun-map overlap and binding failures by what the two objects share; AUC of overlap predicting failure."""
    pairs = [c for c in captions if len(c.objects) == 2 and c.binding_failed is not None]
    overlap = [_overlaps(c.objects[0].noun, c.objects[1].noun, tau) for c in pairs]
    groups = {}
    for share in ("colour", "shape", "neither"):
        members = [i for i, c in enumerate(pairs) if sharing(c) == share]
        groups[share] = {
            "captions": len(members),
            "noun_iou": mean_interval([overlap[i][0] for i in members]),
            "noun_soft_overlap": mean_interval([overlap[i][1] for i in members]),
            "binding_failure": mean_interval([float(pairs[i].binding_failed) for i in members]),
        }
    failed = [bool(c.binding_failed) for c in pairs]
    return {"tau": tau, "by_sharing": groups, "baseline": "neither (objects share no word)",
            "auc_iou_predicts_failure": auc_interval([o[0] for o in overlap], failed),
            "auc_soft_overlap_predicts_failure": auc_interval([o[1] for o in overlap], failed)}


def _shares(mass: torch.Tensor, kinds: Sequence[str]) -> dict[str, torch.Tensor]:
    """(..., tokens) mass -> each special kind's share of the row's total (NaN where a row got nothing)."""
    total = mass.sum(-1)
    shares = {}
    for kind in SPECIAL_KINDS:
        chosen = [i for i, k in enumerate(kinds) if k == kind and i < mass.shape[-1]]
        part = mass[..., chosen].sum(-1) if chosen else torch.zeros_like(total)
        shares[kind] = torch.where(total > 0, part / total.clamp_min(1e-30), torch.full_like(total, float("nan")))
    return shares


def special_tokens(captions: Sequence[CaptionMaps], groups: Sequence[LayerGroup], layer_label: Any = str) -> dict[str, Any]:
    """Share of attention on start, end and padding positions: overall, per step bin and per layer (by caption).

    Baseline: the share each kind would get if every position that received any attention got the same amount.
    """
    layers = list(dict.fromkeys(g.layer or f"{g.location} {g.height}x{g.width}" for g in groups))
    per_bin: dict[str, list[list[float]]] = {k: [] for k in SPECIAL_KINDS}
    per_layer: dict[str, list[list[float]]] = {k: [] for k in SPECIAL_KINDS}
    overall: dict[str, list[float]] = {k: [] for k in SPECIAL_KINDS}
    uniform: dict[str, list[float]] = {k: [] for k in SPECIAL_KINDS}
    for caption in captions:
        if caption.token_mass is None:
            continue
        mass = caption.token_mass.double()  # (groups, bins, tokens)
        present = [kind for kind in SPECIAL_KINDS if kind in caption.token_kinds]  # T5-style text: no start token
        layer_mass = torch.stack([mass[[i for i, g in enumerate(groups) if (g.layer or f"{g.location} {g.height}x{g.width}") == name]]
                                  .sum(dim=(0, 1)) for name in layers])  # (layers, tokens)
        by_bin, by_layer = _shares(mass.sum(0), caption.token_kinds), _shares(layer_mass, caption.token_kinds)
        whole = _shares(mass.sum(dim=(0, 1)), caption.token_kinds)
        for kind in present:
            per_bin[kind].append(by_bin[kind].tolist())
            per_layer[kind].append(by_layer[kind].tolist())
            overall[kind].append(float(whole[kind]))
        attended = mass.sum(dim=(0, 1)) > 0
        for kind in present:
            chosen = [i for i, k in enumerate(caption.token_kinds) if k == kind and i < len(attended)]
            uniform[kind].append(float(attended[chosen].sum() / attended.sum()) if attended.any() else 0.0)

    def columns(rows: list[list[float]]) -> list[dict[str, Any]]:
        array = np.asarray(rows, dtype=np.float64)
        return [mean_interval(array[~np.isnan(array[:, j]), j]) for j in range(array.shape[1])] if len(rows) else []

    return {
        "overall": {kind: mean_interval(values) for kind, values in overall.items()},
        "uniform_baseline": {kind: mean_interval(values) for kind, values in uniform.items()},
        "per_bin": {kind: columns(rows) for kind, rows in per_bin.items()},
        "per_layer": {kind: dict(zip((layer_label(name) for name in layers), columns(rows))) for kind, rows in per_layer.items()},
    }
