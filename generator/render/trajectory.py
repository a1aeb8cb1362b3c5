"""Render stage: what the trajectory widget (templates/trajectory.html.j2) sees, for prompt pages and chapter figures.

A trajectory view names the widget's step group, its timesteps as the widget prints them, its two sprite sheets
(x_t and predicted x0, `generator.render.paths.sprite_view`) and the URLs of its embed page and of the page it
belongs to, all relative to the file being written. ``embed(widget)`` gives the URL of the owner's other embed
pages (a prompt's ``daam``, ``jumps``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from generator.render.load import PromptView
from generator.render.paths import embed_links, relurl, sprite_context


def format_timestep(t: float) -> str:
    """999.0 -> '999', 951.666 -> '951.7' (how the widgets print t)."""
    return str(int(t)) if float(t).is_integer() else f"{t:.1f}"


def trajectory_view(ident: str, group: str, title: str, steps: int, timesteps: Sequence[float],
                    sprites: dict[str, dict[str, Any]], embed: Callable[[str], str], widget: str,
                    page_url: str) -> dict[str, Any]:
    """The widget's context; ``sprites`` holds the ``noisy`` and ``predicted`` views, its embed is ``embed(widget)``."""
    return {
        "id": ident,
        "group": group,
        "title": title,
        "steps": steps,
        "timesteps": ",".join(format_timestep(t) for t in timesteps),
        "first_t": format_timestep(timesteps[0]) if timesteps else "0",
        "noisy": sprites["noisy"],
        "predicted": sprites["predicted"],
        "embed_url": embed(widget),
        "embed": embed,
        "page_url": page_url,
    }


def trajectory_context(
    p: PromptView, generated_dir: Path, embed_dir: Path, from_dir: Path, page_file: Path
) -> dict[str, Any]:
    """A prompt's trajectory view, with URLs relative to `from_dir` (where the HTML lives)."""
    sprites = {"noisy": sprite_context(p.noisy, generated_dir, from_dir),
               "predicted": sprite_context(p.predicted, generated_dir, from_dir)}
    return trajectory_view(p.id, f"traj-{p.id}", p.title, p.steps, p.timesteps, sprites,
                           embed_links(embed_dir, p.id, from_dir), "trajectory", relurl(page_file, from_dir))
