"""Bake stage: optional manifest sections (DAAM, jumps, ...) that ride along with a prompt's trajectory.

A section's ``capture`` is a context manager entered around the trajectory's sampling (so it can install
hooks, as DAAM does) that yields a finisher; after sampling, ``finisher(trajectory, store)`` returns the
manifest sections it adds. Sections with nothing to hook derive from ``AfterSampling`` and write only
``bake``. Sections are listed by import path so that loading them stays lazy.
"""

from __future__ import annotations

import functools
import importlib
from contextlib import AbstractContextManager, contextmanager
from typing import Callable, Iterator, Protocol

from generator.bake.store import AssetStore
from generator.experiments.prompt.trajectory import Trajectory, TrajectoryRequest
from generator.models.base import ModelAdapter
from generator.spec.prompt_set import PromptSpec

Finisher = Callable[[Trajectory, AssetStore], dict]


class Section(Protocol):
    """One optional part of a prompt's manifest."""

    name: str

    def applies(self, adapter: ModelAdapter, prompt: PromptSpec) -> bool:
        """Whether this prompt, on this model, gets the section."""
        ...

    def capture(
        self, adapter: ModelAdapter, prompt: PromptSpec, request: TrajectoryRequest
    ) -> AbstractContextManager[Finisher]:
        """Entered around sampling; yields the function that bakes the section afterwards."""
        ...


class AfterSampling:
    """A section with nothing to hook during sampling: ``bake`` reads the recorded trajectory afterwards."""

    name: str

    @contextmanager
    def capture(self, adapter: ModelAdapter, prompt: PromptSpec, request: TrajectoryRequest) -> Iterator[Finisher]:
        """Nothing to hook: the finisher hands the recorded trajectory and the store to ``bake``."""
        yield functools.partial(self.bake, adapter, prompt, request)

    def bake(
        self, adapter: ModelAdapter, prompt: PromptSpec, request: TrajectoryRequest, trajectory: Trajectory, store: AssetStore
    ) -> dict:
        """The manifest sections this one adds (assets stored)."""
        raise NotImplementedError


SECTIONS: tuple[str, ...] = (  # "module:ClassName" of each Section, in manifest order
    "generator.bake.prompt.jumps:JumpsSection",
    "generator.bake.prompt.extra_trajectories:ProbeSection",
    "generator.bake.prompt.tokens:TokensSection",
    "generator.bake.prompt.pipeline:PipelineSection",
    "generator.bake.prompt.daam:DaamSection",
)


def load_sections() -> list[Section]:
    """Instances of every registered section."""
    sections = []
    for reference in SECTIONS:
        module_name, class_name = reference.split(":")
        sections.append(getattr(importlib.import_module(module_name), class_name)())
    return sections
