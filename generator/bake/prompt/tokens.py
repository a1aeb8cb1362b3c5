"""Bake stage: the ``tokens`` manifest section (text view): real pieces, embedding norms and similarities."""

from __future__ import annotations

from generator.bake.prompt.sections import AfterSampling
from generator.bake.store import AssetStore
from generator.experiments.prompt.text import text_view
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
        return {"tokens": tokens_section(adapter, prompt.text)}


def tokens_section(adapter: ModelAdapter, text: str) -> dict:
    """The manifest section for one prompt text."""
    view = text_view(adapter, text)
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
    }
