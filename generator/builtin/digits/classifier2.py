"""Built-in models: the independent MNIST judge, a second classifier that shares nothing with the shipped one
but the training images.

The shipped judge (``classifier.py``) is a BatchNorm CNN with 3x3 convolutions and global average pooling,
trained with Adam, one-cycle learning rate, 2-pixel shifts and seed 0. This one is a LeNet-style network
(LeCun et al. 1998): 5x5 valid convolutions, no normalisation layers, a flattening MLP head with dropout,
trained with SGD + Nesterov momentum and weight decay, a cosine learning rate, random rotations, scales and
shifts, and seed 1. Where the two agree on a generated digit, the verdict does not hang on one network's
quirks; where they disagree, the sample is ambiguous.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from generator.builtin.digits.classifier import fit
from generator.progress import ProgressCallback, no_progress

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # pixel statistics of MNIST's training set (standardised inside the model)


class LeNetClassifier(nn.Module):
    """LeNet-style CNN: (N, 1, 28, 28) in [0, 1] -> (N, 10) logits."""

    def __init__(self, channels: tuple[int, int] = (16, 32), hidden: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        self.channels, self.hidden = tuple(channels), hidden
        first, second = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, first, 5), nn.ReLU(), nn.MaxPool2d(2),  # (N, c1, 12, 12)
            nn.Conv2d(first, second, 5), nn.ReLU(), nn.MaxPool2d(2),  # (N, c2, 4, 4)
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(second * 16, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) images in [0, 1] -> (N, 10) logits."""
        return self.head(self.features((x - MNIST_MEAN) / MNIST_STD))


@dataclass(frozen=True)
class Classifier2Config:
    """Training settings of the independent judge (every one differs from the shipped judge's)."""

    channels: tuple[int, int] = (16, 32)
    hidden: int = 128
    dropout: float = 0.3
    epochs: int = 3
    batch_size: int = 128
    learning_rate: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 1
    rotate_degrees: float = 10.0  # random affine augmentation: rotation, scale and shift
    scale: float = 0.1
    shift_pixels: float = 2.0

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        data = asdict(self)
        data["channels"] = list(self.channels)
        return data


def random_affine(images: torch.Tensor, config: Classifier2Config, generator: torch.Generator) -> torch.Tensor:
    """Rotate, scale and shift each image of (N, 1, H, W) at random (bilinear, zero padding); -> same shape."""
    n, _, height, _ = images.shape
    uniform = torch.rand((n, 4), generator=generator) * 2 - 1  # (N, 4) in [-1, 1]
    angle = uniform[:, 0] * math.radians(config.rotate_degrees)
    scale = 1 + uniform[:, 1] * config.scale
    shift = uniform[:, 2:] * (2 * config.shift_pixels / height)  # affine_grid's coordinates span [-1, 1]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)  # (N, H, W, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def train_classifier2(
    config: Classifier2Config,
    images: torch.Tensor,
    labels: torch.Tensor,
    progress: ProgressCallback = no_progress,
) -> LeNetClassifier:
    """Train on uint8 images (N, 28, 28) and labels (N,) with SGD + Nesterov momentum and a cosine learning rate."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed + 1)
    model = LeNetClassifier(config.channels, config.hidden, config.dropout)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=config.momentum,
                                nesterov=True, weight_decay=config.weight_decay)
    n = images.shape[0]
    total = math.ceil(n / config.batch_size) * config.epochs
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    fit(model, optimizer, scheduler, images, labels, config.epochs, config.batch_size,
        lambda batch: random_affine(batch, config, generator), generator, progress)
    return model


def load_classifier2(folder: str | Path) -> LeNetClassifier:
    """Load the independent judge from a folder with ``model.safetensors`` and ``config.json`` (fp32, eval mode)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    train = json.loads((folder / "config.json").read_text()).get("train", {})
    model = LeNetClassifier(tuple(train.get("channels", (16, 32))), int(train.get("hidden", 128)))
    state = {k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()}
    model.load_state_dict(state)
    return model.eval()
