"""Read back the charts a page carries (generator/render/plot.py): each ``.atlas-plot`` element's JSON, its
attributes, its summary and its table, so a test can check every series against the numbers it came from."""

from __future__ import annotations

import html
import json
import re

_PLOT = re.compile(r"<div class=\"atlas-plot atlas-plot-([a-z-]+)\" data-plot='([^']*)'([^>]*)>"
                   r'<div class="atlas-plot-box" role="img" aria-label="([^"]*)"[^>]*></div>(.*?</table></details>)'
                   r"</div>", re.S)


def plots(page: str, name: str | None = None) -> list[dict]:
    """Every chart of ``page`` (of one ``name`` when given): {name, spec, attrs, label, table: [[cells]]}."""
    found = []
    for kind, data, extra, label, table in _PLOT.findall(page):
        if name is not None and kind != name:
            continue
        rows = [[html.unescape(re.sub(r"<[^>]+>", "", cell)) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)]
                for row in re.findall(r"<tr>(.*?)</tr>", table)]
        attrs = {k: html.unescape(v) for k, v in re.findall(r'data-([a-z-]+)="([^"]*)"', extra)}
        found.append({"name": kind, "spec": json.loads(data), "attrs": attrs, "label": html.unescape(label),
                      "table": rows})
    return found


def series(plot: dict, label: str) -> dict:
    """The series of a chart with this label (exactly one)."""
    matches = [s for s in plot["spec"]["series"] if s["label"] == label]
    assert len(matches) == 1, f"{len(matches)} series named {label!r} in {[s['label'] for s in plot['spec']['series']]}"
    return matches[0]
