"""Built-in models: the latent UNet's grounding loss, which teaches its cross-attention where each named object is.

Trained on the diffusion loss alone, the latent UNet drew the right scenes (binding 93%) but few of its attention
heads looked at the object a word names: DAAM's summed map reached an mIoU of 0.21 against the true masks, its best
single head 0.43 (``prompts/reports/daam-shapes-latent.json``). Following TokenCompose (Wang et al., CVPR 2024),
which supervised Stable Diffusion's cross-attention with segmentation masks and so improved multi-object
composition, this loss adds, for every word that describes an object (its colour, size and shape words), the
KL divergence from the object's mask, as a distribution over the layer's grid, to the word's attention map
(softmax(QK^T) summed over heads, the column DAAM reads, normalized over space). It is minimal when the word's
attention is spread evenly over its object and absent elsewhere. The shapes world renders the masks exactly, so
no annotation is needed; a plural noun ("three red circles") is grounded on all its objects; relation, count and
filler words, and the end and padding positions, are left free (they are where a pixel's attention may go when it
belongs to no object).

DAAM on a model trained this way is faithful by construction, not as a finding about DAAM: the site says so where
it reports the latent model's numbers, and the pixel model, trained on the diffusion loss alone, stays the natural
case.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from generator.builtin.shapes.world import COLOURS, PLURALS, SHAPES, SIZES, Sample
from generator.daam.aggregate import grid_size
from generator.daam.capture import attention_scores, cross_attention_layers

DESCRIBING = frozenset(COLOURS) | frozenset(SIZES)  # words that describe the next named object


@dataclass(frozen=True)
class Targets:
    """The grounded words of a batch: one row per (image, token position), with its object's mask in pixels."""

    images: torch.Tensor  # (N,) long: the batch row
    positions: torch.Tensor  # (N,) long: the token position in the caption
    masks: torch.Tensor  # (N, 1, H, W) float: the union of the masks of the objects the word describes


def object_words(tokens: Sequence[str], objects: int) -> list[tuple[int, tuple[int, ...]]]:
    """(token position, indices of the objects it describes) for each describing word of a caption's tokens.

    Captions name objects in scene order; colour and size words belong to the next shape word, and a plural noun
    (with its adjectives) to every object ("two small red circles").
    """
    found, pending, current = [], [], 0
    for position, token in enumerate(tokens):
        if token in DESCRIBING:
            pending.append(position)
        elif token in SHAPES or token in PLURALS.values():
            owners = tuple(range(objects)) if token in PLURALS.values() else (min(current, objects - 1),)
            found.extend((p, owners) for p in (*pending, position))
            pending, current = [], current + 1
    return found


def batch_targets(tokenizer, samples: Sequence[Sample], dropped: Sequence[bool]) -> Targets:
    """The grounded words of a batch of rendered samples (captions dropped for guidance have none)."""
    images, positions, masks = [], [], []
    for row, (sample, drop) in enumerate(zip(samples, dropped)):
        if drop:
            continue
        tokens = tokenizer.convert_ids_to_tokens(tokenizer(sample.scene.caption).input_ids)
        for position, owners in object_words(tokens, len(sample.masks)):
            if position >= tokenizer.model_max_length:
                continue  # truncated away
            images.append(row)
            positions.append(position)
            masks.append(np.any(sample.masks[list(owners)], axis=0))
    if not masks:
        empty = torch.zeros(0, dtype=torch.long)
        return Targets(empty, empty, torch.zeros(0, 1, *samples[0].masks.shape[1:]))
    return Targets(torch.tensor(images), torch.tensor(positions),
                   torch.from_numpy(np.stack(masks)).float().unsqueeze(1))


class GroundingProcessor:
    """Delegates to a cross-attention layer's processor and keeps its head-summed attention, with gradients."""

    def __init__(self, original: object, maps: list[torch.Tensor]):
        self.original = original
        self.maps = maps

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, **kwargs):
        if encoder_hidden_states is not None and hidden_states.ndim == 3:
            scores, _ = attention_scores(attn, hidden_states, encoder_hidden_states)
            self.maps.append(scores.softmax(dim=-1).sum(dim=1))  # (B, h*w, tokens)
        return self.original(attn, hidden_states, encoder_hidden_states=encoder_hidden_states,
                             attention_mask=attention_mask, **kwargs)


@contextmanager
def recorded_attention(unet: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, every UNet call appends each cross-attention layer's (B, h*w, tokens) map to the list."""
    maps: list[torch.Tensor] = []
    originals = dict(unet.attn_processors)
    replacement = dict(originals)
    for name in cross_attention_layers(unet):
        replacement[name] = GroundingProcessor(originals[name], maps)
    unet.set_attn_processor(replacement)
    try:
        yield maps
    finally:
        unet.set_attn_processor(originals)


def grounding_kl(maps: Sequence[torch.Tensor], targets: Targets, latent_size: tuple[int, int]) -> torch.Tensor:
    """Mean over layers and grounded words of KL(mask || attention), both as distributions over a layer's grid."""
    if len(targets.positions) == 0 or not maps:
        return torch.zeros((), device=maps[0].device if maps else None)
    total = torch.zeros((), device=maps[0].device)
    for attention in maps:
        height, width = grid_size(attention.shape[1], *latent_size)
        column = attention[targets.images.to(attention.device), :, targets.positions.to(attention.device)]  # (N, h*w)
        predicted = column / column.sum(dim=1, keepdim=True).clamp_min(1e-12)
        truth = F.adaptive_avg_pool2d(targets.masks, (height, width)).flatten(1).to(attention.device)
        truth = truth / truth.sum(dim=1, keepdim=True).clamp_min(1e-12)
        kl = torch.where(truth > 0, truth * (truth.clamp_min(1e-12).log() - predicted.clamp_min(1e-12).log()), 0.0)
        total = total + kl.sum(dim=1).mean()
    return total / len(maps)

