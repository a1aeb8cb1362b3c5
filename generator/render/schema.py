"""Render stage: validate manifests against the bake stage's JSON Schema (with the jsonschema package)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "bake" / "manifest.schema.json"


@lru_cache(maxsize=1)
def manifest_schema() -> dict[str, Any]:
    """The manifest schema shipped with the bake stage."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=4)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def schema_errors(instance: Any, schema: dict[str, Any] | None = None) -> list[str]:
    """Every violation as 'path: message' (empty when valid), ordered by location in the document."""
    validator = _validator(json.dumps(schema or manifest_schema(), sort_keys=True))
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors]
