"""ConceptAttention's output-space maps as a second word-map kind (trace(..., map_kind="concept-output")), issue 21.

The reference is computed by hand from every joint layer's own outputs during the same generation (captured by
wrapping each original processor): per layer, the conditional rows' image-token outputs against the prompt
tokens' outputs, exp(o_x . o_c) normalised over the prompt's kept tokens, in float64, summed per block kind.
The traced sums must equal it, the image must not change and the original processors must come back.
"""

from __future__ import annotations

import pytest
import torch

from generator.daam import trace
from generator.daam.joint import JOINT, SINGLE, joint_attention_layers, split_outputs
from generator.models.registry import load_model


class _Capturing:
    def __init__(self, original):
        self.original, self.calls = original, []

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, image_rotary_emb=None):
        extra = (image_rotary_emb,) if image_rotary_emb is not None else ()
        output = self.original(attn, hidden_states, encoder_hidden_states, attention_mask, *extra)
        self.calls.append((hidden_states.shape[1], encoder_hidden_states, output))
        return output


def _reference(adapter, prompt: str, kept: int, image_tokens: int) -> dict[str, torch.Tensor]:
    """Block kind -> (kept, image tokens): the hand-computed maps summed over the kind's layers and the steps."""
    denoiser = adapter.denoiser
    originals = dict(denoiser.attn_processors)
    layers = joint_attention_layers(denoiser)
    wrappers = {name: _Capturing(originals[name]) for name in layers}
    denoiser.set_attn_processor({**originals, **wrappers})
    try:
        adapter.generate(prompt, seed=3, steps=2)
    finally:
        denoiser.set_attn_processor(originals)
    sums: dict[str, torch.Tensor] = {}
    for name, kind in layers.items():
        attn = denoiser.get_submodule(name.removesuffix(".processor"))
        if kind == JOINT and attn.context_pre_only:
            continue  # its text outputs are not projected: not in the image outputs' space
        for tokens, context, output in wrappers[name].calls:
            text_tokens = tokens - image_tokens if kind == SINGLE else context.shape[1]
            image, text = split_outputs(kind, output, text_tokens)
            image, text = image[-1].double(), text[-1].double()  # the conditional row (last: [uncond, cond])
            dots = torch.stack([torch.stack([(image[x] * text[c]).sum() for c in range(kept)])
                                for x in range(image.shape[0])])  # (image tokens, kept)
            maps = dots.exp() / dots.exp().sum(-1, keepdim=True)
            sums[kind] = sums.get(kind, 0) + maps.T
    return sums


@pytest.mark.parametrize("model_id", ["testing:tiny-flux", "testing:tiny-sd3"])
def test_concept_output_maps_equal_the_hand_computation_and_change_nothing(model_id):
    adapter = load_model(model_id, device="cpu")
    denoiser = adapter.denoiser
    before = dict(denoiser.attn_processors)
    plain = adapter.generate("a red circle", seed=3, steps=2)
    with trace(adapter, timestep_bins=1, map_kind="concept-output") as traced:
        recorded = adapter.generate("a red circle", seed=3, steps=2)
        red = traced.word_map("red", normalized=False)
        circle = traced.word_map("circle", normalized=False)
    after = dict(denoiser.attn_processors)
    assert list(plain.getdata()) == list(recorded.getdata())  # the image is unchanged
    assert all(after[name] is before[name] for name in before)  # the original processors are back
    assert (red - circle).abs().max() > 1e-6
    accumulator = traced.record.accumulator
    assert accumulator.map_kind == "concept-output"
    reference = _reference(adapter, "a red circle", accumulator.tokens, 16)  # 64x64: 8x8 latents, 2x2 patches
    found = {group.location: total[0, 0] for group, total in accumulator.sums.items()}  # (kept, image tokens)
    assert set(found) == set(reference) == ({JOINT} if model_id.endswith("sd3") else {"double", SINGLE})
    for kind, expected in reference.items():
        assert torch.allclose(found[kind].double(), expected, atol=1e-5), (kind, (found[kind] - expected).abs().max())
        layers = sum(1 for n, k in joint_attention_layers(denoiser).items() if k == kind and not (
            k == JOINT and denoiser.get_submodule(n.removesuffix(".processor")).context_pre_only))
        # a distribution over the kept prompt tokens per image token, per layer and step: columns sum to layers x 2
        torch.testing.assert_close(found[kind].sum(0), torch.full((16,), 2.0 * layers), atol=1e-4, rtol=0)


def test_concept_output_is_refused_on_cross_attention_models():
    adapter = load_model("testing:tiny-sd", device="cpu")
    with pytest.raises(ValueError, match="joint attention"):
        with trace(adapter, map_kind="concept-output"):
            pass
    with pytest.raises(ValueError, match="map_kind"):
        trace(adapter, map_kind="value")
