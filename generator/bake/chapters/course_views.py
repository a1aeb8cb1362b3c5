"""Bake stage: the course chapter's visual anagrams and hybrid images, each tried at every seed of its entry.

The course calls hybrids "unrobust": how often an anagram or hybrid works is part of the lesson. So each entry
runs once per seed of its ``seeds:`` list; the model's judge reads every view of every result against that view's
prompt (anagram: upright as prompt 1, turned 180° as prompt 2; hybrid: from afar, i.e. the same Gaussian low-pass
the sampler used, as prompt 1, up close as prompt 2), and the page shows

* the first seed whose views all pass (``pick.rule`` "first-pass"), or, when none passed, the one whose views hold
  the most of what was asked ("best"; its verdicts then disagree, and say so unless the entry is ``expect: fail``);
  a model without a judge shows the first seed ("first");
* every seed tried, with what the judge found in each view (``pick.seeds[].views[].judgement``: the same words as a
  verdict, stored under another key because only the shown result is a published figure) and how many passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from generator.bake.chapters import course_slides
from generator.evaluate.verdicts import verdict
from generator.experiments.course.filters import low_pass
from generator.experiments.course.views import ViewsRun, flip180
from generator.spec.experiments import ViewsSpec

VIEW_NAMES = {"anagrams": ("upright", "turned 180°"), "hybrids": ("from afar", "up close")}


@dataclass(frozen=True)
class Attempt:
    """One seed of an entry: its run, each view's image (3, H, W) and what the judge found in it (None: no judge)."""

    seed: int
    run: ViewsRun
    views: tuple[torch.Tensor, torch.Tensor]
    judgements: tuple[dict | None, dict | None]

    @property
    def judged(self) -> bool:
        """Whether the judge read both views."""
        return all(j is not None for j in self.judgements)

    @property
    def passed(self) -> bool | None:
        """Whether both views read as their prompts (None without a judge)."""
        return all(j["agrees"] for j in self.judgements) if self.judged else None

    @property
    def score(self) -> float | None:
        """The share of every claim of both views that holds (None without a judge)."""
        if not self.judged:
            return None
        claims = [c for j in self.judgements for c in j["claims"]]
        return sum(c["correct"] for c in claims) / len(claims)


def view_images(image: torch.Tensor, entry: ViewsSpec, section: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The two ways of looking at a result, in the order of the entry's prompts (see the module docstring)."""
    if section == "anagrams":
        return image, flip180(image)
    far = low_pass(image[None], entry.kernel_size, entry.sigma)[0]  # (3, H, W) in [0, 1]: a blur stays in range
    return far, image


def pick(attempts: list[Attempt]) -> tuple[Attempt, str]:
    """(the attempt to show, why): the first that passed, else the best scored, else (no judge) the first."""
    if not all(a.judged for a in attempts):
        return attempts[0], "first"
    passed = [a for a in attempts if a.passed]
    if passed:
        return passed[0], "first-pass"
    return max(attempts, key=lambda a: (a.score, -attempts.index(a))), "best"


def bake_views(baker: Any, entry: ViewsSpec, section: str, run_views: Callable[..., list[ViewsRun]]) -> dict:
    """Run ``entry`` at each of its seeds (one batch), judge every view, and return its manifest entry (assets
    stored); ``run_views`` is ``visual_anagrams`` or ``hybrid_images``."""
    adapter = baker.adapter
    extra = {"kernel_size": entry.kernel_size, "sigma": entry.sigma} if section == "hybrids" else {}
    attempts = []
    results = run_views(adapter, entry.prompts, seeds=entry.all_seeds(), steps=entry.run.steps,
                        guidance=entry.run.guidance, scheduler=baker.scheduler, allow_latent=entry.allow_latent, **extra)
    for seed, result in zip(entry.all_seeds(), results):
        views = view_images(result.run.image, entry, section)
        judgements = tuple(verdict(adapter, prompt, view) for prompt, view in zip(entry.prompts, views))
        attempts.append(Attempt(seed, result, views, judgements))
    shown, rule = pick(attempts)
    names = VIEW_NAMES[section]
    passed = [a.passed for a in attempts]
    manifest = {
        "id": entry.id, "prompts": list(entry.prompts), "steps": entry.run.steps, "guidance": entry.run.guidance,
        "seed": shown.seed, "warning": shown.run.warning, "result": baker.image(shown.run.run.image),
        "views": [{"view": name, "prompt": prompt, "image": baker.judged_image(view, prompt, entry.expect)}
                  for name, prompt, view in zip(names, entry.prompts, shown.views)],
        "trajectory": baker.trajectory(shown.run.run),
        "pick": {"rule": rule, "tried": len(attempts),
                 "passed": None if None in passed else sum(passed),
                 "seeds": [{"seed": a.seed, "passed": a.passed, "score": a.score, "image": baker.image(a.run.run.image),
                            "views": [{"view": name, "prompt": prompt, "judgement": judgement}
                                      for name, prompt, judgement in zip(names, entry.prompts, a.judgements)]}
                           for a in attempts]},
        **extra,
    }
    manifest["downloads"] = course_slides.views_download(baker, manifest, shown.run.run, shown.views, section)
    return manifest
