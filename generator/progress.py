"""Shared progress protocol: library code reports, the CLI draws (library code never prints)."""

from __future__ import annotations

from typing import Callable


ProgressCallback = Callable[[int, int, str], None]


def no_progress(completed: int, total: int, description: str = "") -> None:
    """Default progress sink that ignores every report."""


def progress_counter(progress: ProgressCallback, total: int, description: str = "") -> Callable[[str], None]:
    """Report 0 of ``total`` done now; each call of the returned ``tick(label)`` reports one more part done.

    ``tick()`` without a label reports under ``description``.
    """
    done = 0

    def tick(label: str = description) -> None:
        nonlocal done
        done += 1
        progress(done, total, label)

    progress(0, total, description)
    return tick
