"""Spec stage: the ``daam_findings:`` section of a prompt file (the page "What DAAM's maps tell us"), validated here.

Parsed by ``generator.spec.prompt_set.load_prompt_set`` with ``generator.spec.fields.Fields``; a mistake is one
``FILE:LINE: message`` ``SpecError``. The section names the three JSON reports issue 19's measurements write
(``diffatlas eval daam``, ``eval daam --value-norm`` and ``eval daam-edits``) for each model of ``models:`` (default:
both built-in text-to-image models, ``embedded:shapes`` and ``embedded:shapes-latent``); each path is relative to the
prompt file and defaults to where those commands write (``prompts/reports/daam-<model>.json``, ...); ``report``,
``value_norm`` and ``edits`` name the first model's. The bake
(generator/bake/chapters/daam_findings.py) reads them; a report may be missing: the page then shows the command
that writes it. See README.md, "What DAAM's maps tell us".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from generator.spec.fields import Fields

# report key -> (its default path relative to the prompt file, the command that writes it there); {slug}: the
# model's short name, {weights}: " --weights FOLDER" for a model other than the shipped pixel one
REPORTS = {
    "report": ("reports/daam-{slug}.json", "diffatlas eval daam{weights} --n 48 --bins 5 --threads 1 --out {path}"),
    "value_norm": ("reports/daam-{slug}-value-norm.json",
                   "diffatlas eval daam{weights} --n 48 --bins 5 --value-norm --threads 1 --out {path}"),
    "edits": ("reports/daam-edits-{slug}.json",
              "diffatlas eval daam-edits{weights} --n 24 --tau 0.5 --threads 1 --out {path}"),
}
MODELS = ("embedded:shapes", "embedded:shapes-latent")  # the built-in text-to-image models: the default `models:`
SECTION_KEYS = {"title", "models", *REPORTS}


def model_slug(model: str) -> str:
    """'embedded:shapes-latent' -> 'shapes-latent' (report file names, the page's model column); a folder: its name."""
    return model.split(":", 1)[1] if ":" in model else os.path.basename(os.path.normpath(model))


def shown_path(path: str) -> str:
    """A path as the page and the commands show it (from the repository root, where they run)."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path


@dataclass(frozen=True)
class ModelReports:
    """One model's three reports (absolute paths; they need not exist yet)."""

    model: str  # a registry id (embedded:shapes) or a model folder
    report: str  # diffatlas eval daam
    value_norm: str  # diffatlas eval daam --value-norm
    edits: str  # diffatlas eval daam-edits


@dataclass(frozen=True)
class DaamFindingsSpec:
    """The whole ``daam_findings:`` section, resolved (absolute report paths)."""

    report: str  # the first model's: diffatlas eval daam
    value_norm: str  # diffatlas eval daam --value-norm
    edits: str  # diffatlas eval daam-edits
    title: str = "What DAAM's maps tell us"
    line: int = 0
    models: tuple[ModelReports, ...] = ()  # every model, the first included (empty: the fields above, embedded:shapes)

    def model_reports(self) -> tuple[ModelReports, ...]:
        """Every model's reports, the first model's from ``report``, ``value_norm`` and ``edits``."""
        first = ModelReports(self.models[0].model if self.models else MODELS[0], self.report, self.value_norm, self.edits)
        return (first, *self.models[1:])


def parse_daam_findings(f: Fields, data: Any) -> DaamFindingsSpec:
    """The validated ``daam_findings:`` section; empty means the shipped reports under the prompt file's reports/."""
    root = ("daam_findings",)
    data, values = f.chapter(root, data, SECTION_KEYS)
    models = MODELS
    if data.get("models") is not None:
        listed = data["models"] if isinstance(data["models"], list) else [data["models"]]
        if not listed or not all(isinstance(m, str) and m.strip() for m in listed) or len(set(listed)) < len(listed):
            raise f.error(root + ("models",), "models must be a list of model ids (embedded:shapes, "
                                              "embedded:shapes-latent) or folders, each once")
        models = tuple(m.strip() for m in listed)
    reports = []
    for index, model in enumerate(models):
        paths = {key: str((f.base_dir / default.format(slug=model_slug(model))).resolve()) for key, (default, _) in REPORTS.items()}
        if index == 0:
            for key in REPORTS:
                if data.get(key) is not None:
                    paths[key] = f.report(root + (key,), data[key])
            values.update(paths)
        reports.append(ModelReports(model, **paths))
    return DaamFindingsSpec(**values, models=tuple(reports))
