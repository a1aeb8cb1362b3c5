"""The text view shows every text encoder of a model that has several (SD3: two CLIPs and T5; Flux: CLIP and T5).

Bake side: the tiny SD3 and Flux pipelines give each encoder's own pieces, equal to its own tokenizer's ids, with
what the denoiser takes from it. Render side: a page with an ``encoders`` list labels each one; a page without
(one encoder) shows none of it.
"""

from __future__ import annotations

import json

import pytest

from generator.render import render_site

PROMPT = "a smiling, red cat chewing gum"


@pytest.mark.parametrize("model, expected", [
    ("testing:tiny-sd3", [("text_encoder", "clip", "tokens+pooled", False), ("text_encoder_2", "clip", "tokens+pooled", False),
                          ("text_encoder_3", "t5", "tokens", False)]),
    ("testing:tiny-flux", [("text_encoder", "clip", "pooled", False), ("text_encoder_2", "t5", "tokens", True)]),
])
def test_each_encoder_gets_its_own_tokenizers_pieces(model, expected):
    from generator.bake.prompt.tokens import tokens_section
    from generator.models.registry import load_model

    adapter = load_model(model, device="cpu")
    encoders = tokens_section(adapter, PROMPT)["encoders"]
    assert [(e["slot"], e["family"], e["role"], e["shown"] and e["family"] == "t5") for e in encoders] == expected
    assert sum(e["shown"] for e in encoders) == 1  # the main list's encoder is named once
    for entry in encoders:
        tokenizer = getattr(adapter.pipeline, entry["slot"].replace("text_encoder", "tokenizer"))
        ids = tokenizer(PROMPT, padding="max_length", max_length=entry["max_length"], truncation=True)["input_ids"]
        pad = tokenizer.pad_token_id
        first_end = ids.index(tokenizer.eos_token_id, 1 if ids[0] == tokenizer.bos_token_id else 0)
        assert [p["id"] for p in entry["pieces"]] == ids[:first_end + 1]
        assert entry["pads"] == len(ids) - first_end - 1 and (entry["pads"] == 0 or ids[-1] == pad)
    t5 = next(e for e in encoders if e["family"] == "t5")
    assert t5["max_length"] == adapter.text_tokens and t5["pieces"][-1]["text"] == "</s>"


def test_single_encoder_models_get_no_list():
    from generator.experiments.prompt.text import encoder_tokens
    from generator.models.registry import load_model

    assert encoder_tokens(load_model("testing:tiny-sd", device="cpu"), PROMPT) == ()


SD3_ENCODERS = [
    {"slot": "text_encoder", "class": "CLIPTextModelWithProjection", "family": "clip", "role": "tokens+pooled",
     "max_length": 77, "shown": True, "pads": 73,
     "pieces": [{"id": 1, "text": "<|startoftext|>", "special": "start"}, {"id": 5, "text": "red</w>", "special": ""},
                {"id": 6, "text": "cat</w>", "special": ""}, {"id": 2, "text": "<|endoftext|>", "special": "end"}]},
    {"slot": "text_encoder_3", "class": "T5EncoderModel", "family": "t5", "role": "tokens", "max_length": 256,
     "shown": False, "pads": 253,
     "pieces": [{"id": 9, "text": "▁red", "special": ""}, {"id": 8, "text": "▁cat", "special": ""},
                {"id": 1, "text": "</s>", "special": "end"}]},
]


def _tokens() -> dict:
    """The main text view of a bake (the first CLIP's pieces)."""
    texts, specials = ["<|startoftext|>", "red</w>", "cat</w>", "<|endoftext|>", "<|endoftext|>"], ["start", "", "", "end", "pad"]
    pieces = [{"index": i, "id": 10 + i, "text": t, "special": s, "word": (i - 1) if not s else None}
              for i, (t, s) in enumerate(zip(texts, specials))]
    return {"max_length": 5, "dim": 4, "truncated": [], "pieces": pieces, "norms": [1.0] * 5,
            "similarity": {"tokens": [0, 1], "values": [[1.0, 0.2], [0.2, 1.0]]}}


def test_page_labels_every_encoder_with_its_pieces_and_role(site):
    path = site / "generated" / "prompts" / "red-cat.json"
    manifest = json.loads(path.read_text())
    manifest["tokens"] = {**_tokens(), "encoders": SD3_ENCODERS}
    path.write_text(json.dumps(manifest))
    other_path = site / "generated" / "prompts" / "two-dogs.json"
    other_manifest = json.loads(other_path.read_text())
    other_manifest["tokens"] = _tokens()  # one encoder: no list
    other_path.write_text(json.dumps(other_manifest))
    render_site(site / "generated", site)
    page = (site / "generated" / "pages" / "red-cat.md").read_text()
    block = page[page.index('<div class="atlas-encoders"'):page.index("</div>", page.index('<div class="atlas-encoders"'))]
    assert 'data-encoders="2"' in block and "with <strong>2</strong> text encoders" in block
    assert "the CLIPTextModelWithProjection’s, the one the word maps use" in block
    clip = block[block.index('data-slot="text_encoder"'):block.index('data-slot="text_encoder_3"')]
    t5 = block[block.index('data-slot="text_encoder_3"'):]
    assert "1. CLIPTextModelWithProjection" in clip and "(CLIP, 77 positions)" in clip and "pooled vector" in clip
    assert "<code class=\"atlas-piece\">red&lt;/w&gt;</code>" in clip and "padding × 73" in clip and "causal" in clip
    assert "2. T5EncoderModel" in t5 and "(T5, 256 positions)" in t5 and "▁cat" in t5 and "bidirectional" in t5
    assert "pooled" not in t5 and "padding × 253" in t5
    other = (site / "generated" / "pages" / "two-dogs.md").read_text()
    assert "atlas-encoders" not in other and "text encoders" not in other
