"""Render stage: which prompts share a page (the same prompt on several models, switchable in place).

A prompt whose manifest says ``alongside: ID`` (the prompt file's key) is the same prompt baked on another
model. When ``ID`` is in the index, it has no page of its own: it is shown on ``ID``'s page as a second view,
and ``ID``'s gallery card stands for both. When ``ID`` is not in the index (only one file was baked), it keeps
its own page. Reads only the loaded index (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.render.errors import RenderError
from generator.render.load import PromptView


@dataclass(frozen=True)
class PageGroup:
    """One prompt page: its owner (whose id names the page) and the same prompt on other models, in index order."""

    owner: PromptView
    others: tuple[PromptView, ...] = ()

    @property
    def views(self) -> tuple[PromptView, ...]:
        """Every prompt the page shows, the owner first."""
        return (self.owner, *self.others)


def page_groups(prompts: tuple[PromptView, ...]) -> list[PageGroup]:
    """The pages of ``prompts``, in index order; a RenderError when an ``alongside`` cannot share its page."""
    by_id = {p.id: p for p in prompts}
    others: dict[str, list[PromptView]] = {}
    for p in prompts:
        target = p.manifest.get("alongside")
        if target is None or target not in by_id:
            continue
        owner = by_id[target]
        if owner.manifest.get("alongside") in by_id:
            raise RenderError(f"prompt {p.id!r}: alongside {target!r}, which is itself shown alongside "
                              f"{owner.manifest['alongside']!r} (name the page's own prompt)")
        if p.text != owner.text:
            raise RenderError(f"prompt {p.id!r}: alongside {target!r}, but its text {p.text!r} is not "
                              f"{owner.text!r} (a page shows one prompt on several models)")
        if p.model["id"] == owner.model["id"]:
            raise RenderError(f"prompt {p.id!r}: alongside {target!r} on the same model {p.model['id']!r}")
        others.setdefault(target, []).append(p)
    return [PageGroup(p, tuple(others.get(p.id, ()))) for p in prompts
            if p.manifest.get("alongside") not in by_id]


def model_label(p: PromptView) -> str:
    """A short name for the model a view was made with: its id and the space it denoises in."""
    space = "pixel space" if p.model.get("pixel_space") else "latent space"
    return f"{p.model['id']} ({space})"
