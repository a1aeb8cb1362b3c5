"""Bake stage: the geometry of the training chapter's UNet figure, and its PNG; the loss chart's PNG for slides.

``unet_geometry`` lays out what ``generator/experiments/course/unet_layers.py`` read from the model (blocks in
call order, skips, where time and class enter) as boxes and paths in one coordinate system; render draws them as
SVG (generator/render/chapters/diagram_svg.py) and ``diagram_png`` as the PNG download, so page and slide show
the same figure. The layout is a U: encoder blocks down the first column by output resolution, the bottleneck
along the bottom, decoder blocks up the next column by input resolution (blocks at one resolution side by side),
skips as horizontal arrows at their resolution, each conditioning embedding a box beside the decoder with an
arrow into a ``+`` or ``×`` node on the path it modulates.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from PIL import Image, ImageDraw

from generator.bake.chapters.slides import BACKGROUND, INK, font, plain

BOX_W, BOX_H = 132, 56
COND_H = 40
COL_GAP, ROW_GAP = 46, 60
MARGIN = 16
NODE_R = 9
ROLE_FILL = {"io": (236, 236, 236), "encoder": (219, 228, 255), "bottleneck": (255, 236, 204),
             "decoder": (214, 240, 222), "condition": (250, 224, 236)}
PATH_INK = {"main": (60, 60, 60), "skip": (64, 81, 181), "condition": (200, 60, 120)}
SIGNAL_WORDS = {"time": "t/T", "class": "class c"}
OUTPUT_WORDS = {"denoiser": "denoised x", "time": "predicted noise", "class": "predicted noise"}
INPUT_WORDS = {"denoiser": "noisy z", "time": "x_t", "class": "x_t"}


def shape_text(shape: Sequence[int]) -> str:
    """'32×14×14' (channels × height × width) or '64' for a vector."""
    return "×".join(str(n) for n in shape)


def _box(col: float, row: float, lines: list[str], role: str, name: str) -> dict:
    return {"x": MARGIN + col * (BOX_W + COL_GAP), "y": MARGIN + row * (BOX_H + ROW_GAP), "w": BOX_W, "h": BOX_H,
            "lines": lines, "role": role, "name": name}


def _centre(box: dict) -> tuple[float, float]:
    return box["x"] + box["w"] / 2, box["y"] + box["h"] / 2


def _route(a: dict, b: dict) -> list[list[float]]:
    """Points from box ``a`` to box ``b``: straight when they share a row or column, else across then up/down."""
    (ax, ay), (bx, by) = _centre(a), _centre(b)
    if abs(ay - by) < 1:
        return [[a["x"] + a["w"], ay], [b["x"], by]] if bx > ax else [[a["x"], ay], [b["x"] + b["w"], by]]
    down = by > ay
    if abs(ax - bx) < 1:
        return [[ax, a["y"] + a["h"] if down else a["y"]], [bx, b["y"] if down else b["y"] + b["h"]]]
    start = [a["x"] + a["w"], ay] if bx > ax else [a["x"], ay]
    return [start, [bx, ay], [bx, b["y"] if down else b["y"] + b["h"]]]


def unet_geometry(layers: dict[str, Any]) -> dict[str, Any]:
    """Boxes, paths and nodes of the UNet figure from ``UNetLayers.to_json()`` (see the module docstring)."""
    blocks = layers["blocks"]
    sizes = sorted({b["output"][-1] for b in blocks} | {layers["input"][-1]}, reverse=True)
    level = {size: i for i, size in enumerate(sizes)}  # 28 -> 0, 14 -> 1, 7 -> 2, 1 -> 3
    bottleneck = min(range(len(blocks)), key=lambda i: (blocks[i]["output"][-1], i))
    boxes: dict[str, dict] = {"input": _box(0, 0, [INPUT_WORDS.get(layers["stage"], "input"), "input",
                                                   shape_text(layers["input"])], "io", "input")}
    placed: dict[int, float] = {}  # row -> the last column used on it
    for i, block in enumerate(blocks):
        lines = [block["name"], block["kind"], shape_text(block["output"])]
        if i <= bottleneck:
            row, col, role = level[block["output"][-1]], 1.0, "bottleneck" if i == bottleneck else "encoder"
        else:
            row = level[block["input"][-1]]
            col, role = placed.get(row, 0.0) + 1, "bottleneck" if row == len(sizes) - 1 else "decoder"
        placed[row] = col
        boxes[block["name"]] = _box(col, row, lines, role, block["name"])
    last = boxes[blocks[-1]["name"]]
    out_col = (last["x"] - MARGIN) / (BOX_W + COL_GAP) + 1
    boxes["output"] = _box(out_col, 0, [OUTPUT_WORDS.get(layers["stage"], "output"), "output",
                                         shape_text(blocks[-1]["output"])], "io", "output")
    order = ["input"] + [b["name"] for b in blocks] + ["output"]
    paths = [{"points": _route(boxes[a], boxes[b]), "role": "main"} for a, b in zip(order, order[1:])]
    for block in blocks:
        if block["skip_from"]:
            source, target = boxes[block["skip_from"]], boxes[block["name"]]
            points = [[source["x"] + source["w"], _centre(source)[1]], [target["x"], _centre(target)[1]]]
            paths.append({"points": points,
                          "role": "skip", "label": "concat"})
    nodes, entering = [], {}
    for cond in layers["conditioning"]:
        entering.setdefault(cond["enters"], []).append(cond)
    for name, conds in entering.items():
        (x0, y0), (x1, y1) = paths[order.index(name) - 1]["points"][-2:]  # the last leg of the path into it
        column = (boxes[name]["x"] - MARGIN) / (BOX_W + COL_GAP) + 1
        middle = (y0 + y1) / 2
        for k, cond in enumerate(conds):
            symbol = "+" if cond["operation"] == "add" else "×"
            share = (k + 1) / (len(conds) + 1)
            node = {"x": x0 + share * (x1 - x0), "y": y0 + share * (y1 - y0), "symbol": symbol, "name": cond["name"]}
            upward = -1 if y1 < y0 else 1  # boxes stacked in the order their nodes come along the path
            top = middle + upward * (k - (len(conds) - 1) / 2) * (COND_H + 6) - COND_H / 2
            box = {"x": MARGIN + column * (BOX_W + COL_GAP), "y": top, "w": BOX_W, "h": COND_H, "role": "condition",
                   "name": cond["name"], "lines": [f"{cond['name']} ({cond['kind']})",
                                                   f"{SIGNAL_WORDS[cond['signal']]}: {shape_text(cond['input'])} → "
                                                   f"{shape_text(cond['output'])}"]}
            boxes[cond["name"]] = box
            nodes.append(node)
            paths.append({"points": [[box["x"], top + COND_H / 2], [node["x"] + NODE_R, node["y"]]],
                          "role": "condition", "label": symbol})
    right = max(box["x"] + box["w"] for box in boxes.values())
    bottom = max(box["y"] + box["h"] for box in boxes.values())
    return {"width": math.ceil(right + MARGIN), "height": math.ceil(bottom + MARGIN),
            "boxes": list(boxes.values()), "paths": paths, "nodes": nodes}


def arrowhead(points: Sequence[Sequence[float]], size: float = 8.0) -> list[list[float]]:
    """The three corners of an arrowhead at the end of a path (pointing along its last segment)."""
    (x0, y0), (x1, y1) = points[-2], points[-1]
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    return [[x1, y1], [x1 - size * ux + size * 0.5 * uy, y1 - size * uy - size * 0.5 * ux],
            [x1 - size * ux - size * 0.5 * uy, y1 - size * uy + size * 0.5 * ux]]


def diagram_png(geometry: dict[str, Any], title: str = "", scale: int = 2) -> Image.Image:
    """The figure of ``unet_geometry`` as a PNG, ``scale`` times its size (for slides)."""
    title_height = 28 if title else 0
    image = Image.new("RGB", (geometry["width"] * scale, (geometry["height"] + title_height) * scale), BACKGROUND)
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((MARGIN * scale, 6 * scale), plain(title), font=font(15 * scale), fill=INK)

    def at(point: Sequence[float]) -> tuple[float, float]:
        return point[0] * scale, (point[1] + title_height) * scale

    for path in geometry["paths"]:
        ink = PATH_INK.get(path["role"], INK)
        draw.line([at(p) for p in path["points"]], fill=ink, width=2 * scale if path["role"] == "main" else scale)
        draw.polygon([at(p) for p in arrowhead(path["points"])], fill=ink)
    for box in geometry["boxes"]:
        x, y = at((box["x"], box["y"]))
        draw.rounded_rectangle((x, y, x + box["w"] * scale, y + box["h"] * scale), radius=6 * scale,
                               fill=ROLE_FILL.get(box["role"], BACKGROUND), outline=INK, width=scale)
        for k, line in enumerate(box["lines"]):
            size = (13 if k == 0 else 11) * scale
            width = draw.textlength(plain(line), font=font(size))
            draw.text((x + (box["w"] * scale - width) / 2, y + (5 + 16 * k) * scale), plain(line), font=font(size),
                      fill=INK)
    for node in geometry["nodes"]:
        x, y = at((node["x"], node["y"]))
        r = NODE_R * scale
        draw.ellipse((x - r, y - r, x + r, y + r), fill=BACKGROUND, outline=PATH_INK["condition"], width=2 * scale)
        symbol = "x" if node["symbol"] == "×" else node["symbol"]
        width = draw.textlength(symbol, font=font(14 * scale))
        draw.text((x - width / 2, y - 9 * scale), symbol, font=font(14 * scale), fill=PATH_INK["condition"])
    return image


def loss_chart_png(series: Sequence[tuple[str, dict[str, Any]]], title: str, names: dict[str, str],
                   scale: int = 2) -> Image.Image:
    """The training losses of ``series`` ((stage, losses.json content), ...) on one log-scale chart, as a PNG."""
    width, height, left, right, top, bottom = 640, 260, 60, 14, 46, 34
    inks = [((64, 81, 181), (28, 46, 140)), ((194, 24, 91), (142, 14, 63)), ((35, 116, 62), (20, 70, 40))]
    data = []
    for stage, losses in series:
        steps, epochs = [float(v) for v in losses["step_losses"]], [float(v) for v in losses["epoch_losses"]]
        data.append((stage, steps, epochs, int(losses["steps_per_epoch"])))
    values = [v for _, steps, epochs, _ in data for v in steps + epochs]
    x_max = max(len(steps) / per_epoch for _, steps, _, per_epoch in data)
    log_min, log_max = math.log10(min(values)) - 0.02, math.log10(max(values)) + 0.02
    image = Image.new("RGB", (width * scale, height * scale), BACKGROUND)
    draw = ImageDraw.Draw(image)

    def at(epoch: float, loss: float) -> tuple[float, float]:
        x = left + epoch / x_max * (width - left - right)
        y = top + (log_max - math.log10(loss)) / (log_max - log_min) * (height - top - bottom)
        return x * scale, y * scale

    draw.text((left * scale, 4 * scale), plain(title), font=font(14 * scale), fill=INK)
    for exponent in range(math.floor(log_min) - 1, math.ceil(log_max) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0 ** exponent
            if log_min <= math.log10(value) <= log_max:
                _, y = at(0, value)
                draw.line((left * scale, y, (width - right) * scale, y), fill=(225, 225, 225), width=scale)
                draw.text(((left - 40) * scale, y - 7 * scale), f"{value:g}", font=font(11 * scale), fill=INK)
    whole = math.ceil(x_max - 1e-9)
    for epoch in range(whole + 1):
        x, _ = at(min(epoch, x_max), 10 ** log_max)
        draw.line((x, top * scale, x, (height - bottom) * scale), fill=(225, 225, 225), width=scale)
        if epoch < whole and ((epoch + 1) % max(1, math.ceil(whole / 20)) == 0 or epoch == 0):
            label = str(epoch + 1)
            middle, _ = at(min(epoch + 0.5, x_max), 10 ** log_max)
            draw.text((middle - draw.textlength(label, font=font(11 * scale)) / 2, (height - bottom + 3) * scale), label,
                      font=font(11 * scale), fill=INK)
    draw.text(((width / 2 - 16) * scale, (height - 18) * scale), "epoch", font=font(12 * scale), fill=INK)
    for index, (stage, steps, epochs, per_epoch) in enumerate(data):
        line, dot = inks[index % len(inks)]
        size = max(1, math.ceil(len(steps) / 400))
        chunks = [(start, steps[start:start + size]) for start in range(0, len(steps), size)]
        points = [at((start + (len(chunk) - 1) / 2) / per_epoch, sum(chunk) / len(chunk)) for start, chunk in chunks]
        draw.line(points, fill=line, width=scale)
        for epoch, value in enumerate(epochs):
            x, y = at(min(epoch + 0.5, x_max), value)
            draw.ellipse((x - 4 * scale, y - 4 * scale, x + 4 * scale, y + 4 * scale), fill=dot, outline=BACKGROUND)
        key_x = (left + 8 + index * 250) * scale
        draw.line((key_x, 32 * scale, key_x + 22 * scale, 32 * scale), fill=line, width=2 * scale)
        draw.text((key_x + 28 * scale, 25 * scale), plain(names.get(stage, stage)), font=font(12 * scale), fill=INK)
    return image
