"""Bake stage: the ``jumps`` manifest section, preview rows aligned under a prompt's trajectory.

For every jump length J of the prompt's ``jumps`` settings, one sprite row: frame k is the clean image
reached by jumping from the k-th jump point, and a last frame holds the final image (where every jump ends
up). ``frame_of_step`` maps each trajectory step to the row frame to show (the latest jump point at or before
it), so the rows scrub with the trajectory's step group.
"""

from __future__ import annotations

import torch

from generator.bake.encoders import preview_size
from generator.bake.prompt.sections import AfterSampling
from generator.bake.prompt.trajectory import sprite_entry
from generator.bake.store import AssetStore
from generator.evaluate.verdicts import verdict
from generator.experiments.prompt.jumps import JumpStart, jump_points, run_jumps
from generator.experiments.prompt.trajectory import Trajectory, TrajectoryRequest, decode_in_batches, preview_stride
from generator.models.base import ModelAdapter, to_pil
from generator.spec.prompt_set import PromptSpec


def frame_of_step(points: list[int], steps: int) -> list[int]:
    """For each step 0..steps: the index of the latest jump point at or before it; ``steps`` -> the final frame."""
    frames, current = [], 0
    for step in range(steps):
        while current + 1 < len(points) and points[current + 1] <= step:
            current += 1
        frames.append(current)
    return frames + [len(points)]


class JumpsSection(AfterSampling):
    """Jump previews from every k-th step (and/or listed steps), one row per jump length."""

    name = "jumps"

    def applies(self, adapter: ModelAdapter, prompt: PromptSpec) -> bool:
        """Whenever the prompt has jump settings with at least one point inside its trajectory."""
        jumps = prompt.settings.jumps
        return jumps is not None and bool(jump_points(prompt.settings.steps, jumps.every, jumps.at))

    def bake(
        self, adapter: ModelAdapter, prompt: PromptSpec, request: TrajectoryRequest, trajectory: Trajectory, store: AssetStore
    ) -> dict:
        """Run the prompt's jumps from the recorded states and store one sprite row per jump length."""
        settings = prompt.settings.jumps
        steps = len(trajectory.timesteps)
        points = jump_points(steps, settings.every, settings.at)
        scheduler = adapter.make_scheduler(request.scheduler)
        scheduler.set_timesteps(request.steps, device=adapter.device)
        starts = [
            JumpStart(i, trajectory.timesteps[i], trajectory.noisy_latents[i], trajectory.predicted_latents[i])
            for i in points
        ]
        with torch.inference_mode():
            embeddings = adapter.encode_prompts([prompt.text])
        results = run_jumps(
            adapter, embeddings, scheduler, starts, settings.steps,
            method=settings.method, guidance=request.guidance, seed=request.seed,
        )
        stride = preview_stride(adapter, request, prompt.settings.preview_size)
        with torch.inference_mode():
            decoded = decode_in_batches(adapter, torch.stack([r.x0 for r in results])[..., ::stride, ::stride])
        final_small = trajectory.predicted[-1]
        frame_size = preview_size(request.width, request.height, prompt.settings.preview_size)
        rows = []
        for row, jumps in enumerate(settings.steps):
            mine = [(r, decoded[i]) for i, r in enumerate(results) if r.requested_steps == jumps]
            images = torch.stack([image for _, image in mine] + [final_small])
            # what the judge already finds in each jump's image: from which step the model "knows" the prompt
            verdicts = [verdict(adapter, prompt.text, image) for _, image in mine]
            rows.append(
                {
                    **({"verdicts": verdicts} if any(verdicts) else {}),
                    "steps": jumps,
                    "effective_steps": [len(r.plan.timesteps) for r, _ in mine],
                    "timesteps": [list(r.plan.timesteps) for r, _ in mine],
                    **({"betas": [list(r.plan.betas) for r, _ in mine]} if settings.method == "beta-sum" else {}),
                    "sprite": sprite_entry(store, to_pil(images), frame_size),
                }
            )
        return {
            "jumps": {
                "method": settings.method,
                "points": points,
                "frame_of_step": frame_of_step(points, steps),
                "rows": rows,
            }
        }
