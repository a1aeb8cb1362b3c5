"""Shared progress protocol: library code reports, the CLI draws (library code never prints)."""

from __future__ import annotations

from typing import Callable, Protocol


class Progress(Protocol):
    """Receives progress of one long loop: ``progress(completed, total, description)``."""

    def __call__(self, completed: int, total: int, description: str = "") -> None: ...


ProgressCallback = Callable[[int, int, str], None]


def no_progress(completed: int, total: int, description: str = "") -> None:
    """Default progress sink that ignores every report."""
