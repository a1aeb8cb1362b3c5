"""Render stage: the chapter pages (course, training, faithfulness)."""
