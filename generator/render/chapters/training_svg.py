"""Render stage: the training chapter's UNet diagram as inline SVG (a drawing, not a chart: the loss curves are
charts, generator/render/chapters/loss_chart.py).

``diagram_svg`` draws the UNet figure from the geometry the bake stage laid out (generator/bake/chapters/diagrams.py:
boxes, paths, the ``+`` / ``×`` nodes where time and class enter), the same figure as its PNG download.

Colours are SVG presentation attributes (no style element, nothing inline the Content-Security-Policy would
refuse); every text comes from the manifest's numbers and the model's own block names, escaped.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from markupsafe import Markup, escape

# diagram colours (the same as the PNG's, generator/bake/chapters/diagrams.py)
ROLE_FILL = {"io": "#ececec", "encoder": "#dbe4ff", "bottleneck": "#ffeccc", "decoder": "#d6f0de",
             "condition": "#fae0ec"}
PATH_INK = {"main": "#3c3c3c", "skip": "#4051b5", "condition": "#c83c78"}


def _arrowhead(points: Sequence[Sequence[float]], size: float = 8.0) -> str:
    """The SVG points of an arrowhead at the end of a path."""
    (x0, y0), (x1, y1) = points[-2], points[-1]
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    corners = [(x1, y1), (x1 - size * ux + size * 0.5 * uy, y1 - size * uy - size * 0.5 * ux),
               (x1 - size * ux - size * 0.5 * uy, y1 - size * uy + size * 0.5 * ux)]
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in corners)


def diagram_svg(unet: dict[str, Any], label: str) -> Markup:
    """Inline SVG of the UNet figure from its baked geometry (``unet["geometry"]``)."""
    g = unet["geometry"]
    parts = [f'<svg class="atlas-unet" viewBox="0 0 {g["width"]} {g["height"]}" role="img" '
             f'aria-label="{escape(label)}" data-hidden="{int(unet["hidden"])}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(label)}</title>"]
    for path in g["paths"]:
        ink = PATH_INK.get(path["role"], "#333")
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in path["points"])
        width = 2 if path["role"] == "main" else 1.2
        parts.append(f'<polyline data-role="{escape(path["role"])}" points="{points}" fill="none" stroke="{ink}" '
                     f'stroke-width="{width}"/><polygon points="{_arrowhead(path["points"])}" fill="{ink}"/>')
        if path["role"] == "skip":
            (x0, y0), (x1, _) = path["points"][0], path["points"][-1]
            parts.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{y0 - 5:.1f}" text-anchor="middle" font-size="10" '
                         f'fill="{ink}">concat</text>')
    for box in g["boxes"]:
        parts.append(f'<g data-block="{escape(box["name"])}" data-role="{escape(box["role"])}">'
                     f'<rect x="{box["x"]:.1f}" y="{box["y"]:.1f}" width="{box["w"]}" height="{box["h"]}" rx="6" '
                     f'fill="{ROLE_FILL.get(box["role"], "#fff")}" stroke="#333"/>')
        for k, line in enumerate(box["lines"]):
            size, weight = (13, "600") if k == 0 else (11, "400")
            parts.append(f'<text x="{box["x"] + box["w"] / 2:.1f}" y="{box["y"] + 17 + 16 * k:.1f}" '
                         f'text-anchor="middle" font-size="{size}" font-weight="{weight}" fill="#1e1e1e">'
                         f"{escape(line)}</text>")
        parts.append("</g>")
    for node in g["nodes"]:
        parts.append(f'<g data-node="{escape(node["name"])}"><circle cx="{node["x"]:.1f}" cy="{node["y"]:.1f}" r="9" '
                     f'fill="white" stroke="{PATH_INK["condition"]}" stroke-width="2"/>'
                     f'<text x="{node["x"]:.1f}" y="{node["y"] + 5:.1f}" text-anchor="middle" font-size="14" '
                     f'fill="{PATH_INK["condition"]}">{escape(node["symbol"])}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))
