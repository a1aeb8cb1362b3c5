"""Spec stage: the ``faithfulness:`` section of a prompt file (the page "How faithful is DAAM?"), validated here.

Parsed by ``generator.spec.prompt_set.load_prompt_set`` with ``generator.spec.fields.Fields``; a mistake is one
``FILE:LINE: message`` ``SpecError``. The section names the JSON report ``diffatlas eval shapes`` writes (prompt
fidelity of the built-in shapes model and DAAM's mIoU against the checker's true masks); the bake
(generator/bake/chapters/faithfulness.py) turns it into the page, and finds the shipped report when the section
names none. The report may be missing: the page then says which command writes it. ``compare:`` lists reports
of other models (each with an optional label) for a side-by-side table. See README.md, "Prompt file: faithfulness".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from generator.spec.fields import Fields

SECTION_KEYS = {"title", "report", "compare"}
COMPARE_KEYS = {"label", "report"}
SHIPPED_REPORT = "generator/weights/shapes/eval.json"  # as the page shows it


def _shown(path: str) -> str:
    """A path as the page and the commands show it (from the repository root, where they run)."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path


@dataclass(frozen=True)
class ComparedReport:
    """One ``compare:`` entry: another model's eval report and what to call it (None: from the report)."""

    report: str  # absolute path
    label: str | None = None

    def shown_report(self) -> str:
        """The report's path as the page shows it."""
        return _shown(self.report)


@dataclass(frozen=True)
class FaithfulnessSpec:
    """The whole ``faithfulness:`` section, resolved (absolute report path or None for the shipped one)."""

    title: str = "How faithful is DAAM?"
    report: str | None = None  # None: generator/weights/shapes/eval.json
    compare: tuple[ComparedReport, ...] = ()
    line: int = 0

    def shown_report(self) -> str:
        """The report's path as the page and the commands show it (from the repository root, where they run)."""
        return SHIPPED_REPORT if self.report is None else _shown(self.report)


def parse_faithfulness(f: Fields, data: Any) -> FaithfulnessSpec:
    """The validated ``faithfulness:`` section; empty means defaults."""
    root = ("faithfulness",)
    data, values = f.chapter(root, data, SECTION_KEYS)
    if data.get("report") is not None:
        values["report"] = f.report(root + ("report",), data["report"])
    if "compare" in data:
        compared = []
        for i, entry in enumerate(f.entries(root + ("compare",), data["compare"], "compare")):
            key = root + ("compare", i)
            entry = f.keys(key, entry, COMPARE_KEYS, "a compare entry")
            if "report" not in entry:
                raise f.error(key, "a compare entry needs a report (the JSON `diffatlas eval shapes --out` wrote)")
            label = f.text(key + ("label",), entry["label"], "label") if "label" in entry else None
            compared.append(ComparedReport(f.report(key + ("report",), entry["report"]), label))
        values["compare"] = tuple(compared)
    return FaithfulnessSpec(**values)
