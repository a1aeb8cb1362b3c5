"""Render stage: baked manifests -> MkDocs pages, gallery and standalone embed pages (no torch)."""

from __future__ import annotations

from generator.manifest.schema import manifest_schema, schema_errors
from generator.render.errors import RenderError
from generator.render.load import PromptView, SiteIndex, load_index, load_manifest
from generator.render.site import RenderResult, render_site

__all__ = [
    "PromptView",
    "RenderError",
    "RenderResult",
    "SiteIndex",
    "load_index",
    "load_manifest",
    "manifest_schema",
    "render_site",
    "schema_errors",
]
