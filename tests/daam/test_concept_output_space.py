"""ConceptAttention's output-space maps (generator/daam/joint.py) equal a hand computation, on a tiny SD3 layer too."""

from __future__ import annotations

import math

import pytest
import torch

from generator.daam.joint import JOINT, SINGLE, joint_attention_layers, output_space_maps, split_outputs


def _by_hand(image: torch.Tensor, text: torch.Tensor, kept: int) -> torch.Tensor:
    """Per image token, per concept: exp(o_x . o_c) / sum over the kept concepts, with Python loops."""
    batch, pixels, _ = image.shape
    result = torch.zeros(batch, pixels, kept)
    for b in range(batch):
        for x in range(pixels):
            dots = [float(sum(image[b, x, d] * text[b, c, d] for d in range(image.shape[2]))) for c in range(kept)]
            top = max(dots)
            exps = [math.exp(v - top) for v in dots]
            for c in range(kept):
                result[b, x, c] = exps[c] / sum(exps)
    return result


def test_output_space_maps_equal_the_hand_computation():
    torch.manual_seed(0)
    image, text = torch.randn(2, 5, 4), torch.randn(2, 6, 4)
    maps = output_space_maps(image, text, kept=3)
    assert maps.shape == (2, 5, 3)
    assert torch.allclose(maps, _by_hand(image, text, 3), atol=1e-6)
    assert torch.allclose(maps.sum(-1), torch.ones(2, 5), atol=1e-6)  # a distribution over the concepts
    # concept 0 made to point along every image token's output wins everywhere
    text[:, 0] = image.mean(1) * 50
    assert (output_space_maps(image, text, kept=3).argmax(-1) == 0).float().mean() > 0.8


def test_single_stream_output_splits_text_first():
    sequence = torch.arange(2 * 7 * 3, dtype=torch.float32).view(2, 7, 3)
    image, text = split_outputs(SINGLE, sequence, text_tokens=3)
    assert torch.equal(text, sequence[:, :3]) and torch.equal(image, sequence[:, 3:])


def test_on_a_tiny_sd3_joint_layer_the_maps_read_the_layers_own_outputs():
    from generator.models.registry import load_model

    adapter = load_model("testing:tiny-sd3", device="cpu")
    transformer = adapter.pipeline.transformer
    name = next(n for n, kind in joint_attention_layers(transformer).items() if kind == JOINT)
    attn = transformer.get_submodule(name.removesuffix(".processor"))
    torch.manual_seed(1)
    dim = attn.to_q.in_features
    hidden, context = torch.randn(1, 16, dim), torch.randn(1, 9, attn.add_k_proj.in_features)
    with torch.no_grad():
        output = attn.processor(attn, hidden, context)
        image, text = split_outputs(JOINT, output, text_tokens=9)
        maps = output_space_maps(image, text, kept=4)
    assert image.shape[:2] == (1, 16) and text.shape[:2] == (1, 9)
    assert torch.allclose(maps, _by_hand(image.float(), text.float(), 4), atol=1e-5)
