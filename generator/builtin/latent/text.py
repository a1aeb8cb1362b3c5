"""Built-in models: teach the latent model's text encoder where each named object goes (``--stage text``).

The shapes model's T5 encoder, trained only through its UNet's diffusion loss, learned close to a bag of words:
"a red circle above a blue square" and "a blue square above a red circle" give every word the same vector
(cosine 1.0000), so no UNet reading them can tell which object goes on top; relations sit at chance, and two
objects' colours and shapes bind only as far as word order leaks through. This stage trains the encoder with a
*layout readout*: a grid of learned queries cross-attends to the caption's vectors, as the UNet's spatial queries
do, and each must name what the scene shows at its cell (background, or an object's colour and shape). The
readout can only succeed if a word's vector says which object it belongs to and where that object goes.

The fix needs two things, each found by measuring (README of the weights): a *positional* block appended to the
encoder (``grow_encoder``: the old blocks' attention is too sharp for the position bias to matter), and enough
relation captions and weight on the objects' cells for the readout to feel the order (``relation_share``,
``background_weight``); without either, the swapped captions' vectors stay equal after training. An anchor term
keeps the vectors near the starting encoder's (mean squared distance over real tokens), so the UNet trained on them
stays close to valid and is fine-tuned on the new ones afterwards. Only the encoder is exported; the readout is a
training device.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from generator.builtin.latent.loop import LoopResult, StageConfig, note_start, run_loop, run_weights
from generator.builtin.shapes.world import COLOURS, LAYOUT_WEIGHTS, SHAPES, ShapesStream, render
from generator.builtin.shipped import shipped_weights
from generator.errors import UserError
from generator.progress import ProgressCallback, no_progress

CLASSES = 1 + len(COLOURS) * len(SHAPES)  # background, then every (colour, shape)


@dataclass(frozen=True)
class ReadoutConfig:
    """The layout readout's shape (a training device: it is not exported)."""

    grid: int = 8
    heads: int = 4

    def to_json(self) -> dict[str, int]:
        """A JSON-friendly dict."""
        return {"grid": self.grid, "heads": self.heads}


@dataclass(frozen=True)
class TextTrainConfig(StageConfig):
    """Everything that defines a text-encoder run (``steps`` may grow when a run is resumed)."""

    steps: int = 3000
    batch: int = 64
    learning_rate: float = 2e-3
    warmup_steps: int = 100
    cooldown_steps: int = 0
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.99
    anchor: float = 0.1  # weight of the mean squared distance to the starting encoder's vectors
    background_weight: float = 0.2  # background cells' share of the readout loss, per cell, against an object's
    relation_share: float = 0.5  # share of relation captions in the stream (the world's own: 0.3)
    add_layers: int = 1  # positional blocks appended to the encoder (``grow_encoder``)
    seed: int = 0
    init_from: str | None = None  # an exported folder whose text_encoder/ starts the run (None: the shapes model's)
    checkpoint_every: int = 250
    log_every: int = 50
    model: ReadoutConfig = ReadoutConfig()


class LayoutReadout(nn.Module):
    """Grid cells as learned queries cross-attending to the caption's vectors, each naming its cell's class."""

    def __init__(self, config: ReadoutConfig, dim: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(config.grid * config.grid, dim) * dim**-0.5)
        self.attention = nn.MultiheadAttention(dim, config.heads, batch_first=True)
        self.classify = nn.Linear(dim, CLASSES)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, tokens, dim) vectors and (B, tokens) mask -> (B, cells, CLASSES) logits."""
        queries = self.queries.unsqueeze(0).expand(states.shape[0], -1, -1)
        read, _ = self.attention(queries, states, states, key_padding_mask=mask == 0, need_weights=False)
        return self.classify(read)


def layout_targets(stream: ShapesStream, start: int, size: int, grid: int) -> tuple[torch.Tensor, list[str]]:
    """(B, grid*grid) class of each cell of scenes ``start ..`` (the object covering the cell's centre) and
    their captions."""
    colours, targets, captions = list(COLOURS), [], []
    for index in range(start, start + size):
        scene = stream.scene(index)
        cells = np.zeros((grid, grid), dtype=np.int64)
        for obj, mask in zip(scene.objects, render(scene, grid).masks):
            cells[mask] = 1 + colours.index(obj.colour) * len(SHAPES) + SHAPES.index(obj.shape)
        targets.append(torch.from_numpy(cells.reshape(-1)))
        captions.append(scene.caption)
    return torch.stack(targets), captions


def text_source(init_from: str | None) -> Path:
    """The folder whose ``text_encoder/`` and ``tokenizer/`` a run starts from."""
    return Path(init_from) if init_from else shipped_weights("shapes")


def load_text_parts(folder: Path, dtype: torch.dtype = torch.float32):
    """The tokenizer and T5 encoder of a folder (a Stable Diffusion folder or the shapes model's), padding masked
    inside the encoder as ``StableDiffusionPipeline.encode_prompt`` runs it."""
    from transformers import PreTrainedTokenizerFast, T5EncoderModel

    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer")
    encoder = T5EncoderModel.from_pretrained(folder / "text_encoder", dtype=dtype)
    encoder.config.use_attention_mask = True
    return tokenizer, encoder.eval()


def grow_encoder(encoder, add_layers: int, seed: int = 0):
    """The encoder with ``add_layers`` positional T5 blocks appended before its final norm (-> T5EncoderModel).

    A trained block's attention is content-based and saturated (softmax weights of 1.0000 on one word), so the
    relative position bias, a few tenths, changes nothing and gets no gradient: swapping two objects' noun
    phrases leaves every word's vector as it was. A positional block's query and key weights are zero (and stay
    zero: ``frozen_names``), so its attention is the position bias alone: each word reads the words at given
    offsets, which is what says whether it comes before "above" or after it. Its output projections start at zero
    and the bias is started peaked (``_positional_bias``), which the content blocks share but barely feel: the grown
    encoder starts with nearly the vectors it had (cosine 0.999 on average, 0.98 at worst over a few captions), so
    the UNet trained on them stays close to valid."""
    from transformers import T5EncoderModel

    if add_layers == 0:
        return encoder
    config = copy.deepcopy(encoder.config)
    config.num_layers += add_layers
    torch.manual_seed(seed)
    grown = T5EncoderModel(config).to(encoder.dtype)
    missing, unexpected = grown.load_state_dict(encoder.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("encoder.block.") for k in missing), (missing, unexpected)
    with torch.no_grad():
        for block in grown.encoder.block[-add_layers:]:
            attention = block.layer[0].SelfAttention
            for weight in (attention.q.weight, attention.k.weight, attention.o.weight,
                           block.layer[1].DenseReluDense.wo.weight):
                weight.zero_()
        _positional_bias(grown)
    return grown.eval()


POSITIONAL_STRENGTH = 4.0  # logit added at the offsets a head starts out reading


def _positional_bias(encoder) -> None:
    """Start each head's position bias peaked at a span of offsets: the next few words, the previous few, the
    words beyond those, the words before those (so a positional block reads those spans from its first step; the
    bias is T5's shared one, so the content-based blocks see it too, by a few logits against their tens)."""
    attention = encoder.encoder.block[0].layer[0].SelfAttention
    spans = [range(1, 4), range(-3, 0), range(4, 12), range(-11, -3)]
    buckets = attention._relative_position_bucket(
        torch.arange(-16, 17), bidirectional=True, num_buckets=attention.relative_attention_num_buckets,
        max_distance=attention.relative_attention_max_distance)
    weight = attention.relative_attention_bias.weight
    for head in range(weight.shape[1]):
        span = spans[head % len(spans)]
        for offset, bucket in zip(range(-16, 17), buckets.tolist()):
            if offset in span:
                weight[bucket, head] = POSITIONAL_STRENGTH


def frozen_names(encoder, add_layers: int) -> set[str]:
    """The positional blocks' query and key weights: zero by construction, not trained."""
    first = encoder.config.num_layers - add_layers
    return {f"encoder.block.{i}.layer.0.SelfAttention.{w}.weight"
            for i in range(first, encoder.config.num_layers) for w in ("q", "k")}


def tokenize(tokenizer, captions: list[str]):
    """Padded ids and attention mask, as the pipeline tokenizes."""
    return tokenizer(captions, padding="max_length", truncation=True, max_length=tokenizer.model_max_length,
                     return_tensors="pt")


def train_text(config: TextTrainConfig, run_dir: Path, device: str = "cpu", resume: bool = True,
               progress: ProgressCallback = no_progress) -> LoopResult:
    """Train (or continue) the text-encoder run in ``run_dir`` with the layout readout and the anchor."""
    tokenizer, encoder = load_text_parts(text_source(config.init_from))
    encoder = grow_encoder(encoder, config.add_layers, config.seed)
    start = copy.deepcopy(encoder).requires_grad_(False).to(device)
    torch.manual_seed(config.seed)
    readout = LayoutReadout(config.model, encoder.config.d_model).to(device)
    encoder = encoder.to(device).train()
    layouts = {**LAYOUT_WEIGHTS, "relation": 0.0}
    layouts = {k: v * (1 - config.relation_share) / sum(layouts.values()) for k, v in layouts.items()}
    stream = ShapesStream(seed=config.seed, layouts={**layouts, "relation": config.relation_share})
    class_weights = torch.ones(CLASSES, device=device)
    class_weights[0] = config.background_weight

    def batch_loss(position: int, generator: torch.Generator) -> torch.Tensor:
        targets, captions = layout_targets(stream, position, config.batch, config.model.grid)
        encoded = tokenize(tokenizer, captions)
        ids, mask = encoded.input_ids.to(device), encoded.attention_mask.to(device)
        states = encoder(ids, attention_mask=mask)[0]
        logits = readout(states, mask)
        layout = F.cross_entropy(logits.reshape(-1, CLASSES), targets.reshape(-1).to(device), weight=class_weights)
        with torch.no_grad():
            anchor_states = start(ids, attention_mask=mask)[0]
        real = mask.unsqueeze(-1).float()
        anchor = ((states - anchor_states) ** 2 * real).sum() / (real.sum() * states.shape[-1])
        return layout + config.anchor * anchor

    frozen = frozen_names(encoder, config.add_layers)
    named = {**{f"text_encoder.{n}": p for n, p in encoder.named_parameters() if n not in frozen},
             **{f"readout.{n}": p for n, p in readout.named_parameters()}}
    note_start(run_dir, config.init_from, "text_encoder")
    return run_loop(config.settings(), config.to_json(), named, batch_loss, run_dir, resume, progress)


def text_run_encoder(run_dir: Path, dtype: torch.dtype = torch.float32):
    """The tokenizer and EMA encoder of a text run (frozen, eval mode), and the run's record."""
    weights, record = run_weights(run_dir, "text_encoder.")
    tokenizer, encoder = load_text_parts(text_source(record["config"].get("init_from")), dtype)
    add_layers = record["config"].get("add_layers", 0)
    encoder = grow_encoder(encoder, add_layers)
    loaded = encoder.load_state_dict({k: v.to(dtype) for k, v in weights.items()}, strict=False)
    untrained = {*frozen_names(encoder, add_layers), "encoder.embed_tokens.weight"}  # the latter is shared.weight
    if loaded.unexpected_keys or set(loaded.missing_keys) - untrained:
        source = text_source(record["config"].get("init_from"))
        raise UserError(f"{run_dir}: its text encoder no longer fits the one it grew from ({source}, changed "
                        "since); train the text stage again")
    return tokenizer, encoder.requires_grad_(False).eval(), record


def text_parts_of(source: str | None, dtype: torch.dtype = torch.float32):
    """The frozen tokenizer and text encoder a UNet trains on: a text run's (``--stage text``), an exported
    folder's, or (None) the shipped shapes model's."""
    if source is not None and (Path(source) / "checkpoint.pt").exists():
        tokenizer, encoder, _ = text_run_encoder(Path(source), dtype)
        return tokenizer, encoder
    tokenizer, encoder = load_text_parts(text_source(source), dtype)
    return tokenizer, encoder.requires_grad_(False)
