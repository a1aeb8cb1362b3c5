"""Built-in models: an exponential moving average of named parameters (what the built-in models export)."""

from __future__ import annotations

import torch


class Ema:
    """EMA of parameters in fp32, with the usual warm-up ``min(decay, (1+n)/(10+n))`` at update ``n``."""

    def __init__(self, named: dict[str, torch.Tensor]) -> None:
        self.shadow = {name: p.detach().clone().float() for name, p in named.items()}

    @torch.no_grad()
    def update(self, named: dict[str, torch.Tensor], step: int, decay: float) -> None:
        """Move the average towards the current weights (``step`` counts from 0)."""
        d = min(decay, (1 + step) / (10 + step))
        names = list(self.shadow)
        torch._foreach_lerp_([self.shadow[n] for n in names], [named[n].detach().float() for n in names], 1 - d)
