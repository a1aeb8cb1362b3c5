"""Shared by every stage: the one atomic file write (temporary file in the same folder, then rename).

A killed process leaves either the old file or the new one, never half of one. A write that fails (disk full,
read-only folder) removes its temporary file and ends as one ``WriteError`` line naming the file, the cause
and what to do; the files already there are untouched, so the same command completes once the cause is fixed.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from generator.errors import UserError

HINTS = {
    errno.ENOSPC: "the disk is full; free some space and run the same command again (what is baked is kept)",
    errno.EDQUOT: "the disk quota is used up; free some space and run the same command again (what is baked is kept)",
    errno.EROFS: "the folder is on a read-only file system; choose another output folder (--out)",
    errno.EACCES: "the folder is not writable; make it writable or choose another output folder (--out)",
    errno.EPERM: "the folder is not writable; make it writable or choose another output folder (--out)",
}


class WriteError(UserError):
    """A file that could not be written (disk full, read-only or missing permissions), as one line."""


def write_failure(path: Path, error: OSError) -> WriteError:
    """One line naming what could not be written, why, and what to do."""
    hint = HINTS.get(error.errno, "nothing was changed; fix the cause and run the same command again")
    return WriteError(f"cannot write {path}: {error.strerror or error}; {hint}")


def atomic_write_with(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary)`` for a temporary file beside ``path``, then rename it over ``path``.

    For writers that want a file name (``torch.save``, safetensors' ``save_file``); the result is world-readable
    (0644) whatever the writer chose, since shipped weights and served sites are read by others.
    """
    path = Path(path)
    temporary: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(descriptor)
        temporary = Path(name)
        write(temporary)
        os.chmod(temporary, 0o644)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())  # a full disk may only say so here
        os.replace(temporary, path)
    except OSError as error:
        _remove(temporary)
        raise write_failure(path, error) from None
    except BaseException:
        _remove(temporary)
        raise


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers (and crashes) never see a partial file."""
    atomic_write_with(path, lambda temporary: temporary.write_bytes(data))


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: sorted keys, one-space indent, a final newline (diffs stay readable)."""
    atomic_write(Path(path), (json.dumps(data, sort_keys=True, indent=1) + "\n").encode("utf-8"))


def _remove(temporary: Path | None) -> None:
    if temporary is not None:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:  # a read-only folder cannot have had one written
            pass
