"""Render stage: the chapter pages (course, training, faithfulness): the loop in pages.py, one module per kind."""

from __future__ import annotations
