"""CLI stage: what a bake shows while it runs, alone or as one of several processes.

The main process (alone, or process 1 of a sharded bake) draws two rich bars: the whole bake over all
processes (manifests done of those to bake) and its own denoising. Every other process of a sharded bake prints
plain lines prefixed with its place ("[process 2 of 4] cat: baked (3 of 12)"): several live displays on one
terminal would overwrite each other, lines do not.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from generator.cli.progress import console
from generator.progress import ProgressCallback, no_progress


@dataclass(frozen=True)
class BakeDisplay:
    """The callbacks a bake reports into: its own steps, the whole, and event lines."""

    progress: ProgressCallback
    on_whole: ProgressCallback
    on_event: Callable[[str], None]


@contextmanager
def bake_display(index: int, count: int) -> Iterator[BakeDisplay]:
    """Bars for the main process, prefixed lines for the others."""
    if index != 0:
        prefix = f"[process {index + 1} of {count}] "
        yield BakeDisplay(no_progress, no_progress, lambda message: console.print(prefix + message, markup=False,
                                                                                    highlight=False))
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        whole = bar.add_task("all processes" if count > 1 else "manifests", total=None)
        own = bar.add_task("denoising", total=None)

        def report_whole(completed: int, total: int, description: str = "") -> None:
            label = f"{description} (manifests)" if count > 1 else "manifests"
            bar.update(whole, completed=completed, total=total, description=label)

        def report_own(completed: int, total: int, description: str = "") -> None:
            mine = "process 1: " if count > 1 else ""
            bar.update(own, completed=completed, total=total, description=f"{mine}denoising {description}".strip())

        yield BakeDisplay(report_own, report_whole, lambda message: console.print(message, markup=False,
                                                                                   highlight=False))
