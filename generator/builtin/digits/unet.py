"""Built-in models: the small MNIST UNets of the CS180 "Fun with Diffusion Models" project (part B).

Three networks share one skeleton (28x28 in, 28x28 out, hidden width ``D``):

* :class:`UnconditionalUNet` - the single-step denoiser trained at sigma = 0.5;
* :class:`TimeConditionalUNet` - predicts the DDPM noise from ``x_t`` and ``t / T``;
* :class:`ClassConditionalUNet` - also takes a one-hot class and a mask for label dropout
  (classifier-free guidance, Ho & Salimans 2022).

The skeleton follows the course's figure::

    x (1,28,28) -ConvBlock-> (D,28,28) -DownBlock-> (D,14,14) -DownBlock-> (2D,7,7)
      -Flatten-> (2D,1,1) -Unflatten-> (2D,7,7)   [time / class conditioning enters here]
      -Concat+UpBlock-> (D,14,14)                   [... and here]
      -Concat+UpBlock-> (D,28,28) -Concat+ConvBlock-> (D,28,28) -Conv2d-> (1,28,28)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Conv(nn.Module):
    """3x3 convolution that keeps the resolution, then BatchNorm and GELU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.GELU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H, W)."""
        return self.net(x)


class DownConv(nn.Module):
    """Strided 3x3 convolution that halves the resolution, then BatchNorm and GELU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.GELU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H/2, W/2)."""
        return self.net(x)


class UpConv(nn.Module):
    """Transposed 4x4 convolution that doubles the resolution, then BatchNorm and GELU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.GELU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, 2H, 2W)."""
        return self.net(x)


class Flatten(nn.Module):
    """Average-pool the 7x7 bottleneck to a single vector per channel, then GELU."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.AvgPool2d(kernel_size=7), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, 7, 7) -> (N, C, 1, 1)."""
        return self.net(x)


class Unflatten(nn.Module):
    """Expand a 1x1 vector back to 7x7 with a 7x7 transposed convolution, then BatchNorm and GELU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(channels, channels, kernel_size=7, stride=7, padding=0),
            nn.BatchNorm2d(channels),
            nn.GELU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, 1, 1) -> (N, C, 7, 7)."""
        return self.net(x)


def concat(skip: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The course's Concat: join a skip connection and the upsampled path along channels."""
    return torch.cat([skip, x], dim=1)  # (N, C_skip + C_x, H, W)


class ConvBlock(nn.Module):
    """Two :class:`Conv` layers (more depth at the same resolution)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(Conv(in_channels, out_channels), Conv(out_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H, W)."""
        return self.net(x)


class DownBlock(nn.Module):
    """:class:`DownConv` followed by a :class:`ConvBlock`."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(DownConv(in_channels, out_channels), ConvBlock(out_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H/2, W/2)."""
        return self.net(x)


class UpBlock(nn.Module):
    """:class:`UpConv` followed by a :class:`ConvBlock`."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(UpConv(in_channels, out_channels), ConvBlock(out_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, 2H, 2W)."""
        return self.net(x)


class FCBlock(nn.Module):
    """Linear, GELU, Linear: embeds a scalar time or a one-hot class into a channel vector."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, out_features),
            nn.GELU(),
            nn.Linear(out_features, out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_features) -> (N, out_features, 1, 1), ready to broadcast over a feature map."""
        return self.net(x)[:, :, None, None]


class _UNetTrunk(nn.Module):
    """The shared encoder/decoder; subclasses decide how conditioning modulates the two decoder stages."""

    def __init__(self, in_channels: int = 1, hidden: int = 64) -> None:
        super().__init__()
        D = hidden
        self.hidden = hidden
        self.in_block = ConvBlock(in_channels, D)
        self.down1 = DownBlock(D, D)
        self.down2 = DownBlock(D, 2 * D)
        self.flatten = Flatten()
        self.unflatten = Unflatten(2 * D)
        self.up1 = UpBlock(4 * D, D)
        self.up2 = UpBlock(2 * D, D)
        self.out_block = ConvBlock(2 * D, D)
        self.out_conv = nn.Conv2d(D, in_channels, kernel_size=3, stride=1, padding=1)

    def _forward(
        self,
        x: torch.Tensor,
        scale1: torch.Tensor | None,
        shift1: torch.Tensor | None,
        scale2: torch.Tensor | None,
        shift2: torch.Tensor | None,
    ) -> torch.Tensor:
        """Run the trunk; bottleneck = scale1 * bottleneck + shift1, first up-stage likewise with 2."""
        if x.shape[-2:] != (28, 28):
            raise ValueError(f"the digits UNet expects 28x28 inputs, got {tuple(x.shape[-2:])}")
        skip1 = self.in_block(x)  # (N, D, 28, 28)
        skip2 = self.down1(skip1)  # (N, D, 14, 14)
        skip3 = self.down2(skip2)  # (N, 2D, 7, 7)
        h = self.unflatten(self.flatten(skip3))  # (N, 2D, 7, 7)
        if scale1 is not None:
            h = scale1 * h
        if shift1 is not None:
            h = h + shift1
        h = self.up1(concat(skip3, h))  # (N, D, 14, 14)
        if scale2 is not None:
            h = scale2 * h
        if shift2 is not None:
            h = h + shift2
        h = self.up2(concat(skip2, h))  # (N, D, 28, 28)
        h = self.out_block(concat(skip1, h))  # (N, D, 28, 28)
        return self.out_conv(h)  # (N, 1, 28, 28)


class UnconditionalUNet(_UNetTrunk):
    """Single-step denoiser: maps a noisy digit straight to a clean one (course part B, 1.2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) noisy image -> (N, 1, 28, 28) denoised image."""
        return self._forward(x, None, None, None, None)


class TimeConditionalUNet(_UNetTrunk):
    """DDPM noise predictor conditioned on the normalised timestep t / T (course part B, 2.1)."""

    def __init__(self, in_channels: int = 1, hidden: int = 64) -> None:
        super().__init__(in_channels, hidden)
        self.time_fc1 = FCBlock(1, 2 * hidden)
        self.time_fc2 = FCBlock(1, hidden)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) x_t and (N,) t in [0, 1] -> (N, 1, 28, 28) predicted noise."""
        t = t.reshape(-1, 1).to(x.dtype)  # (N, 1)
        return self._forward(x, None, self.time_fc1(t), None, self.time_fc2(t))


class ClassConditionalUNet(_UNetTrunk):
    """DDPM noise predictor conditioned on t / T and a (maskable) one-hot class (course part B, 2.4).

    The class vector multiplies the decoder features and the time vector is added, as in the course:
    ``h = c * h + t``. A mask of 0 replaces the one-hot by zeros: the unconditional branch of
    classifier-free guidance.
    """

    def __init__(self, in_channels: int = 1, hidden: int = 64, num_classes: int = 10) -> None:
        super().__init__(in_channels, hidden)
        self.num_classes = num_classes
        self.time_fc1 = FCBlock(1, 2 * hidden)
        self.time_fc2 = FCBlock(1, hidden)
        self.class_fc1 = FCBlock(num_classes, 2 * hidden)
        self.class_fc2 = FCBlock(num_classes, hidden)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(N,1,28,28) x_t, (N,) t in [0,1], (N,) int labels, (N,) mask (1 keep, 0 drop) -> (N,1,28,28) noise."""
        one_hot = F.one_hot(labels.long(), self.num_classes).to(x.dtype)  # (N, classes)
        if mask is not None:
            one_hot = one_hot * mask.reshape(-1, 1).to(x.dtype)
        return self.forward_class_vector(x, t, one_hot)

    def forward_class_vector(self, x: torch.Tensor, t: torch.Tensor, class_vector: torch.Tensor) -> torch.Tensor:
        """Same, with the (N, classes) class vector given directly: one-hot, zeros (unconditional) or a blend."""
        t = t.reshape(-1, 1).to(x.dtype)  # (N, 1)
        c = class_vector.to(x.dtype)  # (N, classes)
        return self._forward(x, self.class_fc1(c), self.time_fc1(t), self.class_fc2(c), self.time_fc2(t))


STAGE_MODELS: dict[str, type[_UNetTrunk]] = {
    "denoiser": UnconditionalUNet,
    "time": TimeConditionalUNet,
    "class": ClassConditionalUNet,
}


def build_unet(stage: str, hidden: int) -> _UNetTrunk:
    """Build the UNet of a training stage ('denoiser', 'time' or 'class') with hidden width ``hidden``."""
    if stage not in STAGE_MODELS:
        raise ValueError(f"unknown stage {stage!r}; expected one of {sorted(STAGE_MODELS)}")
    return STAGE_MODELS[stage](in_channels=1, hidden=hidden)
