"""Bake stage: the chapter pages a prompt file adds beside its prompts."""
