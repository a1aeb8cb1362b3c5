"""Evaluate stage: where and when DAAM's maps are faithful (issue 19, item 1), against the checker's exact masks.

Each noun whose object the checker found comes as its map's summands (``generator.daam.components``:
(groups, bins, H, W), a group is one head of one layer) and the object's true mask. A *selection* keeps some
summands: one timestep bin or a range of bins, a UNet part, a resolution, one layer, one head, one head index
in every layer. For each selection the map is the kept sum, min-max normalized and thresholded (DAAM Eq. 6, 7).

tau is chosen per selection on the calibration nouns only and the mIoU reported is the test nouns' at that tau;
the most faithful selection of each family (step range, layer set, head set) is also chosen on calibration,
so no reported number was tuned on the images it is measured on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from generator.daam.aggregate import LOCATIONS, LayerGroup
from generator.evaluate.daam_stats import mean_interval, paired_difference

TAU_GRID: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
FAMILIES = {"step_range": ("timestep_bin", "step_range"), "layer_set": ("location", "resolution", "layer"),
            "head_set": ("head", "head_index")}


@dataclass(frozen=True)
class NounTruth:
    """One noun's map summands (groups, bins, H, W) and its object's true mask (H, W) bool."""

    components: torch.Tensor
    truth: torch.Tensor


@dataclass(frozen=True)
class Selection:
    """Which summands a map keeps: ``weights`` (groups, bins) of 0/1, named by its family kind and a label."""

    kind: str
    name: str
    weights: torch.Tensor


def short_layer(name: str) -> str:
    """'up_blocks.1.attentions.0.transformer_blocks.0.attn2.processor' -> 'up1.0' (block.attention index)."""
    parts = name.split(".")
    block = {"down_blocks": "down", "up_blocks": "up", "mid_block": "mid"}.get(parts[0], parts[0])
    if parts[0] == "mid_block":
        return f"mid.{parts[2]}" if len(parts) > 2 else "mid"
    return f"{block}{parts[1]}.{parts[3]}" if len(parts) > 3 else name


def selections(groups: Sequence[LayerGroup], bins: int) -> list[Selection]:
    """Every selection measured: all, each bin, each bin range, part, resolution, layer, head and head index."""
    count = len(groups)

    def by_group(keep) -> torch.Tensor:
        return torch.tensor([[1.0] * bins if keep(g) else [0.0] * bins for g in groups])

    chosen = [Selection("all", "all", torch.ones(count, bins))]
    for first in range(bins):
        for last in range(first, bins):
            if (first, last) == (0, bins - 1):
                continue
            weights = torch.zeros(count, bins)
            weights[:, first : last + 1] = 1
            kind = "timestep_bin" if first == last else "step_range"
            chosen.append(Selection(kind, f"bins {first}" if first == last else f"bins {first}-{last}", weights))
    for location in [loc for loc in LOCATIONS if any(g.location == loc for g in groups)]:
        chosen.append(Selection("location", location, by_group(lambda g, loc=location: g.location == loc)))
    for height, width in dict.fromkeys((g.height, g.width) for g in groups):
        chosen.append(Selection("resolution", f"{height}x{width}",
                                by_group(lambda g, h=height, w=width: (g.height, g.width) == (h, w))))
    for layer in dict.fromkeys(g.layer for g in groups if g.layer is not None):
        chosen.append(Selection("layer", short_layer(layer), by_group(lambda g, name=layer: g.layer == name)))
    heads = [(g.layer, g.head) for g in groups if g.head is not None]
    for layer, head in heads:
        chosen.append(Selection("head", f"{short_layer(layer)} h{head}",
                                by_group(lambda g, key=(layer, head): (g.layer, g.head) == key)))
    for index in sorted({head for _, head in heads}):
        chosen.append(Selection("head_index", f"h{index} of every layer", by_group(lambda g, k=index: g.head == k)))
    return chosen


def iou_table(nouns: Sequence[NounTruth], chosen: Sequence[Selection], taus: Sequence[float] = TAU_GRID) -> np.ndarray:
    """(nouns, selections, taus): IoU of each selection's thresholded map (DAAM Eq. 7, min-max normalized)."""
    weights = torch.stack([s.weights for s in chosen]).double()  # (S, groups, bins)
    tau_values = torch.tensor(list(taus), dtype=torch.float64)[None, :, None, None]
    table = np.zeros((len(nouns), len(chosen), len(taus)))
    for index, noun in enumerate(nouns):
        maps = torch.einsum("sgb,gbhw->shw", weights, noun.components.double())  # (S, H, W)
        low = maps.amin(dim=(-2, -1), keepdim=True)
        span = maps.amax(dim=(-2, -1), keepdim=True) - low
        normalized = torch.where(span > 0, (maps - low) / span.clamp_min(1e-30), torch.zeros_like(maps))
        masks = (normalized[:, None] >= tau_values) & (span[:, None] > 0)  # (S, T, H, W)
        truth = noun.truth[None, None]
        intersection = (masks & truth).sum(dim=(-2, -1)).double()
        union = (masks | truth).sum(dim=(-2, -1)).double()
        table[index] = torch.where(union > 0, intersection / union.clamp_min(1), torch.ones_like(union)).numpy()
    return table


def faithfulness(calibration: Sequence[NounTruth], test: Sequence[NounTruth], groups: Sequence[LayerGroup], bins: int,
                 taus: Sequence[float] = TAU_GRID) -> dict[str, Any]:
    """mIoU per selection (tau from calibration, mIoU on test) and the most faithful selection of each family."""
    if not calibration or not test:
        raise ValueError("faithfulness needs calibration and test nouns")
    chosen = selections(groups, bins)
    calibration_miou = iou_table(calibration, chosen, taus).mean(axis=0)  # (S, T)
    test_table = iou_table(test, chosen, taus)  # (nouns, S, T)
    best_tau = calibration_miou.argmax(axis=1)  # (S,): calibration only
    rows = []
    for index, selection in enumerate(chosen):
        values = test_table[:, index, best_tau[index]]
        rows.append({"kind": selection.kind, "name": selection.name, "tau": float(taus[best_tau[index]]),
                     "calibration_miou": round(float(calibration_miou[index, best_tau[index]]), 4),
                     "test": mean_interval(values)})
    summed = rows[0]
    best = {}
    for family, kinds in FAMILIES.items():
        members = [row for row in rows if row["kind"] in kinds]
        if not members:
            continue
        top = max(members, key=lambda row: row["calibration_miou"])  # picked on calibration
        index = rows.index(top)
        best[family] = {**top, "share_of_summed": round(top["test"]["mean"] / summed["test"]["mean"], 4)
                        if summed["test"]["mean"] else None,
                        "minus_summed": paired_difference(test_table[:, index, best_tau[index]], test_table[:, 0, best_tau[0]])}
    combined = _combined(chosen, rows, calibration, test, taus)
    if combined is not None:
        best["steps_and_layers"] = {**combined, "share_of_summed": round(combined["test"]["mean"] / summed["test"]["mean"], 4)
                                    if summed["test"]["mean"] else None}
    return {"summed": summed, "selections": rows, "most_faithful": best, "taus": list(taus),
            "nouns": {"calibration": len(calibration), "test": len(test)}}


def _combined(chosen: Sequence[Selection], rows: Sequence[dict[str, Any]], calibration: Sequence[NounTruth],
              test: Sequence[NounTruth], taus: Sequence[float]) -> dict[str, Any] | None:
    """The best step range's bins restricted to the best layer set (both chosen on calibration): one candidate
    "better map" (issue 19, item 4), with its own calibrated tau."""
    def top(kinds: tuple[str, ...]) -> int | None:
        members = [i for i, row in enumerate(rows) if row["kind"] in kinds]
        return max(members, key=lambda i: rows[i]["calibration_miou"]) if members else None

    steps, layers = top(FAMILIES["step_range"]), top(FAMILIES["layer_set"])
    if steps is None or layers is None:
        return None
    weights = chosen[steps].weights * chosen[layers].weights
    if not weights.any():
        return None
    both = Selection("steps_and_layers", f"{chosen[steps].name}, {chosen[layers].name}", weights)
    calibration_miou = iou_table(calibration, [both], taus).mean(axis=0)[0]  # (T,)
    tau_index = int(calibration_miou.argmax())
    values = iou_table(test, [both], taus)[:, 0, tau_index]
    return {"kind": both.kind, "name": both.name, "tau": float(taus[tau_index]),
            "calibration_miou": round(float(calibration_miou[tau_index]), 4), "test": mean_interval(values)}
