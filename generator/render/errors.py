"""Render stage: the one error type it raises.

A manifest that does not validate, an index that names a missing manifest, or an asset that is
not on disk all end the render with a `RenderError` whose message says which file and which field.
"""

from __future__ import annotations

from generator.errors import UserError


class RenderError(UserError):
    """The generated data cannot be rendered (bad manifest or index, missing asset)."""
