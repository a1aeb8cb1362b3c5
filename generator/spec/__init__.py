"""Spec stage: prompt files (YAML) -> validated frozen dataclasses; reads nothing but the YAML."""
