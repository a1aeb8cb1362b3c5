"""Bake stage: optional manifest sections (DAAM, jumps, ...) that ride along with a prompt's trajectory.

A section's ``capture`` is a context manager entered around the trajectory's sampling (so it can install
hooks, as DAAM does) that yields a finisher; after sampling, ``finisher(trajectory, store)`` returns the
manifest sections it adds. Sections with nothing to hook derive from ``AfterSampling`` and write only
``bake``. Every section is registered in generator/bake/prompt/registry.py.
"""

from __future__ import annotations

import functools
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
