"""Bake stage: cache keys and cache checks shared by every manifest the bake writes.

A key covers what was asked (a spec hash), the model's weights (a fingerprint) and the code that bakes
(``code_fingerprint``); a manifest is reused only when its key matches and every asset it names exists.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of the code that produces assets (everything but rendering and the CLI).

    A manifest baked by other code is stale even when the version number did not move: a new section or a
    changed encoder must rebake, or the site would mix old and new assets.
    """
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if relative.startswith(("render/", "cli/")):
            continue
        digest.update(relative.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_key(*parts: Any) -> str:
    """A short hash of JSON-serialisable ``parts`` plus the code fingerprint."""
    payload = json.dumps([*parts, code_fingerprint()], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def is_cached(manifest_path: Path, key: str, generated: Path) -> bool:
    """Whether the manifest exists with this key and all its assets are present."""
    from generator.bake.manifest import manifest_assets

    if not manifest_path.exists():
        return False
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError:
        return False
    if manifest.get("provenance", {}).get("cache_key") != key:
        return False
    return all((generated / asset).exists() for asset in manifest_assets(manifest))
