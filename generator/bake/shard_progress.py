"""Bake stage: how far every process of a sharded bake is, so the main process can show the whole.

Each process writes ``progress-<index>.json`` (parts done, parts in its share, finished or not) into the bake's
lock folder (generator/bake/lock.py): the files exist only while the bake runs and leave with the lock, so the
finished output is the same as a single process's. The main process sums them. Writes are atomic and throttled
(a denoising step of a tiny model takes milliseconds; the board needs a few updates a second at most).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from generator.files import atomic_write

WRITE_INTERVAL_S = 0.5


@dataclass(frozen=True)
class Whole:
    """The bake as a whole: parts done and to do over all processes, and how many processes finished."""

    done: int
    total: int
    finished: int
    processes: int


class ProgressBoard:
    """One process's line on the shared board, and the sum of all lines (read by the main process)."""

    def __init__(self, folder: Path, index: int, count: int):
        self.folder, self.index, self.count = Path(folder), index, count
        self.written_at = 0.0

    def path(self, index: int) -> Path:
        """Where process ``index`` writes its line."""
        return self.folder / f"progress-{index}.json"

    def report(self, done: float, total: int, finished: bool = False) -> None:
        """Write this process's progress (``done`` may count a part in progress as a fraction)."""
        now = time.monotonic()
        if not finished and now - self.written_at < WRITE_INTERVAL_S:
            return
        self.written_at = now
        line = {"done": round(done, 3), "total": total, "finished": finished}
        atomic_write(self.path(self.index), json.dumps(line).encode())

    def whole(self) -> Whole:
        """The sum over every process's line (a process not yet started counts as nothing done)."""
        done, total, finished = 0.0, 0, 0
        for index in range(self.count):
            try:
                line = json.loads(self.path(index).read_text())
            except (OSError, ValueError):
                continue
            done += float(line.get("done", 0))
            total += int(line.get("total", 0))
            finished += bool(line.get("finished"))
        return Whole(int(done), total, finished, self.count)
