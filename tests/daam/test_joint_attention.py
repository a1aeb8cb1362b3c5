"""Word maps on joint attention (SD3 MMDiT, Flux double- and single-stream blocks), issue 21.

The reference is computed by hand: the layer's Q, K and V from its own projections and norms (Flux: with its
rotary embedding), the full softmax over all (image + text) keys, and checked to be what the model computes
(P V through the output projection equals the layer's own output). Our recorder must give the image-query ->
text-key block of that P summed over heads, in any chunk size; the model's output must not change; the
original processors come back, also after an exception.
"""

from __future__ import annotations

import pytest
import torch

from generator.daam import trace
from generator.daam.joint import (
    DOUBLE, JOINT, SINGLE, JointRecordingProcessor, image_to_text_probabilities, joint_attention_layers,
    queries_and_keys,
)
from generator.models.registry import load_model


@pytest.fixture(scope="module")
def sd3():
    return load_model("testing:tiny-sd3", device="cpu")


@pytest.fixture(scope="module")
def flux():
    return load_model("testing:tiny-flux", device="cpu")


class _Capturing:
    """Stores the inputs and output of one layer's original processor."""

    def __init__(self, original):
        self.original, self.calls = original, []

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, image_rotary_emb=None):
        extra = (image_rotary_emb,) if image_rotary_emb is not None else ()
        output = self.original(attn, hidden_states, encoder_hidden_states, attention_mask, *extra)
        self.calls.append((hidden_states, encoder_hidden_states, image_rotary_emb, output))
        return output


def _layer_inputs(adapter, name):
    """One denoiser call at t = 500 with the layer's processor capturing its inputs."""
    denoiser = adapter.denoiser
    originals = dict(denoiser.attn_processors)
    capturing = _Capturing(originals[name])
    denoiser.set_attn_processor({**originals, name: capturing})
    try:
        embeddings = adapter.encode_prompts(["a red circle"]).cond
        if adapter.capabilities.guidance == "distilled":
            embeddings = embeddings.with_added(guidance=torch.tensor([3.5]))
        sample = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            adapter.denoise(sample, torch.tensor(500.0), embeddings)
    finally:
        denoiser.set_attn_processor(originals)
    return denoiser.get_submodule(name.removesuffix(".processor")), capturing.calls[0]


def _rope(x, rotary):
    from diffusers.models.embeddings import apply_rotary_emb

    return x if rotary is None else apply_rotary_emb(x, rotary, sequence_dim=1)


def _reference(attn, kind, hidden, context, rotary, image_tokens):
    """Full P = softmax(Q K^T / sqrt(d)) (batch, heads, seq, seq), the layer's output from it, image/text slices."""
    def heads(x):
        return x.unflatten(-1, (attn.heads, -1))

    q, k, v = heads(attn.to_q(hidden)), heads(attn.to_k(hidden)), heads(attn.to_v(hidden))
    def norm(module, x):
        return x if module is None else module(x)

    q, k = norm(attn.norm_q, q), norm(attn.norm_k, k)
    if kind != SINGLE:
        cq, ck, cv = heads(attn.add_q_proj(context)), heads(attn.add_k_proj(context)), heads(attn.add_v_proj(context))
        cq, ck = norm(attn.norm_added_q, cq), norm(attn.norm_added_k, ck)
        order = (lambda a, b: torch.cat([a, b], 1)) if kind == JOINT else (lambda a, b: torch.cat([b, a], 1))
        q, k, v = order(q, cq), order(k, ck), order(v, cv)
    q, k = _rope(q, rotary), _rope(k, rotary)
    q, k, v = (x.transpose(1, 2).double() for x in (q, k, v))  # (batch, heads, seq, d)
    probabilities = (q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5).softmax(-1)
    out = (probabilities @ v).transpose(1, 2).flatten(2).float()  # (batch, seq, heads * d)
    seq = q.shape[2]
    if kind == JOINT:
        image, text = slice(0, image_tokens), slice(image_tokens, seq)
    else:
        image, text = slice(seq - image_tokens, seq), slice(0, seq - image_tokens)
    return probabilities, out, image, text


def _layers(adapter):
    return joint_attention_layers(adapter.denoiser)


@pytest.mark.parametrize("model, kind", [("sd3", JOINT), ("flux", DOUBLE), ("flux", SINGLE)])
def test_maps_equal_hand_computed_reference(model, kind, request):
    adapter = request.getfixturevalue(model)
    name = next(n for n, k in _layers(adapter).items() if k == kind)
    attn, (hidden, context, rotary, output) = _layer_inputs(adapter, name)
    image_tokens = 16  # 64x64 image: 8x8 latents, 2x2 patches
    with torch.no_grad():
        probabilities, out, image, text = _reference(attn, kind, hidden, context, rotary, image_tokens)
        # the reference is what the model computes: its own output from P V
        image_out = out[:, image]
        if kind != SINGLE:
            image_out = attn.to_out[0](image_out)
        model_image_out = output[0] if isinstance(output, tuple) else output[:, image]
        assert torch.allclose(image_out, model_image_out, atol=1e-5)
        expected = probabilities[:, :, image, text].sum(1).float()  # (batch, image, text)
        text_tokens = text.stop - text.start
        for chunk in (1, 5, 4096):
            query, key, found_text = queries_and_keys(attn, kind, hidden, context, rotary, text_tokens)
            ours = image_to_text_probabilities(query, key, found_text, text_tokens, chunk)
            assert ours.shape == expected.shape == (1, image_tokens, text_tokens)
            assert torch.allclose(ours, expected, atol=1e-6), (chunk, (ours - expected).abs().max())
    assert expected.sum(-1).max() < attn.heads  # text keys share each row with the image keys: not renormalised
    assert expected.std() > 1e-4  # not a flat map


@pytest.mark.parametrize("model", ["sd3", "flux"])
def test_tracing_leaves_the_output_unchanged_and_maps_differ_per_word(model, request):
    adapter = request.getfixturevalue(model)
    plain = adapter.generate("a red circle", seed=3, steps=2)
    with trace(adapter, timestep_bins=2) as traced:
        recorded = adapter.generate("a red circle", seed=3, steps=2)
        red, circle = traced.word_map("red", normalized=False), traced.word_map("circle", normalized=False)
    assert list(plain.getdata()) == list(recorded.getdata())
    assert red.shape == circle.shape == (64, 64)
    assert (red - circle).abs().max() > 1e-6
    kinds = {g.location for g in traced.record.accumulator.groups}
    assert kinds == ({JOINT} if model == "sd3" else {DOUBLE, SINGLE})


def test_processors_restored_after_an_exception(flux):
    before = dict(flux.denoiser.attn_processors)
    with pytest.raises(RuntimeError, match="boom"):
        with trace(flux):
            installed = flux.denoiser.attn_processors
            assert all(isinstance(p, JointRecordingProcessor) for p in installed.values())
            raise RuntimeError("boom")
    after = flux.denoiser.attn_processors
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
