"""Bake stage: cache keys and cache checks shared by every manifest the bake writes.

A key covers what was asked (a spec hash), the model's weights (a fingerprint) and the code that bakes
(``code_fingerprint``); a manifest is reused only when its key matches, its bytes still hash to the
``provenance.content_hash`` sealed into it when it was written, and every asset it names exists with bytes that
hash to its name. Anything damaged on disk is rebaked, never published.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from generator.bake.store import CONTENT_HASH, asset_intact, manifest_content_hash


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


def cache_problem(manifest_path: Path, key: str, generated: Path) -> str | None:
    """Why the manifest cannot be reused ('absent', 'stale' or what is damaged), or None when it can."""
    from generator.bake.manifest import manifest_assets

    if not manifest_path.exists():
        return "absent"
    damaged = f"damaged: {manifest_path.name} does not match its content hash"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        provenance = manifest["provenance"]
        if CONTENT_HASH not in provenance:  # written before manifests were sealed
            return "stale"
        if provenance[CONTENT_HASH] != manifest_content_hash(manifest):
            return damaged
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return damaged
    if provenance.get("cache_key") != key:
        return "stale"
    for asset in manifest_assets(manifest):
        if not (generated / asset).is_file():
            return f"damaged: {asset} is missing"
        if not asset_intact(generated / asset):
            return f"damaged: {asset} does not match its content hash"
    return None


def is_cached(manifest_path: Path, key: str, generated: Path) -> bool:
    """Whether the manifest is intact with this key and all its assets are present and intact."""
    return cache_problem(manifest_path, key, generated) is None
