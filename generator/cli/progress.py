"""CLI stage: rich progress bars (with ETA) that library code reports into through a callback."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from generator.progress import ProgressCallback

console = Console(stderr=True)


@contextmanager
def progress_bar(title: str) -> Iterator[ProgressCallback]:
    """Yield a ``(completed, total, description)`` callback that drives one rich progress bar."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(title, total=None)

        def report(completed: int, total: int, description: str = "") -> None:
            bar.update(task, completed=completed, total=total, description=f"{title} {description}".strip())

        yield report


@contextmanager
def training_progress(title: str) -> Iterator[ProgressCallback]:
    """A rich bar on a terminal; one plain line per minute in a log file (background training runs)."""
    if console.is_terminal:
        with progress_bar(title) as report:
            yield report
        return
    start = time.monotonic()
    last = [-1e9]

    def report(completed: int, total: int, description: str = "") -> None:
        now = time.monotonic()
        if now - last[0] >= 60 or completed == total:
            last[0] = now
            print(f"{title} {completed}/{total} {description} [{now - start:.0f}s]", file=sys.stderr, flush=True)

    yield report


def quiet_libraries() -> None:
    """Keep third-party warnings out of the progress display (our own errors still show)."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    logging.getLogger("diffusers").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:  # the libraries' own loading bars would interleave with ours
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

        diffusers_logging.disable_progress_bar()
        transformers_logging.disable_progress_bar()
    except ImportError:
        pass
