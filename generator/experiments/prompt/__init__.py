"""Experiments stage: what a prompt page shows (trajectory, jumps, compare, text view, map)."""
