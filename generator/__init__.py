"""diffusion-atlas: bake diffusion-model experiments into an explorable static site."""

__version__ = "0.1.0"
