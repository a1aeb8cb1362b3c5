"""`python -m generator` runs the diffatlas CLI."""

from generator.cli import main

main()
