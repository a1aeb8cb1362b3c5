"""Manifest: the contract between bake and render (JSON Schemas, chapter ids, shared names); no torch."""
