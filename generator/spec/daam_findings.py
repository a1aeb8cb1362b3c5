"""Spec stage: the ``daam_findings:`` section of a prompt file (the page "What DAAM's maps tell us"), validated here.

Parsed by ``generator.spec.prompt_set.load_prompt_set`` with ``generator.spec.fields.Fields``; a mistake is one
``FILE:LINE: message`` ``SpecError``. The section names the three JSON reports issue 19's measurements write
(``diffatlas eval daam``, ``eval daam --value-norm`` and ``eval daam-edits``); each path is relative to the prompt
file and defaults to where those commands write (``prompts/reports/``). The bake
(generator/bake/chapters/daam_findings.py) reads them; a report may be missing: the page then shows the command
that writes it. See README.md, "What DAAM's maps tell us".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from generator.spec.fields import Fields

# report key -> (its default path relative to the prompt file, the command that writes it there)
REPORTS = {
    "report": ("reports/daam-shapes.json", "diffatlas eval daam --n 48 --bins 5 --threads 1 --out {path}"),
    "value_norm": ("reports/daam-shapes-value-norm.json",
                   "diffatlas eval daam --n 48 --bins 5 --value-norm --threads 1 --out {path}"),
    "edits": ("reports/daam-edits-shapes.json", "diffatlas eval daam-edits --n 24 --tau 0.5 --threads 1 --out {path}"),
}
SECTION_KEYS = {"title", *REPORTS}


def shown_path(path: str) -> str:
    """A path as the page and the commands show it (from the repository root, where they run)."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path


@dataclass(frozen=True)
class DaamFindingsSpec:
    """The whole ``daam_findings:`` section, resolved (absolute report paths)."""

    report: str  # diffatlas eval daam
    value_norm: str  # diffatlas eval daam --value-norm
    edits: str  # diffatlas eval daam-edits
    title: str = "What DAAM's maps tell us"
    line: int = 0


def parse_daam_findings(f: Fields, data: Any) -> DaamFindingsSpec:
    """The validated ``daam_findings:`` section; empty means the shipped reports under the prompt file's reports/."""
    root = ("daam_findings",)
    data, values = f.chapter(root, data, SECTION_KEYS)
    for key, (default, _) in REPORTS.items():
        if data.get(key) is not None:
            values[key] = f.report(root + (key,), data[key])
        else:
            values[key] = str((f.base_dir / default).resolve())
    return DaamFindingsSpec(**values)
