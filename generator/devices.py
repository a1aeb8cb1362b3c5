"""Shared by every stage that runs torch: which device a name means, and how to describe the machine.

One rule for every command: ``auto`` picks CUDA, then Apple's MPS, then the CPU; asking for an accelerator
that is absent is one clear error, never a silent fallback.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import TYPE_CHECKING

from generator.errors import UserError

if TYPE_CHECKING:
    import torch


def _mps_available() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; asking for an absent accelerator is a user error."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but this machine has no CUDA GPU (use --device cpu or auto)")
    if device == "mps" and not _mps_available():
        raise UserError("--device mps was asked for, but MPS is not available here (use --device cpu or auto)")
    if device not in ("cpu", "mps") and not device.startswith("cuda"):
        raise UserError(f"unknown device {device!r}; use auto, cpu, cuda or mps")
    return torch.device(device)


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_description(device: str) -> str:
    """One line naming the machine a model was trained on (recorded in shipped configs)."""
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    return f"{cpu_name()} CPU, {torch.get_num_threads()} torch thread(s)"
