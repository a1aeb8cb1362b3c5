"""Render stage: write a render's pages and embeds so that an interrupted render leaves the previous site whole.

A render first holds every output in memory (generator/render/site.py), then publishes it in two phases:

1. stage: every file whose content changed is written in full to a hidden temporary file next to its
   target (``.<name>.<random>.tmp``; MkDocs skips dot files). Nothing the site serves is touched yet, so
   an error, a full disk or Ctrl-C here removes the temporary files and leaves the old site as it was;
2. commit: each staged file is renamed over its target (``os.replace``, atomic per file, no data copied),
   then pages of prompts no longer in the index are removed.

Files whose content did not change are not rewritten, so their modification times stay (``mkdocs serve``
rebuilds only what changed).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable


def _staged_copy(path: Path, text: str) -> Path:
    """Write `text` to a new hidden temporary file next to `path`; returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _unchanged(path: Path, text: str) -> bool:
    """True when `path` already holds exactly `text`."""
    try:
        return path.read_text(encoding="utf-8") == text
    except (FileNotFoundError, UnicodeDecodeError, IsADirectoryError):
        return False


def stage(outputs: dict[Path, str]) -> list[tuple[Path, Path]]:
    """Write every changed output to a temporary file beside it: (temporary, target) pairs, nothing published."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in outputs.items():
            if not _unchanged(path, text):
                staged.append((_staged_copy(path, text), path))
    except BaseException:
        discard(staged)
        raise
    return staged


def discard(staged: Iterable[tuple[Path, Path]]) -> None:
    """Remove staged temporary files (after a failed or interrupted render)."""
    for tmp, _ in staged:
        tmp.unlink(missing_ok=True)


def commit(staged: list[tuple[Path, Path]]) -> list[Path]:
    """Rename every staged file over its target; returns the targets (the files that changed)."""
    done = []
    try:
        for tmp, target in staged:
            os.replace(tmp, target)
            done.append(target)
    except BaseException:
        discard(staged[len(done):])
        raise
    return done


def remove_stale(folder: Path, pattern: str, keep: set[Path]) -> list[Path]:
    """Delete the files in `folder` matching `pattern` that are not in `keep`; returns them."""
    removed = []
    if folder.is_dir():
        for path in sorted(folder.glob(pattern)):
            if path.is_file() and path not in keep:
                path.unlink()
                removed.append(path)
    return removed


def publish(outputs: dict[Path, str], stale: Iterable[tuple[Path, str, set[Path]]]) -> tuple[list[Path], list[Path]]:
    """Stage then commit `outputs`, then remove stale files (folder, glob, keep): (changed, removed)."""
    changed = commit(stage(outputs))
    removed = [path for folder, pattern, keep in stale for path in remove_stale(folder, pattern, keep)]
    return changed, removed
