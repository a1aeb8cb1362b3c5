"""Manifest: the JSON Schemas every manifest follows, and validation against them (the jsonschema package).

Prompt manifests follow ``generator/manifest/prompt.schema.json``; chapter manifests follow the definition of their
kind (experiments, training, faithfulness) in ``generator/manifest/chapters.schema.json``. Both are checked by
``schema_errors``; render turns them into one line naming the file and every failing field
(``generator.render.load.check_schema``), bake's tests check what it writes with the same schemas.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parent / "prompt.schema.json"
CHAPTERS_SCHEMA_PATH = SCHEMA_PATH.with_name("chapters.schema.json")


@lru_cache(maxsize=1)
def manifest_schema() -> dict[str, Any]:
    """The schema of a prompt manifest."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def chapters_schema() -> dict[str, Any]:
    """The chapter manifest schema (every kind; the root dispatches on ``kind``)."""
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
