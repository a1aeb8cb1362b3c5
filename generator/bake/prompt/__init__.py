"""Bake stage: a prompt's manifest sections (trajectory, DAAM, jumps, tokens, compare/variants/map)."""
