"""Bake stage: the ``daam`` manifest section, DAAM word heat maps recorded during the trajectory's sampling.

Every map is 8-bit grayscale, scaled to [0, 255] by its own minimum and maximum (so a tau slider is a threshold at
tau * 255), packed into two PNG sprite sheets: ``aggregate`` (per entry, one frame per level: all layers, the fine half, the
coarse half, then each UNet part the model has cross-attention in: down, mid, up) and ``over_time`` (per entry: one
frame per timestep bin). Entries are the prompt's words (multi-piece words merged) and the start and end tokens
(the widget's special-token buttons show their maps). The page colours them in the browser. The maps per layer and per
head, and the padding and the specials table, are generator/bake/prompt/daam_parts.py's.

The UNet parts cost little: each is one more sum over the layer groups already recorded (no extra capture), and
on the shapes model issue 19 measured them apart (down 0.19, mid 0.38, up 0.32 mIoU; `diffatlas eval daam`), so
the reader can see the difference the chapter "What DAAM's maps tell us" reports.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from generator.bake.encoders import pack_grid, png_bytes, preview_size
from generator.bake.prompt.daam_parts import (
    capture_options,
    entry_parts,
    entry_weights,
    layer_table,
    raw_range,
    special_entries,
)
from generator.bake.prompt.sections import Finisher
from generator.bake.store import AssetStore
from generator.daam.aggregate import heat_maps, normalize, select_groups
from generator.experiments.prompt.trajectory import TrajectoryRequest
from generator.models.base import ModelAdapter
from generator.spec.prompt_set import PromptSpec

TIMESTEP_BINS = 10
DEFAULT_TAU = 0.4  # the DAAM paper's best segmentation threshold
LEVELS = ("all", "fine", "coarse")  # always present; the UNet parts follow when recorded
PARTS = ("down", "mid", "up")  # DAAM's UNet parts, in the order the image passes them
MAX_SHEET_SIDE = 8192


class DaamSection:
    """Per-word heat maps (DAAM) for text models with cross-attention, unless the prompt sets ``daam: false``."""

    name = "daam"

    def applies(self, adapter: ModelAdapter, prompt: PromptSpec) -> bool:
        """On when the prompt asks for it and the model attends to text tokens."""
        capabilities = getattr(adapter, "capabilities", None)
        return bool(prompt.settings.daam and capabilities is not None and capabilities.cross_attention)

    @contextmanager
    def capture(self, adapter: ModelAdapter, prompt: PromptSpec, request: TrajectoryRequest) -> Iterator[Finisher]:
        """Trace the sampling; the finisher bakes the maps."""
        from generator.daam import trace

        bins = max(1, min(TIMESTEP_BINS, request.steps))
        options = capture_options(adapter)
        with trace(adapter, timestep_bins=bins, **options) as traced:
            yield lambda trajectory, store: {"daam": bake_daam(traced, store, prompt.settings.preview_size, options["padding"])}


def _entries(traced: object) -> tuple[list[dict], list[dict], list[dict]]:
    """Map entries (words, then start/end tokens), the token list and the word list for the manifest."""
    pieces = traced.tokens()
    tokens_view = traced.prompt_tokens(0)
    entries, words = [], []
    word_entry: dict[int, int] = {}
    for word in tokens_view.words:
        if not word.positions:
            continue  # cut off by the token limit: no attention to show
        word_entry[word.word.index] = len(entries)
        entries.append({"label": word.word.text, "word": word.word.index})
        words.append({
            "index": word.word.index,
            "text": word.word.text,
            "occurrence": word.word.occurrence,
            "punctuation": word.is_punctuation,
            "tokens": list(word.positions),
            "map": word_entry[word.word.index],
        })
    special_entry: dict[int, int] = {}
    for piece in pieces:
        if piece.special in ("start", "end") and piece.index < traced.kept_tokens:
            special_entry[piece.index] = len(entries)
            entries.append({"label": piece.text, "token": piece.index})
    tokens = []
    for piece in pieces:
        if piece.special == "pad":
            break
        entry = word_entry.get(piece.word_index) if piece.word_index is not None else special_entry.get(piece.index)
        tokens.append({
            "index": piece.index, "id": piece.token_id, "text": piece.text, "special": piece.special,
            "word": piece.word_index, "map": entry,
        })
    return entries, tokens, words


def part_resolutions(traced: object) -> dict[str, list[tuple[int, int]]]:
    """The UNet parts (down, mid, up) that have recorded cross-attention, each with its layers' resolutions."""
    found: dict[str, set[tuple[int, int]]] = {}
    for group in traced.record.accumulator.groups:
        found.setdefault(group.location, set()).add((group.height, group.width))
    return {part: sorted(found[part], key=lambda r: -r[0] * r[1]) for part in PARTS if part in found}


def _maps(traced: object, weights: torch.Tensor, size: tuple[int, int], parts: list[str]
          ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Aggregates (all, fine, coarse, then each of ``parts``) and (bins, H, W) over time for one entry, in [0, 1].

    As ``Trace.word_map`` / ``word_maps_over_time`` (DAAM Eq. 6, min-max scaled), for any token weights.
    """
    accumulator = traced.record.accumulator
    groups, bins, halves = accumulator.groups, list(range(accumulator.bins)), traced.levels()
    selections = [groups] + [select_groups(groups, resolutions=halves[level]) for level in LEVELS[1:]]
    selections += [select_groups(groups, locations=[part]) for part in parts]
    aggregate = [normalize(heat_maps(accumulator, chosen, bins, 0, weights, size)).cpu() for chosen in selections]
    return aggregate, normalize(heat_maps(accumulator, groups, bins, 0, weights, size, per_bin=True)).cpu()


def grayscale_sheet(frames: list[torch.Tensor], columns: int) -> tuple[bytes, int]:
    """Pack (H, W) maps in [0, 1] as 8-bit grayscale into one PNG grid; returns the bytes and the columns used."""
    width = frames[0].shape[1]
    columns = max(1, min(columns, MAX_SHEET_SIDE // width))
    tiles = [Image.fromarray((frame.clamp(0, 1).numpy() * 255).round().astype(np.uint8), mode="L") for frame in frames]
    return png_bytes(pack_grid(tiles, columns)), columns


def bake_daam(traced: object, store: AssetStore, preview: int, padding: bool | str = False) -> dict:
    """The ``daam`` manifest section for the first traced image."""
    height, width = traced.image_size
    map_width, map_height = preview_size(width, height, preview)
    size = (map_height, map_width)
    entries, tokens, words = _entries(traced)
    padding_entries, specials = special_entries(traced, padding)
    entries += padding_entries
    for special in specials:  # start and end: the entry of that token, when the tokenizer has it
        piece = next((t for t in tokens if t["special"] == special["kind"]), None)
        if special["kind"] != "padding" and piece is not None and piece["map"] is not None:
            special["entry"] = piece["map"]
        elif special["kind"] == "padding" and padding_entries:
            special["entry"] = len(entries) - 1
    parts = part_resolutions(traced)
    levels = [*LEVELS, *parts]
    table = layer_table(traced.record.accumulator)
    aggregate_frames, time_frames, layer_frames, head_sheets = [], [], [], []
    ranges: dict[str, list] = {"all": [], "by_layer": [], "by_head": []}
    shares: dict[str, list] = {"by_layer": [], "by_head": []}

    def sprite(data: bytes, columns: int, count: int) -> dict:
        return {"src": store.put(data, "png"), "frame_width": map_width, "frame_height": map_height,
                "columns": columns, "count": count}

    for entry in entries:
        weights = entry_weights(traced, entry)
        aggregate, over_time = _maps(traced, weights, size, list(parts))
        aggregate_frames += aggregate
        time_frames += list(over_time)
        if not table:
            continue
        whole, layer_maps, head_maps = entry_parts(traced, weights, table, size)
        total = float(whole.sum())
        ranges["all"].append(raw_range(whole))
        layer_frames += list(normalize(layer_maps))
        ranges["by_layer"].append([raw_range(m) for m in layer_maps])
        shares["by_layer"].append([round(float(m.sum()) / total, 4) if total else 0.0 for m in layer_maps])
        if len(head_maps):
            head_sheets.append(sprite(*grayscale_sheet(list(normalize(head_maps)), len(head_maps)), len(head_maps)))
            ranges["by_head"].append([raw_range(m) for m in head_maps])
            shares["by_head"].append([round(float(m.sum()) / total, 4) if total else 0.0 for m in head_maps])
    bins = traced.timestep_bins
    aggregate_png, aggregate_columns = grayscale_sheet(aggregate_frames, len(levels))
    time_png, time_columns = grayscale_sheet(time_frames, bins)
    halves = traced.levels()
    resolutions = {**{name: halves[name] for name in LEVELS[1:]}, **parts}
    section = {
        "timestep_bins": bins,
        "bin_timesteps": traced.bin_timesteps,
        "tau": DEFAULT_TAU,
        "levels": levels,
        "resolutions": {name: [list(r) for r in resolutions[name]] for name in levels[1:]},
        "entries": entries,
        "tokens": tokens,
        "words": words,
        "specials": specials,
        "aggregate": sprite(aggregate_png, aggregate_columns, len(aggregate_frames)),
        "over_time": sprite(time_png, time_columns, len(time_frames)),
    }
    if table:
        section["layers"] = [{k: v for k, v in layer.items() if k != "groups"} for layer in table]
        section["by_layer"] = sprite(*grayscale_sheet(layer_frames, len(table)), len(layer_frames))
        section["ranges"] = {k: v for k, v in ranges.items() if v}
        section["shares"] = {k: v for k, v in shares.items() if v}
        if head_sheets:
            section["by_head"] = head_sheets
        else:
            section["heads_note"] = "heads are not kept apart for a model this large (more than 128 in all)"
    return section
