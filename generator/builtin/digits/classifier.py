"""Built-in models: a tiny MNIST classifier, trained by the project, that scores generated digits.

It is deliberately small (about 28k parameters, ~60 KB in fp16) and quick to train on a CPU
(2 epochs reach ~99% test accuracy). It is a judge, not an exhibit: the evaluation of the digits
diffusion models counts how often a sample is classified as the class it was asked for.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from generator.progress import ProgressCallback, no_progress


class DigitClassifier(nn.Module):
    """Two conv stages and a small MLP: (N, 1, 28, 28) in [0, 1] -> (N, 10) logits."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.width = width
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2),  # (N, w, 14, 14)
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.MaxPool2d(2),  # (N, 2w, 7, 7)
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),  # (N, 4w, 1, 1)
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * width, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) images in [0, 1] -> (N, 10) logits."""
        return self.head(self.features(x))


@dataclass(frozen=True)
class ClassifierConfig:
    """Training settings of the judge classifier."""

    width: int = 16
    epochs: int = 2
    batch_size: int = 64
    learning_rate: float = 3e-3
    seed: int = 0
    augment_shift: int = 2  # random translation (pixels) so slightly off-centre samples are still recognised

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return asdict(self)


def _random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels (zero padding); (N, 1, 28, 28) -> same."""
    if max_shift == 0:
        return images
    n = images.shape[0]
    padded = F.pad(images, (max_shift,) * 4)
    shifts = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)
    out = torch.empty_like(images)
    size = images.shape[-1]
    for i in range(n):
        dy, dx = int(shifts[i, 0]), int(shifts[i, 1])
        out[i] = padded[i, :, dy:dy + size, dx:dx + size]
    return out


def train_classifier(
    config: ClassifierConfig,
    images: torch.Tensor,
    labels: torch.Tensor,
    progress: ProgressCallback = no_progress,
) -> DigitClassifier:
    """Train on uint8 images (N, 28, 28) and labels (N,) with Adam and a cosine learning rate."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed + 1)
    model = DigitClassifier(config.width)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    n = images.shape[0]
    steps_per_epoch = math.ceil(n / config.batch_size)
    total = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate, total_steps=total)
    fit(model, optimizer, scheduler, images, labels, config.epochs, config.batch_size,
        lambda batch: _random_shift(batch, config.augment_shift, generator), generator, progress)
    return model


def fit(model: nn.Module, optimizer: Any, scheduler: Any, images: torch.Tensor, labels: torch.Tensor, epochs: int,
        batch_size: int, augment: Callable[[torch.Tensor], torch.Tensor], generator: torch.Generator,
        progress: ProgressCallback = no_progress) -> None:
    """The judges' training loop: shuffled epochs of augmented (B, 1, 28, 28) batches in [0, 1], cross-entropy,
    one scheduler step per batch; ``model`` ends in eval mode. Every random draw comes from ``generator``."""
    n = images.shape[0]
    total = math.ceil(n / batch_size) * epochs
    model.train()
    step = 0
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            batch = augment((images[index].float() / 255.0).unsqueeze(1))
            loss = F.cross_entropy(model(batch), labels[index].long())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            progress(step, total, f"epoch {epoch + 1}/{epochs} loss {loss.item():.3f}")
    model.eval()


@torch.no_grad()
def classify(model: DigitClassifier, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Class probabilities (N, 10) of float images (N, 1, 28, 28) in [0, 1] (clamped first)."""
    model.eval()
    chunks = [
        F.softmax(model(images[i:i + batch_size].float().clamp(0, 1)), dim=1)
        for i in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(chunks) if chunks else torch.empty(0, 10)


def accuracy(model: DigitClassifier, images_uint8: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy on uint8 images (N, 28, 28)."""
    probs = classify(model, (images_uint8.float() / 255.0).unsqueeze(1))
    return float((probs.argmax(1) == labels.long()).float().mean())


def load_classifier(path: str | Path, width: int = 16) -> DigitClassifier:
    """Load classifier weights from a safetensors file (fp16 or fp32) into fp32 eval mode."""
    from safetensors.torch import load_file

    model = DigitClassifier(width)
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    model.load_state_dict(state)
    return model.eval()
