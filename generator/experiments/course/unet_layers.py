"""Experiments stage: the digits UNet as the training chapter draws it, read from the model itself.

Nothing here is written down by hand: the model of a stage is built from ``generator/builtin/digits/unet.py`` at
the chapter's width, and one forward pass on a zero input (every top-level block hooked) records, per block, the
shapes that go in and come out. Three more facts come from perturbing that pass:

* a skip connection: a block's input begins with the exact output of an earlier block (the course's Concat puts
  the skip first);
* where a conditioning vector (time t/T, class one-hot) enters: the first block whose input changes when only
  that vector's embedding is replaced;
* how it enters: replaced by zeros, then ones, the modulated channels move by exactly 1 where it is added, and by
  the features themselves where it multiplies them.

So a changed width, block or conditioning path in the model definition changes the figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from generator.builtin.digits.unet import build_unet

SIGNALS = {"time": "t / T", "class": "class one-hot"}


@dataclass(frozen=True)
class Block:
    """One top-level block of the trunk, in the order the forward pass calls it (shapes without the batch)."""

    name: str  # the attribute on the model: "in_block", "down1", ...
    kind: str  # its class: "ConvBlock", "DownBlock", ...
    input: tuple[int, ...]
    output: tuple[int, ...]
    params: int
    skip_from: str | None = None  # the block whose output is concatenated in front of this block's input


@dataclass(frozen=True)
class Conditioning:
    """An embedding of the time or class signal and where it modulates the trunk."""

    name: str  # "time_fc1", "class_fc2", ...
    kind: str
    signal: str  # "time" or "class"
    input: tuple[int, ...]
    output: tuple[int, ...]
    params: int
    enters: str  # the trunk block whose input it changes first
    operation: str  # "add" or "multiply"


@dataclass(frozen=True)
class UNetLayers:
    """The whole model as the figure shows it."""

    stage: str
    architecture: str
    hidden: int
    params: int
    input: tuple[int, ...]
    blocks: tuple[Block, ...]
    conditioning: tuple[Conditioning, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the manifest."""
        return {"stage": self.stage, "architecture": self.architecture, "hidden": self.hidden, "params": self.params,
                "input": list(self.input),
                "blocks": [{"name": b.name, "kind": b.kind, "input": list(b.input), "output": list(b.output),
                            "params": b.params, "skip_from": b.skip_from} for b in self.blocks],
                "conditioning": [{"name": c.name, "kind": c.kind, "signal": c.signal, "input": list(c.input),
                                  "output": list(c.output), "params": c.params, "enters": c.enters,
                                  "operation": c.operation} for c in self.conditioning]}


def _inputs(model: nn.Module, stage: str) -> tuple[torch.Tensor, ...]:
    """A zero image and the stage's other arguments: t = 0.5 and class 3 (values that differ from zeros)."""
    x = torch.zeros(1, 1, 28, 28)  # (N, 1, 28, 28)
    if stage == "denoiser":
        return (x,)
    t = torch.full((1,), 0.5)
    return (x, t) if stage == "time" else (x, t, torch.tensor([3]))


def _record(model: nn.Module, args: tuple[torch.Tensor, ...],
            replace: tuple[str, Callable[[torch.Tensor], torch.Tensor]] | None = None
            ) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, input, output) of every top-level block in call order; ``replace`` swaps one block's output."""
    calls: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    handles = []
    for name, module in model.named_children():
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor, name: str = name) -> torch.Tensor | None:
            changed = replace[1](output) if replace is not None and replace[0] == name else None
            calls.append((name, inputs[0].detach().clone(), (output if changed is None else changed).detach().clone()))
            return changed

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(*args)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def unet_layers(stage: str, hidden: int) -> UNetLayers:
    """The blocks, skips and conditioning of the digits UNet of ``stage`` at width ``hidden``."""
    torch.manual_seed(0)  # random weights: only shapes and wiring are read, never values
    model = build_unet(stage, hidden).eval()
    args = _inputs(model, stage)
    modules = dict(model.named_children())
    calls = _record(model, args)
    embeddings = [(n, i, o) for n, i, o in calls if i.ndim == 2]  # (N, features): a time or class embedding
    trunk = [(n, i, o) for n, i, o in calls if i.ndim == 4]  # (N, C, H, W)
    blocks = []
    for index, (name, tensor_in, tensor_out) in enumerate(trunk):
        skip = next((earlier for earlier, _, out in trunk[:index]
                     if out.shape[1] < tensor_in.shape[1] and out.shape[2:] == tensor_in.shape[2:]
                     and torch.equal(tensor_in[:, :out.shape[1]], out)), None)
        blocks.append(Block(name, type(modules[name]).__name__, tuple(tensor_in.shape[1:]), tuple(tensor_out.shape[1:]),
                            _params(modules[name]), skip))
    conditioning = []
    for name, tensor_in, tensor_out in embeddings:
        signal = "time" if tensor_in.shape[1] == 1 and torch.equal(tensor_in[:, 0], args[1]) else "class"
        zeros = _record(model, args, (name, torch.zeros_like))
        ones = _record(model, args, (name, torch.ones_like))
        enters, operation = _entry(trunk, zeros, ones, tensor_out.shape[1])
        conditioning.append(Conditioning(name, type(modules[name]).__name__, signal, tuple(tensor_in.shape[1:]),
                                         tuple(tensor_out.shape[1:]), _params(modules[name]), enters, operation))
    return UNetLayers(stage, type(model).__name__, hidden, _params(model), tuple(args[0].shape[1:]), tuple(blocks),
                      tuple(conditioning))


def _entry(trunk: list, zeros: list, ones: list, channels: int) -> tuple[str, str]:
    """(the first trunk block whose input the embedding changes, "add" or "multiply")."""
    baseline = {name: tensor_in for name, tensor_in, _ in trunk}
    for name, with_zeros, _ in zeros:
        if name in baseline and not torch.equal(with_zeros, baseline[name]):
            with_ones = next(tensor_in for other, tensor_in, _ in ones if other == name)
            moved = (with_ones - with_zeros)[:, -channels:]  # the modulated channels: the Concat puts them last
            added = torch.allclose(moved, torch.ones_like(moved), atol=1e-4)
            return name, "add" if added else "multiply"
    raise ValueError("a conditioning embedding changes no block of the trunk")
