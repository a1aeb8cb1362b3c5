"""Bake stage: the ``compare`` (prompt pair), ``variants`` (guidance x seed grid) and ``map`` sections.

The extra trajectories all start from their seed's exact noise (``generator.experiments.prompt.compare``); the one
variant with the prompt's own seed and guidance *is* the main trajectory (reused, not resampled), so its
strips are byte-identical to the main ones and the content-addressed store keeps them once. The map projects
the predicted x0 of every path (main, pair, variants) onto their first two principal axes.
"""

from __future__ import annotations

import numpy as np

from generator.bake.encoders import preview_size
from generator.bake.prompt.sections import AfterSampling
from generator.bake.prompt.trajectory import image_entry, sprite_entry
from generator.bake.store import AssetStore
from generator.evaluate.verdicts import judged
from generator.experiments.prompt.compare import ExtraTrajectory, run_many, word_diff, x0_distance
from generator.experiments.prompt.projection import fit_unit_square, pca_2d
from generator.experiments.prompt.trajectory import Trajectory, TrajectoryRequest
from generator.models.base import ModelAdapter, to_pil
from generator.spec.prompt_set import Expectation, PromptSpec


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
        sections["compare"] = {
            "text": prompt.compare,
            "diff": {"a": diff_a, "b": diff_b},
            "x0_distance": x0_distance(trajectory, pair),
            **strips(pair, store, frame_size, adapter, prompt.compare, prompt.expect),
        }
        paths.append(("compare", prompt.compare, "compare", pair))
    if grid:
        items = []
        for seed, guidance in grid:
            variant = trajectory if (seed, guidance) == own else next(sampled)
            items.append({"seed": seed, "guidance": guidance,
                          **strips(variant, store, frame_size, adapter, prompt.text, prompt.expect)})
            if (seed, guidance) != own:
                paths.append((f"s{seed}-g{guidance:g}", f"seed {seed}, guidance {guidance:g}", "variant", variant))
        sections["variants"] = {"seeds": seeds, "guidances": guidances, "items": items}
    sections["map"] = trajectory_map(paths)
    return sections


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
