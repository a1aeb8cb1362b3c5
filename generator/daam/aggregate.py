"""DAAM stage: the heat-map math (Tang et al. 2023, "What the DAAM", Eq. 6 and 7) as pure tensor operations.

Attention probabilities are summed as they arrive into a fixed number of timestep bins, one accumulator per
(UNet part, layer resolution), so memory does not grow with the number of steps. Bicubic upsampling is
linear, so summing at each layer's own resolution and upsampling each resolution once at the end gives the
same map as upsampling every layer, head and step first (Eq. 6), for a fraction of the memory.

Capture modes (``KEEP``): "summed" (the default, one sum per UNet part and resolution), "layers" (one sum per
layer) and "heads" (one per layer and head). Every mode holds the same total: summing the finer groups gives
the coarser map exactly, so the per-layer and per-head analyses of issue 19 answer questions about the very map
the site shows. Timesteps are kept apart by the bins (``timestep_bins`` = steps: one step per bin).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

import torch
import torch.nn.functional as F

LOCATIONS = ("down", "mid", "up")
KEEP = ("summed", "layers", "heads")  # capture modes, coarsest first


def timestep_bin(timestep: float, train_timesteps: int, bins: int) -> int:
    """Bin of a timestep: bin 0 holds the noisiest steps (t near T), bin ``bins - 1`` the last ones (t near 0)."""
    position = 1.0 - float(timestep) / train_timesteps  # 0 at pure noise, 1 at the clean image
    return min(bins - 1, max(0, math.floor(position * bins)))


def grid_size(sequence_length: int, latent_height: int, latent_width: int) -> tuple[int, int]:
    """(h, w) of a layer's flattened feature map, from its length and the denoiser input's aspect.

    UNet downsampling halves sizes rounding up (stride-2 convolutions with padding 1), so the candidates are
    ceil(size / 2^k); a non-square latent (64x96 images: 8x12) keeps its aspect at every level.
    """
    height, width = latent_height, latent_width
    for _ in range(12):
        if height * width == sequence_length:
            return height, width
        if height * width < sequence_length:
            break
        height, width = -(-height // 2), -(-width // 2)
    scale = math.sqrt(latent_height * latent_width / sequence_length)  # other downsampling schemes
    height, width = round(latent_height / scale), round(latent_width / scale)
    if height * width != sequence_length:
        raise ValueError(
            f"cannot place {sequence_length} attention positions on a grid with the aspect of a "
            f"{latent_height}x{latent_width} input"
        )
    return height, width


@dataclass(frozen=True)
class LayerGroup:
    """Cross-attention layers that share a UNet part and a resolution (they are summed together)."""

    location: str  # "down", "mid", "up" (or "other")
    height: int
    width: int
    layer: str | None = None  # the layer's processor name, when layers are kept apart ("layers", "heads")
    head: int | None = None  # the head's index in its layer, when heads are kept apart ("heads")


@dataclass
class Accumulator:
    """Sums of attention probabilities (DAAM Eq. 6 before upsampling), per layer group and timestep bin.

    ``sums[group]`` is (bins, images, tokens, h*w) in fp32 on the denoiser's device: summed over heads, layers
    of the group and the steps of each bin. ``layer_counts[group]`` counts layers (not heads) per step.
    """

    bins: int
    images: int
    tokens: int
    device: torch.device
    keep: str = "summed"  # one of KEEP: how finely layers and heads are kept apart
    value_norm: bool = False  # weight each token's probability by its value vector's norm (Kobayashi et al. 2020)
    map_kind: str = "attention"  # joint attention only: "concept-output" records ConceptAttention's maps instead
    fold_padding: bool = False  # the last kept column holds every text position from there on (padding, summed)
    sums: dict[LayerGroup, torch.Tensor] = field(default_factory=dict)
    bin_timesteps: list[list[float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.keep not in KEEP:
            raise ValueError(f"keep must be one of {', '.join(KEEP)}, got {self.keep!r}")
        self.bin_timesteps = [[] for _ in range(self.bins)]

    def columns(self, text_length: int) -> int:
        """How many text positions a recorder reads: every one when padding is folded, else the kept ones."""
        return text_length if self.fold_padding else min(self.tokens, text_length)

    def fold(self, probabilities: torch.Tensor) -> torch.Tensor:
        """(..., columns) -> (..., <= tokens): with ``fold_padding``, positions from ``tokens - 1`` on summed into one.

        A prompt's padding (all positions after its end token) then costs one column instead of ~60 (CLIP pads to
        77), so the bake can show "where the padding is attended" even when it keeps every head apart.
        """
        if not self.fold_padding or probabilities.shape[-1] <= self.tokens:
            return probabilities
        last = self.tokens - 1
        return torch.cat([probabilities[..., :last], probabilities[..., last:].sum(dim=-1, keepdim=True)], dim=-1)

    def add_layer(self, location: str, layer: str, height: int, width: int, bin_index: int,
                  probabilities: torch.Tensor) -> None:
        """Add one layer's per-head probabilities (images, heads, h*w, kept <= tokens), keyed as ``keep`` says."""
        probabilities = self.fold(probabilities)
        if probabilities.shape[-1] < self.tokens:  # shorter text than the kept positions: the rest got nothing
            probabilities = F.pad(probabilities, (0, self.tokens - probabilities.shape[-1]))
        if self.keep == "heads":
            for head in range(probabilities.shape[1]):
                self.add(LayerGroup(location, height, width, layer, head), bin_index, probabilities[:, head])
            return
        named = layer if self.keep == "layers" else None
        self.add(LayerGroup(location, height, width, named), bin_index, probabilities.sum(dim=1))

    def add(self, group: LayerGroup, bin_index: int, probabilities: torch.Tensor) -> None:
        """Add one layer's head-summed probabilities (images, h*w, tokens) to its group and bin."""
        total = self.sums.get(group)
        if total is None:
            with torch.inference_mode(False):  # a plain tensor, updatable in and out of inference mode
                total = torch.zeros(
                    self.bins, self.images, self.tokens, group.height * group.width,
                    dtype=torch.float32, device=self.device,
                )
            self.sums[group] = total
        total[bin_index].add_(probabilities.transpose(1, 2))  # (images, tokens, h*w)

    def note_step(self, bin_index: int, timestep: float) -> None:
        """Remember which timesteps fell into which bin (for timestep-range filters and labels)."""
        self.bin_timesteps[bin_index].append(float(timestep))

    @property
    def groups(self) -> list[LayerGroup]:
        """Layer groups seen, finest resolution first."""
        return sorted(self.sums, key=lambda g: (-g.height * g.width, LOCATIONS.index(g.location) if g.location in LOCATIONS else 3,
                                                g.layer or "", -1 if g.head is None else g.head))

    def layer_names(self) -> list[str]:
        """The recorded layers' names in group order (empty when the capture summed them: keep="summed")."""
        return list(dict.fromkeys(g.layer for g in self.groups if g.layer is not None))

    def resolutions(self) -> list[tuple[int, int]]:
        """Distinct (h, w) of the recorded layers, finest first."""
        seen: list[tuple[int, int]] = []
        for group in self.groups:
            if (group.height, group.width) not in seen:
                seen.append((group.height, group.width))
        return seen


def select_groups(
    groups: Iterable[LayerGroup],
    locations: Iterable[str] | None = None,
    resolutions: Iterable[tuple[int, int]] | None = None,
    layers: Iterable[str] | None = None,
    heads: Iterable[tuple[str, int]] | None = None,
) -> list[LayerGroup]:
    """The groups in the given UNet parts, resolutions, layers and (layer, head) pairs (None: all).

    ``layers`` needs a capture that kept layers apart, ``heads`` one that kept heads apart (ValueError otherwise:
    a summed capture cannot answer for one layer, and silently answering for all would mislead).
    """
    groups = list(groups)
    if layers is not None and any(g.layer is None for g in groups):
        raise ValueError('a layer filter needs a capture with keep="layers" or keep="heads"')
    if heads is not None and any(g.head is None for g in groups):
        raise ValueError('a head filter needs a capture with keep="heads"')
    locations = None if locations is None else set(locations)
    resolutions = None if resolutions is None else {tuple(r) for r in resolutions}
    layers = None if layers is None else set(layers)
    heads = None if heads is None else {(name, int(head)) for name, head in heads}
    return [
        g for g in groups
        if (locations is None or g.location in locations) and (resolutions is None or (g.height, g.width) in resolutions)
        and (layers is None or g.layer in layers) and (heads is None or (g.layer, g.head) in heads)
    ]


def coarse_fine(resolutions: list[tuple[int, int]]) -> dict[str, list[tuple[int, int]]]:
    """Split resolutions (finest first) into the finer half and the coarser half (one level: both the same)."""
    if len(resolutions) <= 1:
        return {"fine": list(resolutions), "coarse": list(resolutions)}
    half = math.ceil(len(resolutions) / 2)
    return {"fine": resolutions[:half], "coarse": resolutions[half:]}


def heat_maps(
    accumulator: Accumulator,
    groups: list[LayerGroup],
    bin_indices: list[int],
    image_index: int,
    token_weights: torch.Tensor,
    size: tuple[int, int],
    *,
    per_bin: bool = False,
) -> torch.Tensor:
    """DAAM Eq. 6: attention summed over heads, layers and steps, upsampled (bicubic) to ``size``.

    ``token_weights`` (tokens,) combines token maps linearly (a word's pieces: 1/n each, the mean). Returns
    (H, W), or (len(bin_indices), H, W) with ``per_bin``: raw sums, exactly linear in the weights (bicubic
    overshoot may leave small negatives; ``normalize`` clips them).
    """
    height, width = size
    shape = (len(bin_indices) if per_bin else 1, height, width)
    total = torch.zeros(shape, dtype=torch.float32, device=accumulator.device)
    weights = token_weights.to(accumulator.device, torch.float32)
    for group in groups:
        sums = accumulator.sums[group][bin_indices, image_index]  # (bins, tokens, h*w)
        combined = torch.einsum("btp,t->bp", sums, weights)  # (bins, h*w)
        if not per_bin:
            combined = combined.sum(0, keepdim=True)
        grid = combined.view(-1, 1, group.height, group.width)
        total += F.interpolate(grid, size=(height, width), mode="bicubic", align_corners=False)[:, 0]
    return total if per_bin else total[0]


def normalize(maps: torch.Tensor) -> torch.Tensor:
    """Scale each (H, W) map to [0, 1] by its own minimum and maximum (flat maps become 0).

    Min-max, as the DAAM authors' released code does: diffuse attention leaves a near-constant floor under every
    word's raw sum (on the small built-in models the minimum is ~0.7 of the maximum), so scaling by the maximum
    alone would put every pixel above a tau of 0.2..0.6 and Eq. 7 would mark the whole image.
    """
    low = maps.amin(dim=(-2, -1), keepdim=True)
    span = maps.amax(dim=(-2, -1), keepdim=True) - low
    return torch.where(span > 0, (maps - low) / span.clamp_min(torch.finfo(maps.dtype).tiny), torch.zeros_like(maps))


def threshold(heat_map: torch.Tensor, tau: float) -> torch.Tensor:
    """DAAM Eq. 7: the binary mask where the map reaches ``tau`` times its maximum."""
    if not 0 <= tau <= 1:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    peak = heat_map.max()
    if peak <= 0:
        return torch.zeros_like(heat_map, dtype=torch.bool)
    return heat_map >= tau * peak
