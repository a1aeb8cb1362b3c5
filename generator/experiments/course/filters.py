"""Experiments stage: Gaussian low/high-pass filters (hybrid images) and the image metrics of the baselines."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian of odd length ``size`` (size, )."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and >= 1, got {size}")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    offsets = torch.arange(size, dtype=torch.float64) - size // 2
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def gaussian_blur(images: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (batch, c, h, w), channel by channel.

    Borders are reflected (no dark rim); where the kernel is wider than the image allows (a 33-tap kernel on
    a 16-pixel image), edge pixels are repeated instead.
    """
    kernel = gaussian_kernel(size, sigma).to(images.device, torch.float32)
    channels, pad = images.shape[1], size // 2
    mode = "reflect" if pad < min(images.shape[-2:]) else "replicate"
    x = F.pad(images.float(), (pad, pad, pad, pad), mode=mode)
    x = F.conv2d(x, kernel.view(1, 1, 1, size).repeat(channels, 1, 1, 1), groups=channels)
    x = F.conv2d(x, kernel.view(1, 1, size, 1).repeat(channels, 1, 1, 1), groups=channels)
    return x.to(images.dtype)


def low_pass(images: torch.Tensor, size: int = 33, sigma: float = 2.0) -> torch.Tensor:
    """The low frequencies: a Gaussian blur (Oliva et al. 2006 hybrid images; factorized diffusion)."""
    return gaussian_blur(images, size, sigma)


def high_pass(images: torch.Tensor, size: int = 33, sigma: float = 2.0) -> torch.Tensor:
    """The high frequencies: the image minus its low-pass, so low_pass + high_pass is the identity."""
    return images - low_pass(images, size, sigma)


def blur_size(sigma: float) -> int:
    """An odd kernel length covering +-3 sigma."""
    return 2 * math.ceil(3 * sigma) + 1


def mse(image: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean squared error of images in [0, 1]."""
    return float(((image.float() - reference.float()) ** 2).mean())


def psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]: 10 log10(1 / MSE) (capped at 100 dB when equal)."""
    error = mse(image, reference)
    return 100.0 if error <= 1e-10 else 10 * math.log10(1.0 / error)
