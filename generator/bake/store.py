"""Bake stage: the content-addressed asset store and atomic file writes.

An asset's name is the hash of its bytes, so identical frames or images are stored once and a re-bake that
produces the same bytes changes nothing. Every write goes to a temporary file in the same folder and is then
renamed over the target: a killed bake leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers (and crashes) never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(descriptor, 0o644)  # mkstemp makes 0600; the site is served to others
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def round_floats(value: Any, digits: int = 5) -> Any:
    """Round every float in a JSON-like structure (stable, compact manifests)."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: round_floats(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [round_floats(v, digits) for v in value]
    return value


def json_bytes(value: Any) -> bytes:
    """Canonical JSON: sorted keys, rounded floats, trailing newline."""
    return (json.dumps(round_floats(value), sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()


def write_json(path: Path, value: Any) -> None:
    """Atomically write canonical JSON."""
    atomic_write(path, json_bytes(value))


class AssetStore:
    """Content-addressed files under ``root/assets/``; ``put`` returns the path relative to ``root``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.folder = self.root / "assets"

    def put(self, data: bytes, extension: str) -> str:
        """Store bytes once; the name is the first 16 hex digits of their sha256."""
        name = f"{hashlib.sha256(data).hexdigest()[:16]}.{extension}"
        target = self.folder / name
        if not target.exists():
            atomic_write(target, data)
        return f"assets/{name}"

    def clean_temporaries(self) -> int:
        """Remove temporary files left by a killed bake; returns how many."""
        stale = list(self.root.rglob(".*.tmp")) if self.root.exists() else []
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)
