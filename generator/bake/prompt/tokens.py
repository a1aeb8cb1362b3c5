"""Bake stage: the ``tokens`` manifest section (text view): real pieces, embedding norms and similarities.

It also records what the text encoder is (``encoder``), so every caption that describes it says what is true of
this model: a causal encoder (CLIP's: each token reads only the tokens before it) or a bidirectional one (T5's:
every token reads the whole prompt), and whether the denoiser's cross-attention masks the padding out.
"""

from __future__ import annotations

import torch

from generator.bake.prompt.sections import AfterSampling
from generator.bake.store import AssetStore
from generator.experiments.prompt.text import encoder_tokens, text_view
from generator.experiments.prompt.trajectory import Trajectory, TrajectoryRequest
from generator.models.base import ModelAdapter
from generator.spec.prompt_set import PromptSpec


class TokensSection(AfterSampling):
    """What the text encoder sees of the prompt (text-conditioned models only)."""

    name = "tokens"

    def applies(self, adapter: ModelAdapter, prompt: PromptSpec) -> bool:
        """Models conditioned on text."""
        return adapter.capabilities.conditioning == "text"

    def bake(
        self, adapter: ModelAdapter, prompt: PromptSpec, request: TrajectoryRequest, trajectory: Trajectory, store: AssetStore
    ) -> dict:
        """Tokenize and encode the prompt (after sampling: nothing to hook)."""
        return {"tokens": {**tokens_section(adapter, prompt.text), "encoder": encoder_facts(adapter)}}


# transformers model_type -> (family, attention): how each position of the encoder's output was computed
ENCODER_FAMILIES = {
    "clip_text_model": ("clip", "causal"),
    "clip": ("clip", "causal"),
    "t5": ("t5", "bidirectional"),
    "umt5": ("t5", "bidirectional"),
    "mt5": ("t5", "bidirectional"),
}


def text_encoders(adapter: ModelAdapter) -> list[torch.nn.Module]:
    """The adapter's text encoder modules (SDXL has two), found on the adapter or on its diffusers pipeline."""
    owner = getattr(adapter, "pipeline", adapter)
    return [m for m in (getattr(owner, "text_encoder", None), getattr(owner, "text_encoder_2", None)) if m is not None]


def encoder_facts(adapter: ModelAdapter) -> dict:
    """What the text encoder is: its classes, family (clip, t5 or other), attention, and whether padding is masked."""
    modules = text_encoders(adapter)
    kinds = {ENCODER_FAMILIES.get(getattr(m.config, "model_type", ""), ("other", "unknown")) for m in modules}
    family, attention = kinds.pop() if len(kinds) == 1 else ("other", "unknown")
    with torch.inference_mode():
        masked = "encoder_attention_mask" in adapter.encode_prompts([""]).cond.added
    return {"classes": [type(m).__name__ for m in modules], "family": family, "attention": attention,
            "padding_masked": masked}


def tokens_section(adapter: ModelAdapter, text: str) -> dict:
    """The manifest section for one prompt text."""
    view = text_view(adapter, text)
    encoders = [
        {"slot": e.slot, "class": e.encoder_class, "family": e.family, "role": e.role, "max_length": e.max_length,
         "shown": e.shown, "pads": sum(p.special == "pad" for p in e.pieces),
         "pieces": [{"index": p.index, "id": p.token_id, "text": p.text, "special": p.special, "word": p.word_index}
                    for p in e.pieces if p.special != "pad"]}
        for e in encoder_tokens(adapter, text)
    ]
    return {
        "max_length": len(view.pieces),
        "dim": view.dim,
        "truncated": list(view.truncated),
        "pieces": [
            {"index": p.index, "id": p.token_id, "text": p.text, "special": p.special, "word": p.word_index}
            for p in view.pieces
        ],
        "norms": [round(v, 3) for v in view.norms],
        "similarity": {
            "tokens": list(view.similarity_tokens),
            "values": [[round(float(v), 3) for v in row] for row in view.similarity],
        },
        **({"encoders": encoders} if encoders else {}),  # each of several encoders' own pieces (padding counted)
    }
