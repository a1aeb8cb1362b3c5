"""Render stage: validate manifests against the bake stage's JSON Schema, without extra dependencies.

Only the keywords the manifest schema uses are implemented (type, const, enum, required,
properties, additionalProperties, items, pattern, minimum, maximum, minLength, minItems and local
`$ref`s); a keyword the schema uses that this validator does not know is an error, so the schema
cannot silently outgrow it. The tests cross-check fixtures with the `jsonschema` package.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "bake" / "manifest.schema.json"

_ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description", "default", "examples", "$comment"}
_KNOWN = _ANNOTATIONS | {
    "$ref", "type", "const", "enum", "required", "properties", "additionalProperties", "items",
    "pattern", "minimum", "maximum", "minLength", "minItems",
}
_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
}


@lru_cache(maxsize=1)
def manifest_schema() -> dict[str, Any]:
    """The manifest schema shipped with the bake stage."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def schema_errors(instance: Any, schema: dict[str, Any] | None = None) -> list[str]:
    """Every violation of `schema` (default: the manifest schema), as 'json.path: message' lines."""
    root = manifest_schema() if schema is None else schema
    errors: list[str] = []
    _check(instance, root, root, "$", errors)
    return errors


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported, got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str, out: list[str]) -> None:
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ValueError(f"schema keyword(s) {sorted(unknown)} at {path} are not supported by the renderer")
    if "$ref" in schema:
        _check(value, _resolve(schema["$ref"], root), root, path, out)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            out.append(f"{path}: expected {' or '.join(types)}, got {type(value).__name__} {value!r:.60}")
            return
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: must be {schema['const']!r}, got {value!r:.60}")
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: must be one of {schema['enum']}, got {value!r:.60}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append(f"{path}: must have at least {schema['minLength']} character(s)")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{path}: {value!r:.60} does not match {schema['pattern']}")
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{path}: must be >= {schema['minimum']}, got {value}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{path}: must be <= {schema['maximum']}, got {value}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.append(f"{path}: must have at least {schema['minItems']} item(s)")
        if "items" in schema:
            for i, item in enumerate(value):
                _check(item, schema["items"], root, f"{path}[{i}]", out)
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{path}: missing required field {key!r}")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                _check(item, props[key], root, f"{path}.{key}", out)
            elif extra is False:
                out.append(f"{path}: unexpected field {key!r}")
            elif isinstance(extra, dict):
                _check(item, extra, root, f"{path}.{key}", out)
