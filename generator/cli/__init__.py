"""CLI stage: the `diffatlas` command. Library errors meant for users become one line and exit code 2."""

from __future__ import annotations

import sys

# Importing the command modules registers their commands on ``app``.
from generator.cli import commands, daam, daam_eval, digits, latent, shapes  # noqa: E402,F401
from generator.cli.app import app
from generator.errors import UserError


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


__all__ = ["app", "main"]
