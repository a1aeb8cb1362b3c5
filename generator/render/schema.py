"""Render stage: validate manifests against the bake stage's JSON Schemas (with the jsonschema package).

Prompt manifests follow ``generator/bake/manifest.schema.json``; chapter manifests follow the definition of their
kind (experiments, training, faithfulness) in ``generator/bake/chapters.schema.json``. Both are checked by
``check_schema``, whose error is one line naming the file and every failing field.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from generator.render.errors import RenderError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "bake" / "manifest.schema.json"
CHAPTERS_SCHEMA_PATH = SCHEMA_PATH.with_name("chapters.schema.json")
SHOWN_ERRORS = 5  # an error message lists at most this many violations


@lru_cache(maxsize=1)
def manifest_schema() -> dict[str, Any]:
    """The manifest schema shipped with the bake stage."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def chapters_schema() -> dict[str, Any]:
    """The chapter manifest schema shipped with the bake stage (every kind; the root dispatches on ``kind``)."""
    return json.loads(CHAPTERS_SCHEMA_PATH.read_text(encoding="utf-8"))


def chapter_schema(kind: str) -> dict[str, Any]:
    """The schema of one chapter manifest kind: its definition in chapters.schema.json, with the shared ones."""
    schema = chapters_schema()
    if kind not in schema["$defs"]:
        raise KeyError(f"chapters.schema.json defines no chapter kind {kind!r}")
    return {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{kind}"}


@lru_cache(maxsize=8)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def schema_errors(instance: Any, schema: dict[str, Any] | None = None) -> list[str]:
    """Every violation as 'path: message' (empty when valid), ordered by location in the document."""
    validator = _validator(json.dumps(schema or manifest_schema(), sort_keys=True))
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors]


def check_schema(path: Path, instance: Any, schema: dict[str, Any] | None = None, what: str = "manifest") -> None:
    """Raise a one-line RenderError naming ``path`` and the failing fields when ``instance`` does not validate."""
    errors = schema_errors(instance, schema)
    if errors:
        shown = "; ".join(errors[:SHOWN_ERRORS])
        more = f" (and {len(errors) - SHOWN_ERRORS} more)" if len(errors) > SHOWN_ERRORS else ""
        raise RenderError(f"{path}: {what} does not match the schema: {shown}{more}")
