"""Diffusion stage: our own denoising loop and what generates with it."""
