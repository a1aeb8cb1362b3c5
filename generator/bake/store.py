"""Bake stage: the content-addressed asset store and canonical JSON.

An asset's name is the hash of its bytes, so identical frames or images are stored once and a re-bake that
produces the same bytes changes nothing. Every write is ``generator.files.atomic_write`` (a temporary file in
the same folder renamed over the target): a killed bake leaves either the old file or the new one, never half
of one, and a failed write (disk full, read-only folder) ends as one ``WriteError`` line.

Manifests (JSON with a ``provenance`` section) are sealed: ``provenance.content_hash`` is the sha256 of their
canonical bytes without it, so the bake cache notices a manifest damaged on disk (as asset names do for assets).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from generator.files import atomic_write, write_failure

CONTENT_HASH = "content_hash"


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


def manifest_content_hash(manifest: dict) -> str:
    """sha256 of a manifest's canonical bytes, its own ``provenance.content_hash`` left out."""
    provenance = {k: v for k, v in manifest["provenance"].items() if k != CONTENT_HASH}
    return hashlib.sha256(json_bytes({**manifest, "provenance": provenance})).hexdigest()


def sealed(value: Any) -> Any:
    """A manifest (a dict with a ``provenance`` dict) with its content hash added; anything else unchanged."""
    if not isinstance(value, dict) or not isinstance(value.get("provenance"), dict):
        return value
    return {**value, "provenance": {**value["provenance"], CONTENT_HASH: manifest_content_hash(value)}}


def write_json(path: Path, value: Any) -> None:
    """Atomically write canonical JSON (manifests sealed); an unchanged file is left as it is."""
    data = json_bytes(sealed(value))
    try:
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return  # nothing to write (a fully cached bake also works in a folder it cannot write)
    except OSError:
        pass
    atomic_write(path, data)


def asset_intact(path: Path) -> bool:
    """Whether a stored asset's bytes still hash to its name."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16] == path.name.split(".", 1)[0]
    except OSError:
        return False


class AssetStore:
    """Content-addressed files under ``root/assets/``; ``put`` returns the path relative to ``root``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.folder = self.root / "assets"

    def put(self, data: bytes, extension: str) -> str:
        """Store bytes once; the name is the first 16 hex digits of their sha256 (a damaged copy is replaced)."""
        name = f"{hashlib.sha256(data).hexdigest()[:16]}.{extension}"
        target = self.folder / name
        if not (target.exists() and asset_intact(target)):
            atomic_write(target, data)
        return f"assets/{name}"

    def check_writable(self) -> None:
        """Raise the one-line ``WriteError`` now when the output folder cannot be written (before any work)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            descriptor, probe = tempfile.mkstemp(dir=self.root, prefix=".write-check.", suffix=".tmp")
            os.close(descriptor)
            os.unlink(probe)
        except OSError as error:
            raise write_failure(self.root, error) from None

    def clean_temporaries(self) -> int:
        """Remove temporary files left by a killed bake; returns how many."""
        stale = list(self.root.rglob(".*.tmp")) if self.root.exists() else []
        for path in stale:
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                raise write_failure(path, error) from None
        return len(stale)
