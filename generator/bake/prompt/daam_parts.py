"""Bake stage: the DAAM section's maps per layer and per head, and its special tokens (issue 19, item 6).

DAAM's map (Eq. 6) is a sum over steps, layers and heads. The bake traces with every head kept apart
(``trace(keep="heads")``) and stores, next to the section's existing sheets, for each entry (word or special token):

- ``by_layer``: one frame per cross-attention layer, summed over its heads and over every step;
- ``by_head``: one sheet per entry (loaded by the page only when a head of that entry is chosen), one frame per
  (layer, head), over every step.

Maps per layer or head are kept over all steps only, not per time bin: on prompts/shapes.yaml's red-circle the
time bins would multiply these sheets by ten (the shapes model's 7 layers x 2 heads: see README.md, "The DAAM
widget"), and on Stable Diffusion 1.5 (16 layers x 8 heads) to ~1,300 frames per word; the time control already
shows when a word acts, the layer and head controls where each part of the network looks. A model with more
than ``MAX_HEAD_FRAMES`` heads in all (SDXL: ~1,400) keeps layers apart but not heads (the manifest says so).

Every frame is min-max scaled to 8 bits like the others; its raw range (``ranges``: [min, max] of the unscaled
map) and its share of the entry's whole attention (``shares``) are in the manifest, so the raw maps can be
rebuilt from the PNGs: the heads of a layer sum to the layer, the layers to the "all" map (tested on bake output).

Special tokens: the start and end tokens where the tokenizer has them, and the padding (every position after
the end token, summed: ``trace(padding="folded")``) where the model attends to it. ``specials`` says, for each
of the three, which entry shows it or why there is none (no such token; padding masked out of cross-attention,
as the shapes models' T5 encoders do).
"""

from __future__ import annotations

from typing import Any

import torch

from generator.daam.aggregate import LOCATIONS, LayerGroup

MAX_HEAD_FRAMES = 128  # heads stored one by one per entry (SD 1.5: 16 layers x 8 heads); more: layers only
SPECIALS = ("start", "end", "padding")
MASKED = 1e-6  # padding's share of the attention below this: the model masks it (T5 with an attention mask)


def capture_options(adapter: Any) -> dict[str, Any]:
    """``trace`` options for the bake: heads kept apart while they fit, padding folded (not for joint attention)."""
    from generator.daam.capture import cross_attention_layers
    from generator.daam.joint import joint_attention_layers

    denoiser = adapter.denoiser
    if joint_attention_layers(denoiser):  # diffusion transformers: joint.py sums heads and reads no fold
        return {"keep": "summed", "padding": False}
    heads = sum(int(getattr(module, "heads", 1)) for module in cross_attention_layers(denoiser).values())
    return {"keep": "heads" if heads <= MAX_HEAD_FRAMES else "layers", "padding": "folded"}


def layer_label(name: str, names: list[str]) -> str:
    """'up_blocks.1.attentions.0.transformer_blocks.0.attn2.processor' -> 'up 1.0' (+ '.k' for a deeper block)."""
    parts = name.split(".")
    if parts[0] == "mid_block":
        short = f"mid {parts[2]}" if len(parts) > 2 else "mid"
    elif parts[0] in ("down_blocks", "up_blocks") and len(parts) > 3:
        short = f"{parts[0].removesuffix('_blocks')} {parts[1]}.{parts[3]}"
    else:
        return name.removesuffix(".processor")
    deep = any(".transformer_blocks.1." in other for other in names)  # SDXL: several transformer blocks per attention
    if deep and "transformer_blocks" in parts:
        short += f".{parts[parts.index('transformer_blocks') + 1]}"
    return short


def _unet_order(group: LayerGroup) -> tuple:
    location = LOCATIONS.index(group.location) if group.location in LOCATIONS else len(LOCATIONS)
    numbers = tuple(int(p) if p.isdigit() else 0 for p in (group.layer or "").split("."))
    return location, numbers, -1 if group.head is None else group.head


def layer_table(accumulator: Any) -> list[dict[str, Any]]:
    """The recorded layers in the order the image passes them, each with its heads' groups (empty: summed)."""
    groups = sorted((g for g in accumulator.groups if g.layer is not None), key=_unet_order)
    names = list(dict.fromkeys(g.layer for g in groups))
    table = []
    for name in names:
        mine = [g for g in groups if g.layer == name]
        heads = [g for g in mine if g.head is not None]
        first = mine[0]
        table.append({"name": name.removesuffix(".processor"), "label": layer_label(name, names),
                      "location": first.location, "resolution": [first.height, first.width],
                      "heads": len(heads), "groups": mine})
    return table


def entry_weights(traced: Any, entry: dict) -> torch.Tensor:
    """(kept,) token weights of an entry: a word's pieces averaged, one token, or every padding column summed."""
    tokens = traced.prompt_tokens(0)
    kept = traced.kept_tokens
    if "word" in entry:
        return tokens.weights(tokens.find(entry["word"]).positions, kept)
    if entry.get("padding"):
        weights = torch.zeros(kept)
        weights[tokens.end_position + 1:] = 1.0
        return weights
    return tokens.weights((entry["token"],), kept)


def padding_share(traced: Any) -> float:
    """The share of all recorded attention that went to the padding (0 when none was recorded or it is masked)."""
    tokens = traced.prompt_tokens(0)
    start = tokens.end_position + 1
    if start >= traced.kept_tokens or not any(p.special == "pad" for p in tokens.pieces):
        return 0.0
    sums = traced.record.accumulator.sums
    total = sum(float(s[:, 0].sum()) for s in sums.values())
    padding = sum(float(s[:, 0, start:].sum()) for s in sums.values())
    return padding / total if total > 0 else 0.0


def special_entries(traced: Any, padding: bool | str) -> tuple[list[dict], list[dict]]:
    """Entries for the padding (when attended) and the ``specials`` table: start, end, padding, each shown or why not."""
    pieces = traced.tokens()
    kinds = {p.special for p in pieces}
    entries: list[dict] = []
    specials = []
    for kind in ("start", "end"):
        if kind not in kinds:
            specials.append({"kind": kind, "entry": None, "reason": "absent",
                             "note": f"this model's tokenizer adds no {kind} token"})
        else:
            specials.append({"kind": kind, "entry": None, "reason": "", "note": ""})  # the caller fills in the entry
    count = sum(p.special == "pad" for p in pieces)
    share = padding_share(traced) if padding == "folded" else 0.0
    if count == 0:
        reason, note = "absent", "this model's tokenizer does not pad the prompt"
    elif padding != "folded":
        reason, note = "not recorded", "not recorded for this model (joint attention)"
    elif share < MASKED:
        reason, note = "masked", f"the model masks its {count} padding tokens out of cross-attention: no attention reaches them"
    else:
        reason, note = "", ""
        entries.append({"label": f"padding ({count} tokens)", "padding": True})
    specials.append({"kind": "padding", "entry": None, "reason": reason, "note": note, "tokens": count,
                     "share": round(share, 4)})
    return entries, specials


def raw_range(frame: torch.Tensor) -> list[float]:
    """[min, max] of a raw map, to 6 significant digits (the 8-bit frame is (map - min) / (max - min))."""
    return [float(f"{float(frame.min()):.6g}"), float(f"{float(frame.max()):.6g}")]


def entry_parts(traced: Any, weights: torch.Tensor, table: list[dict], size: tuple[int, int]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw maps over all steps: the whole (H, W), each layer (layers, H, W) and each head (heads in all, H, W)."""
    from generator.daam.aggregate import heat_maps

    accumulator = traced.record.accumulator
    bins = list(range(accumulator.bins))
    whole = heat_maps(accumulator, accumulator.groups, bins, 0, weights, size).cpu()
    layers, heads = [], []
    for layer in table:
        per_group = [heat_maps(accumulator, [g], bins, 0, weights, size).cpu() for g in layer["groups"]]
        layers.append(torch.stack(per_group).sum(0))
        heads += [m for m, g in zip(per_group, layer["groups"]) if g.head is not None]
    empty = torch.zeros(0, *size)
    return whole, torch.stack(layers) if layers else empty, torch.stack(heads) if heads else empty
