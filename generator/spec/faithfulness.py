"""Spec stage: the ``faithfulness:`` section of a prompt file (the page "How faithful is DAAM?"), validated here.

Parsed by ``generator.spec.prompt_set.load_prompt_set``; a mistake is one ``FILE:LINE: message`` ``SpecError``. The
section names the JSON report ``diffatlas eval shapes`` writes (prompt fidelity of the built-in shapes model and
DAAM's mIoU against the checker's true masks); the bake (generator/bake/chapters/faithfulness.py) turns it into the page.
The report may be missing: the page then says which command writes it. ``compare:`` lists reports of other
models (each with an optional label) for a side-by-side table. See README.md, "Prompt file: faithfulness".
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.builtin.shipped import shipped_weights

SECTION_KEYS = {"title", "report", "compare"}
COMPARE_KEYS = {"label", "report"}
DEFAULT_N = 200  # images of the measurement the page asks for when the report is missing
SHIPPED_REPORT = "generator/weights/shapes/eval.json"  # as the page shows it


def shipped_report() -> Path:
    """Where ``diffatlas eval shapes`` writes by default: next to the shipped shapes weights."""
    return shipped_weights("shapes") / "eval.json"


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

    def report_path(self) -> Path:
        """The eval report the page is baked from (it may not exist yet)."""
        return Path(self.report) if self.report is not None else shipped_report()

    def shown_report(self) -> str:
        """The report's path as the page and the commands show it (from the repository root, where they run)."""
        return SHIPPED_REPORT if self.report is None else _shown(self.report)

    def command(self, settings: dict[str, Any] | None = None) -> str:
        """The command that writes the report: with a report's own ``settings`` it measures it again."""
        if settings:
            arguments = (f"--n {settings.get('n')} --scheduler {settings.get('sampler')} --steps {settings.get('steps')} "
                         f"--guidance {settings.get('guidance'):g} --seed {settings.get('seed')}")
        else:
            arguments = f"--n {DEFAULT_N}"
        return f"diffatlas eval shapes {arguments}" + (f" --out {self.shown_report()}" if self.report is not None else "")

    def spec_hash(self) -> str:
        """Hash of the title, the labels and every report's bytes (the bake cache key; 'absent' for a missing one)."""
        labels = [c.label for c in self.compare]
        digest = hashlib.sha256(json.dumps({"title": self.title, "labels": labels}, sort_keys=True).encode())
        for path in (self.report_path(), *(Path(c.report) for c in self.compare)):
            digest.update(path.read_bytes() if path.is_file() else b"absent")
        return digest.hexdigest()[:16]


def parse_faithfulness(located: Any, data: Any, base_dir: Path) -> FaithfulnessSpec:
    """The validated ``faithfulness:`` section (``located`` is ``generator.spec.prompt_set._Located``); empty means defaults."""
    from generator.spec.experiments import _Parser

    p = _Parser(located, base_dir)
    root = ("faithfulness",)
    data, values = p.chapter(root, data, SECTION_KEYS)
    if data.get("report") is not None:
        values["report"] = _report(p, root + ("report",), data["report"])
    if "compare" in data:
        compared = []
        for i, entry in enumerate(p.entries(root + ("compare",), data["compare"], "compare")):
            key = root + ("compare", i)
            entry = p.keys(key, entry, COMPARE_KEYS, "a compare entry")
            if "report" not in entry:
                raise p.error(key, "a compare entry needs a report (the JSON `diffatlas eval shapes --out` wrote)")
            label = p.text(key + ("label",), entry["label"], "label") if "label" in entry else None
            compared.append(ComparedReport(_report(p, key + ("report",), entry["report"]), label))
        values["compare"] = tuple(compared)
    return FaithfulnessSpec(**values)


def _report(p: Any, key: tuple, report: Any) -> str:
    """The absolute path of a report named in the section (it need not exist yet)."""
    if not isinstance(report, str) or not report.strip() or not report.strip().endswith(".json"):
        raise p.error(key, "report must be the path of a .json file (relative to the prompt file), "
                           "as `diffatlas eval shapes --out` writes it")
    path = (p.base_dir / report.strip()).resolve()
    if path.is_dir():
        raise p.error(key, f"report {report!r} is a folder; name the JSON file")
    return str(path)
