"""Capture modes (issue 19): per-layer and per-head maps add up exactly to today's summed map.

The same generation is traced three times on the tiny SD UNet (random weights, built locally): summed (the
default), layers kept apart, heads kept apart. Sums over heads and over layers must give the summed map; the
components of ``generator.daam.components`` must add up to the word map; a summed capture refuses a layer filter.
"""

from __future__ import annotations

import pytest
import torch

from generator.daam import trace
from generator.daam.components import token_mass, word_components
from generator.diffusion.sampling import sample

PROMPT = "a cat chewing gum"
STEPS = 3


def _run(adapter, latents, keep, bins=STEPS):
    scheduler = adapter.make_scheduler()
    scheduler.set_timesteps(STEPS)
    with trace(adapter, timestep_bins=bins, keep=keep, padding=True) as tc, torch.inference_mode():
        sample(adapter, adapter.encode_prompts([PROMPT]), scheduler, latents * scheduler.init_noise_sigma, guidance=7.5)
    return tc


@pytest.fixture(scope="module")
def traces(tiny_sd):
    latents = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(3))
    return {keep: _run(tiny_sd, latents, keep) for keep in ("summed", "layers", "heads")}


def test_heads_and_layers_sum_to_the_summed_map(traces):
    summed = traces["summed"].word_map("cat", normalized=False)
    assert summed.abs().max() > 0
    for keep in ("layers", "heads"):
        torch.testing.assert_close(traces[keep].word_map("cat", normalized=False), summed, atol=1e-5, rtol=1e-4)
    layers, heads = traces["layers"], traces["heads"]
    names = layers.record.accumulator.layer_names()
    assert len(names) >= 2 and names == heads.record.accumulator.layer_names()
    by_layer = sum(layers.word_map("cat", normalized=False, layer_names=[name]) for name in names)
    torch.testing.assert_close(by_layer, summed, atol=1e-5, rtol=1e-4)
    # per-head maps of one layer add up to that layer's map; two heads differ (not one map copied)
    first = names[0]
    head_ids = sorted({g.head for g in heads.record.accumulator.groups if g.layer == first})
    assert len(head_ids) >= 2
    per_head = [heads.word_map("cat", normalized=False, heads=[(first, h)]) for h in head_ids]
    torch.testing.assert_close(sum(per_head), layers.word_map("cat", normalized=False, layer_names=[first]),
                               atol=1e-5, rtol=1e-4)
    assert not torch.allclose(per_head[0], per_head[1], atol=1e-4)
    # per-timestep: each bin holds one step, and the bins add up to the map
    over_time = [heads.word_map("cat", normalized=False, timesteps=(t, t)) for t in sum(heads.bin_timesteps, [])]
    assert len(over_time) == STEPS
    torch.testing.assert_close(sum(over_time), summed, atol=1e-5, rtol=1e-4)


def test_components_add_up_and_filters_need_the_mode(traces):
    heads = traces["heads"]
    parts = word_components(heads, "cat")
    assert parts.maps.shape[:2] == (len(parts.groups), STEPS)
    torch.testing.assert_close(parts.maps.sum(dim=(0, 1)), heads.word_map("cat", normalized=False), atol=1e-5, rtol=1e-4)
    up = parts.select(lambda g: g.location == "up")
    torch.testing.assert_close(up, heads.word_map("cat", normalized=False, locations=["up"]), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="keep="):
        traces["summed"].word_map("cat", layer_names=["x"])
    with pytest.raises(ValueError, match="keep="):
        traces["layers"].word_map("cat", heads=[("x", 0)])
    with pytest.raises(ValueError, match="keep must be"):
        trace(object(), keep="every")  # an unknown mode fails before the target is even looked at


def test_token_mass_is_every_query_once_per_head(traces):
    """With padding kept, each query's probabilities sum to 1 over tokens: mass = queries x heads x steps."""
    tc = traces["heads"]
    groups, mass = token_mass(tc)
    for group, per_bin in zip(groups, mass):
        steps_per_bin = torch.tensor([len(t) for t in tc.bin_timesteps], dtype=torch.float32)
        torch.testing.assert_close(per_bin.sum(-1), steps_per_bin * group.height * group.width, atol=1e-2, rtol=1e-4)


def test_value_norm_weights_each_head_by_its_value_vectors_norm(tiny_sd, traces):
    """Value-norm maps (Kobayashi et al. 2020) = each head's map times ||W_v e_t|| of that head, hand-computed."""
    latents = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(3))
    scheduler = tiny_sd.make_scheduler()
    scheduler.set_timesteps(STEPS)
    with trace(tiny_sd, timestep_bins=STEPS, keep="heads", padding=True, value_norm=True) as weighted, torch.inference_mode():
        sample(tiny_sd, tiny_sd.encode_prompts([PROMPT]), scheduler, latents * scheduler.init_noise_sigma, guidance=7.5)
    plain = traces["heads"]
    position = plain.prompt_tokens().find("cat").positions[0]
    with torch.inference_mode():
        context = tiny_sd.encode_prompts([PROMPT]).cond.hidden.float()  # (1, tokens, dim)
    expected = torch.zeros_like(plain.word_map("cat", normalized=False))
    for group in plain.record.accumulator.groups:
        module = tiny_sd.denoiser.get_submodule(group.layer.removesuffix(".processor"))
        with torch.no_grad():
            value = module.to_v(context.clone().to(module.to_v.weight.dtype))[0, position].float()  # (heads * d,)
        norm = value.view(module.heads, -1)[group.head].norm()
        expected += norm * plain.word_map("cat", normalized=False, heads=[(group.layer, group.head)])
    torch.testing.assert_close(weighted.word_map("cat", normalized=False), expected, atol=1e-4, rtol=1e-3)
    assert not torch.allclose(weighted.word_map("cat"), plain.word_map("cat"), atol=1e-3)  # it does change the map
