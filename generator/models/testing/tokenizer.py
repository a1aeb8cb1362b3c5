"""Models stage: writes the small CLIP-format BPE tokenizer of the `testing:` models, from a local word list.

Run ``python -m generator.models.testing.tokenizer`` to regenerate ``tokenizers/tiny-clip/`` (committed). The
vocabulary is learned by byte-pair encoding over the word list below, so common words are one token and rare
words split into several pieces, as with the real CLIP tokenizer (which DAAM's word merging must handle).
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers.pre_tokenizers import ByteLevel

TOKENIZER_DIR = Path(__file__).parent / "tokenizers" / "tiny-clip"
START, END = "<|startoftext|>", "<|endoftext|>"
VOCAB_SIZE = 1000

# Frequent words appear several times so BPE merges them whole; the rest end up in pieces.
COMMON = """a an the of in on with and to at by from over under above below left right top bottom center
photo picture painting drawing image of high quality red green blue yellow purple orange black white pink
cat dog dogs horse horses monkey elephant elephants giraffe zebra book window park water sky sea tree house
two three four one small large big little running flying walking playing sitting smiling standing eating
circle square triangle shape shapes man woman car hat costume"""
RARE = """chewing gum halloween astronaut watercolor skateboard lighthouse mountain sunflower rocket
oil painting old castle dragon robot bicycle umbrella penguin waterfall forest cathedral"""


def _corpus() -> list[str]:
    words = COMMON.split() * 20 + RARE.split()
    return [" ".join(words[i : i + 8]) for i in range(0, len(words), 8)]


def build(directory: Path = TOKENIZER_DIR) -> None:
    """Learn the BPE merges and write ``vocab.json``, ``merges.txt`` and the tokenizer configs."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    alphabet = sorted(ByteLevel.alphabet())
    tokenizer = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[START, END],
        initial_alphabet=alphabet,
        end_of_word_suffix="</w>",
        min_frequency=2,  # words seen once stay in pieces
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer)
    state = json.loads(tokenizer.to_str())["model"]
    vocab: dict[str, int] = dict(state["vocab"])
    for char in alphabet:  # CLIP looks up every byte both inside a word and at its end
        for piece in (char, char + "</w>"):
            vocab.setdefault(piece, len(vocab))
    merges = [m if isinstance(m, str) else " ".join(m) for m in state["merges"]]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab, indent=0, sort_keys=True, ensure_ascii=False))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    config = {
        "bos_token": START,
        "eos_token": END,
        "pad_token": END,
        "unk_token": END,
        "model_max_length": 77,
        "tokenizer_class": "CLIPTokenizer",
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))


if __name__ == "__main__":
    build()
