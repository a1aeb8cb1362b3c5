"""Bake stage: manifest contents (provenance, settings, sections), the merged index, and schema access."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from generator.spec.prompt_set import PromptSet, PromptSpec

PACKAGES = ("torch", "diffusers", "transformers", "numpy", "pillow")


def versions() -> dict[str, str]:
    """Library versions that produced the assets."""
    from generator import __version__

    found = {"diffusion-atlas": __version__, "python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "absent"
    return found


def provenance(spec_hash: str, key: str, library_versions: dict[str, str] | None = None) -> dict:
    """A manifest's provenance block: the spec's hash, the cache key and the library versions (now, unless given)."""
    return {"spec_hash": spec_hash, "cache_key": key,
            "versions": versions() if library_versions is None else library_versions}


def build_manifest(adapter: Any, prompt: PromptSpec, request: Any, key: str, sections: dict,
                   library_versions: dict) -> dict:
    """One prompt's manifest: what was asked, with what, and where its assets are."""
    return {
        "schema": 1,
        "id": prompt.id,
        "text": prompt.text,
        "model": {
            "id": adapter.id,
            "weight_hash": adapter.weight_hash,
            "prediction_type": adapter.prediction_type,
            "pixel_space": adapter.capabilities.pixel_space,
            "weights_format": getattr(adapter, "weights_format", "unknown"),  # safetensors, pickle (parts), random
        },
        "settings": {
            "steps": request.steps,
            "guidance": request.guidance,
            "seed": request.seed,
            "width": request.width,
            "height": request.height,
            "scheduler": request.scheduler,
        },
        "provenance": provenance(prompt.spec_hash(adapter.id), key, library_versions),
        **({"alongside": prompt.alongside} if prompt.alongside else {}),
        **sections,
    }


def manifest_assets(value: Any) -> Iterator[str]:
    """Every asset path a manifest references (any section, any depth)."""
    if isinstance(value, str) and value.startswith("assets/"):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from manifest_assets(item)
    elif isinstance(value, list):
        for item in value:
            yield from manifest_assets(item)


def merge_index(generated: Path, prompt_sets: PromptSet | list[PromptSet]) -> dict:
    """The index of the sets' prompts that have manifests (from this bake or another shard), in file order."""
    prompt_sets = [prompt_sets] if isinstance(prompt_sets, PromptSet) else prompt_sets
    entries = []
    for prompt in (p for prompt_set in prompt_sets for p in prompt_set.prompts):
        path = generated / "prompts" / f"{prompt.id}.json"
        if not path.exists():
            continue
        manifest = json.loads(path.read_text())
        entries.append(
            {
                "id": prompt.id,
                "text": manifest["text"],
                "manifest": f"prompts/{prompt.id}.json",
                "thumbnail": manifest["final"]["src"],
            }
        )
    first = prompt_sets[0]
    return {"schema": 1, "title": first.title, "model": first.model, "prompts": entries}
