"""Errors shared by every stage."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (bad input, missing weights, absent device).

    The CLI shows it as one line on stderr and exits with code 2, never with a traceback.
    """
