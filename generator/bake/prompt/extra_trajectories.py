"""Bake stage: the ``compare`` (prompt pair), ``variants`` (guidance x seed grid) and ``map`` sections.

The extra trajectories all start from their seed's exact noise (``generator.experiments.prompt.compare``); the one
variant with the prompt's own seed and guidance *is* the main trajectory (reused, not resampled), so its
strips are byte-identical to the main ones and the content-addressed store keeps them once. A pair also gets the
per-step difference of its two predicted-x0 strips as stored (a grayscale heat map sheet). The pair and every
variant but the own one also store what guidance did at each of their steps (``guidance_block``, from the
branches their one run recorded: no second run). Every final image is
judged: the pair's against its own text and ``compare_expect``, variants at guidance 0 as expected failures (the
unconditional branch never reads the prompt), others with their ``variants_expect`` cell or the prompt's
``expect``. The map projects the predicted x0 of every path (main, pair, variants) onto their first two principal
axes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from generator.bake.encoders import pack_grid, png_bytes, preview_size
from generator.bake.prompt.guidance import guidance_block
from generator.bake.prompt.sections import AfterSampling
from generator.bake.prompt.trajectory import image_entry, sprite_entry
from generator.bake.store import AssetStore
from generator.evaluate.verdicts import judged
from generator.experiments.prompt.compare import ExtraTrajectory, difference_maps, run_many, word_diff, x0_distance
from generator.experiments.prompt.projection import fit_unit_square, pca_2d
from generator.experiments.prompt.trajectory import Trajectory, TrajectoryRequest
from generator.models.base import ModelAdapter, to_pil
from generator.spec.prompt_set import Expectation, PromptSpec

UNCONDITIONAL = Expectation("fail", "guidance 0 is the unconditional branch alone: it never reads the prompt")


def variant_grid(prompt: PromptSpec) -> tuple[list[int], list[float]]:
    """Seeds and guidance scales of the grid, the prompt's own values included (first seed, sorted scales)."""
    settings = prompt.settings
    seeds = list(dict.fromkeys((settings.seed, *settings.seeds)))
    guidances = sorted(set((settings.guidance, *settings.guidances)))
    return seeds, guidances


def strips(trajectory: Trajectory, store: AssetStore, frame_size: tuple[int, int], adapter: ModelAdapter, asked: str,
           expect: Expectation | None = None) -> dict:
    """x_t and predicted-x0 sprite sheets and the final image of one trajectory, judged against ``asked``."""
    (final,) = to_pil(trajectory.final_image[None])
    return {
        "noisy": sprite_entry(store, to_pil(trajectory.noisy), frame_size),
        "predicted": sprite_entry(store, to_pil(trajectory.predicted), frame_size),
        "final": judged(image_entry(store, final), adapter, asked, final, expect),
    }


class ExtraTrajectoriesSection(AfterSampling):
    """Prompt pair, guidance/seed variants and the trajectory map of a prompt."""

    name = "extra-trajectories"

    def applies(self, adapter: ModelAdapter, prompt: PromptSpec) -> bool:
        """Every prompt gets a map; pairs and variants only where the prompt file asks for them."""
        return True

    def bake(
        self, adapter: ModelAdapter, prompt: PromptSpec, request: TrajectoryRequest, trajectory: Trajectory, store: AssetStore
    ) -> dict:
        """``bake_extra_trajectories``: the extra trajectories are sampled after the main one."""
        return bake_extra_trajectories(adapter, prompt, request, trajectory, store)


def bake_extra_trajectories(
    adapter: ModelAdapter, prompt: PromptSpec, request: TrajectoryRequest, trajectory: Trajectory, store: AssetStore
) -> dict:
    """Sample the pair and the variants (batched per guidance), store their strips, project all paths."""
    settings = prompt.settings
    frame_size = preview_size(request.width, request.height, settings.preview_size)
    seeds, guidances = variant_grid(prompt)
    has_variants = bool(settings.seeds or settings.guidances)
    grid = [(s, g) for s in seeds for g in guidances] if has_variants else []
    own = (settings.seed, settings.guidance)
    runs = [ExtraTrajectory(prompt.compare, request.seed, request.guidance)] if prompt.compare else []
    runs += [ExtraTrajectory(prompt.text, s, g) for s, g in grid if (s, g) != own]
    sampled = iter(run_many(adapter, request, runs, preview=settings.preview_size))
    sections: dict = {}
    paths = [("main", "this prompt", "main", trajectory)]
    if prompt.compare:
        pair = next(sampled)
        diff_a, diff_b = word_diff(prompt.text, prompt.compare)
        pair_strips = strips(pair, store, frame_size, adapter, prompt.compare, prompt.compare_expect)
        main_predicted = sprite_entry(store, to_pil(trajectory.predicted), frame_size)  # the stored bytes again
        sections["compare"] = {
            "text": prompt.compare,
            "diff": {"a": diff_a, "b": diff_b},
            "x0_distance": x0_distance(trajectory, pair),
            "difference": difference_entry(store, main_predicted, pair_strips["predicted"]),
            **pair_strips,
            "guidance_parts": guidance_block(adapter, prompt, request, pair, store, request.guidance),
        }
        paths.append(("compare", prompt.compare, "compare", pair))
    if grid:
        items = []
        for seed, guidance in grid:
            variant = trajectory if (seed, guidance) == own else next(sampled)
            expect = UNCONDITIONAL if guidance == 0 else prompt.variant_expect(seed, guidance)
            items.append({"seed": seed, "guidance": guidance,
                          **strips(variant, store, frame_size, adapter, prompt.text, expect)})
            if (seed, guidance) != own:  # the own variant's guidance parts are the page's "guidance" section
                items[-1]["guidance_parts"] = guidance_block(adapter, prompt, request, variant, store, guidance)
                paths.append((f"s{seed}-g{guidance:g}", f"seed {seed}, guidance {guidance:g}", "variant", variant))
        sections["variants"] = {"seeds": seeds, "guidances": guidances, "items": items}
    sections["map"] = trajectory_map(paths)
    return sections


def stored_frames(store: AssetStore, entry: dict) -> np.ndarray:
    """The frames of a stored sprite sheet as they were written, (count, h, w, 3) uint8."""
    width, height, columns = entry["frame_width"], entry["frame_height"], entry["columns"]
    with Image.open(store.root / entry["src"]) as sheet:
        pixels = np.asarray(sheet.convert("RGB"))
    tops_lefts = [((i // columns) * height, (i % columns) * width) for i in range(entry["count"])]
    return np.stack([pixels[top:top + height, left:left + width] for top, left in tops_lefts])


def difference_entry(store: AssetStore, a: dict, b: dict) -> dict:
    """The pair's per-step difference heat maps, |x0_a - x0_b| of the two stored predicted-x0 strips, as one
    lossless grayscale PNG sheet laid out like them, and each frame's mean difference (0..1)."""
    maps = difference_maps(stored_frames(store, a), stored_frames(store, b))  # (frames, h, w)
    sheet = pack_grid([Image.fromarray(m) for m in maps], a["columns"])
    return {"src": store.put(png_bytes(sheet), "png"), "frame_width": a["frame_width"],
            "frame_height": a["frame_height"], "columns": a["columns"], "count": a["count"],
            "mean": [round(float(m.mean()) / 255, 4) for m in maps]}


def trajectory_map(paths: list[tuple[str, str, str, Trajectory]]) -> dict:
    """The ``map`` section: every path's predicted x0 per frame on the shared first two principal axes."""
    stacked = np.concatenate([t.predicted_latents.double().flatten(1).numpy() for *_, t in paths])
    projection = pca_2d(stacked)
    unit = fit_unit_square(projection.coordinates)
    out, start = [], 0
    for path_id, label, kind, t in paths:
        count = len(t.predicted_latents)
        out.append({"id": path_id, "label": label, "kind": kind, "points": unit[start : start + count].round(4).tolist()})
        start += count
    return {"source": "predicted_x0", "explained": list(projection.explained), "paths": out}
