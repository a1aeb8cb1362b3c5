"""The training chapter's UNet figure is read from the model: its shapes, skips and conditioning follow the code."""

from __future__ import annotations

import pytest
import torch

from generator.bake.chapters.diagrams import unet_geometry
from generator.builtin.digits.unet import TimeConditionalUNet, build_unet
from generator.experiments.course import unet_layers as module
from generator.experiments.course.unet_layers import unet_layers
from generator.render.chapters.training_svg import diagram_svg


def _real_shapes(hidden: int) -> dict[str, tuple[int, ...]]:
    """Each block's output, from running the model's blocks one by one as the course's figure wires them."""
    model = build_unet("class", hidden).eval()
    with torch.no_grad():
        skip1 = model.in_block(torch.zeros(1, 1, 28, 28))
        skip2 = model.down1(skip1)
        skip3 = model.down2(skip2)
        flat = model.flatten(skip3)
        h = model.unflatten(flat)
        up1 = model.up1(torch.cat([skip3, h], 1))
        up2 = model.up2(torch.cat([skip2, up1], 1))
        out = model.out_block(torch.cat([skip1, up2], 1))
        result = model.out_conv(out)
    named = {"in_block": skip1, "down1": skip2, "down2": skip3, "flatten": flat, "unflatten": h, "up1": up1, "up2": up2,
             "out_block": out, "out_conv": result}
    return {name: tuple(tensor.shape[1:]) for name, tensor in named.items()}


def _svg(hidden: int, stage: str = "class") -> str:
    unet = unet_layers(stage, hidden).to_json()
    unet["geometry"] = unet_geometry(unet)
    return str(diagram_svg(unet, "UNet"))


@pytest.mark.parametrize("hidden", [4, 6])
def test_the_figure_lists_the_real_layer_shapes_of_its_model(hidden: int) -> None:
    layers = unet_layers("class", hidden)
    real = _real_shapes(hidden)
    assert [b.name for b in layers.blocks] == list(real)  # every block, in the order the forward pass calls them
    assert {b.name: b.output for b in layers.blocks} == real
    assert layers.params == sum(p.numel() for p in build_unet("class", hidden).parameters())
    svg = _svg(hidden)
    for name, shape in real.items():
        box = svg.split(f'data-block="{name}"', 1)[1].split("</g>", 1)[0]
        assert "×".join(map(str, shape)) in box, (name, shape)


def test_a_changed_width_changes_the_figure() -> None:
    narrow, wide = _svg(4), _svg(6)
    assert narrow != wide
    assert "8×7×7" in narrow and "8×7×7" not in wide and "12×7×7" in wide
    assert 'data-hidden="4"' in narrow and 'data-hidden="6"' in wide


def test_skips_and_conditioning_are_read_from_the_forward_pass() -> None:
    layers = unet_layers("class", 4)
    assert {b.name: b.skip_from for b in layers.blocks if b.skip_from} == {"up1": "down2", "up2": "down1",
                                                                           "out_block": "in_block"}
    assert {b.name: b.input for b in layers.blocks}["up1"] == (16, 7, 7)  # concat of down2 (8) and unflatten (8)
    assert {(c.name, c.signal, c.enters, c.operation) for c in layers.conditioning} == {
        ("class_fc1", "class", "up1", "multiply"), ("time_fc1", "time", "up1", "add"),
        ("class_fc2", "class", "up2", "multiply"), ("time_fc2", "time", "up2", "add")}
    assert unet_layers("denoiser", 4).conditioning == ()
    assert {c.name for c in unet_layers("time", 4).conditioning} == {"time_fc1", "time_fc2"}


def test_a_model_wired_differently_is_drawn_differently(monkeypatch: pytest.MonkeyPatch) -> None:
    """A variant whose time vector multiplies the bottleneck instead of being added: the figure says so."""

    class TimeScales(TimeConditionalUNet):
        def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            t = t.reshape(-1, 1).to(x.dtype)
            return self._forward(x, self.time_fc1(t), None, None, self.time_fc2(t))

    monkeypatch.setattr(module, "build_unet", lambda stage, hidden: TimeScales(1, hidden))
    layers = unet_layers("time", 4)
    assert {(c.name, c.enters, c.operation) for c in layers.conditioning} == {("time_fc1", "up1", "multiply"),
                                                                              ("time_fc2", "up2", "add")}
