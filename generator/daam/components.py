"""DAAM stage: a word's map taken apart into its summands (layer group x timestep bin), for measuring them.

DAAM's map (Eq. 6) is a sum over steps, layers and heads. With a capture that keeps layers or heads apart
(``trace(..., keep="heads")``) every summand can be looked at on its own: ``word_components`` returns one raw,
upsampled map per (group, bin), so any step range, layer set or head set is a sum over some of them, and
their total is exactly ``Trace.word_map(normalized=False)``. ``token_mass`` is how much attention each token
position received per group and bin (the share of the special tokens: castorini/daam #58).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from generator.daam.aggregate import LayerGroup, heat_maps


@dataclass(frozen=True)
class Components:
    """One word's raw map per layer group and timestep bin: ``maps`` (groups, bins, H, W), upsampled, unnormalized."""

    groups: tuple[LayerGroup, ...]
    maps: torch.Tensor  # (groups, bins, H, W)
    bin_timesteps: tuple[tuple[float, ...], ...]  # the timesteps each bin holds (bin 0: the noisiest)

    def select(self, keep: Any) -> torch.Tensor:
        """(H, W): the sum of the groups for which ``keep(group)`` holds, over every bin."""
        chosen = [i for i, group in enumerate(self.groups) if keep(group)]
        if not chosen:
            raise ValueError("no recorded group matches")
        return self.maps[chosen].sum(dim=(0, 1))


def word_components(tc: Any, word: str | int, occurrence: int = 0, image_index: int = 0,
                    size: tuple[int, int] | None = None) -> Components:
    """The word's map (mean of its pieces, as ``Trace.word_map``) per recorded group and bin."""
    tokens = tc.prompt_tokens(image_index)
    weights = tokens.weights(tokens.find(word, occurrence).positions, tc.kept_tokens)
    return weight_components(tc, weights, image_index, size)


def weight_components(tc: Any, weights: torch.Tensor, image_index: int = 0,
                      size: tuple[int, int] | None = None) -> Components:
    """Any linear combination of token positions (``weights``: (tokens,)) per recorded group and bin."""
    record = tc.record
    accumulator = record.accumulator
    bins = list(range(accumulator.bins))
    groups = tuple(accumulator.groups)
    maps = torch.stack([
        heat_maps(accumulator, [group], bins, image_index, weights, size or record.image_size, per_bin=True)
        for group in groups
    ])  # (groups, bins, H, W)
    return Components(groups, maps.cpu(), tuple(tuple(t) for t in accumulator.bin_timesteps))


def token_mass(tc: Any, image_index: int = 0) -> tuple[tuple[LayerGroup, ...], torch.Tensor]:
    """The groups and (groups, bins, tokens): attention received by each kept token position, summed over pixels.

    Each image query's probabilities sum to 1 over the keys, so with ``padding=True`` (every position kept) a
    token's share of a (group, bin) is its mass over the row's total; without it, the share among kept positions.
    """
    accumulator = tc.record.accumulator
    groups = tuple(accumulator.groups)
    mass = torch.stack([accumulator.sums[group][:, image_index].sum(dim=-1) for group in groups])  # (g, bins, tokens)
    return groups, mass.cpu()
