"""Bake stage: the page "What DAAM's maps tell us" (issue 19) of a prompt set, from three JSON reports per model, as one manifest.

``daam_findings/<set id>.json`` under the generated folder holds what the page needs of the reports that
``diffatlas eval daam`` (faithfulness per step, layer and head; the paper's analyses), ``eval daam --value-norm``
(the value-norm weighted maps) and ``eval daam-edits`` (attention against intervention) wrote: their settings and
commands, the numbers the page's text quotes, and one chart per table (generator/bake/chapters/daam_charts.py).
Each model of the section's ``models:`` (default: both built-in text-to-image models) has its own three reports
and its block in ``models``; the charts put the models side by side (generator/bake/chapters/daam_models.py).
No model is loaded and nothing is stored but the manifest. A report that does not exist yet is ``measured: false``
with the command that writes it, so the page can say so. A chapter module (generator/bake/chapters/runner.py):
rebaked when its cache key (the section, the reports' bytes, the baking code) changes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from generator.bake.cache import cache_key
from generator.bake.chapters.context import ChapterContext, chapter_id
from generator.bake.chapters.daam_charts import analyses_charts, edits_charts, faithfulness_charts
from generator.bake.chapters.daam_models import side_by_side
from generator.bake.manifest import provenance
from generator.errors import UserError
from generator.spec.daam_findings import MODELS, REPORTS, DaamFindingsSpec, ModelReports, model_slug, shown_path

SETTINGS_KEYS = ("model", "slug", "space", "weights", "sampler", "steps", "guidance", "bins", "n_per_set", "calibration_seed", "test_seed",
                 "weight_hash", "bin_timesteps", "command", "grounding")
NEEDS = {"report": ("faithfulness", "analyses", "settings"), "value_norm": ("faithfulness", "settings"),
         "edits": ("by_edit",)}


def weights_option(model: str) -> str:
    """`` --weights FOLDER`` in a model's commands (none for the shipped pixel model, ``eval daam``'s default)."""
    if model == MODELS[0]:
        return ""
    from generator.builtin.shipped import WEIGHTS_DIR
    from generator.models.registry import MODELS as REGISTRY

    entry = REGISTRY.get(model)
    if entry is None:  # a model folder
        return f" --weights {shown_path(model)}"
    if entry.weights is None:
        raise UserError(f"daam_findings: models: {model} has no shipped weights for `diffatlas eval daam --weights`")
    return f" --weights {shown_path(str(WEIGHTS_DIR.parent / entry.weights))}"


def report_command(spec: ModelReports, key: str, report: dict | None = None) -> str:
    """The command that measures a report: its own (``settings.command`` or ``command``), else the default one."""
    if report is not None:
        own = (report.get("settings") or {}).get("command") or report.get("command")
        if isinstance(own, str) and own:
            return own
    return REPORTS[key][1].format(path=shown_path(getattr(spec, key)), weights=weights_option(spec.model))


def read_report(spec: ModelReports, key: str) -> dict | None:
    """One report as a dict, None when its file does not exist; a malformed one is a UserError naming the fix."""
    path = Path(getattr(spec, key))
    if not path.is_file():
        return None
    command = report_command(spec, key)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{shown_path(str(path))}: cannot read the report ({error}); write it again with `{command}`") from None
    missing = [k for k in NEEDS[key] if not isinstance(report, dict) or not isinstance(report.get(k), dict)]
    if missing:
        raise UserError(f"{shown_path(str(path))}: not the report `{command.split(' --')[0]}` writes "
                        f"(no {', '.join(missing)}); write it again with `{command}`")
    return report


def section_hash(spec: DaamFindingsSpec) -> str:
    """Hash of the title and each model's reports' bytes ('absent' for a missing one): the spec part of the key."""
    digest = hashlib.sha256(spec.title.encode())
    for reports in spec.model_reports():
        digest.update(reports.model.encode())
        for key in REPORTS:
            path = Path(getattr(reports, key))
            digest.update(key.encode() + (path.read_bytes() if path.is_file() else b"absent"))
    return digest.hexdigest()[:16]


def _source(spec: ModelReports, key: str, report: dict | None) -> dict[str, Any]:
    """Where a report lives, the command that measures it and whether it exists."""
    return {"path": shown_path(getattr(spec, key)), "command": report_command(spec, key, report),
            "measured": report is not None}


def _faithfulness(report: dict | None) -> dict | None:
    """What the page quotes of a faithfulness report: the summed map and the most faithful selections."""
    if report is None:
        return None
    faith = report["faithfulness"]
    return {"summed": faith.get("summed"), "most_faithful": faith.get("most_faithful") or {},
            "nouns": faith.get("nouns"), "taus": faith.get("taus")}


def model_block(spec: ModelReports) -> tuple[dict, list[dict]]:
    """One model's part of the page (what its reports measured, or the commands that measure them) and its charts."""
    reports = {key: read_report(spec, key) for key in REPORTS}
    main, value_norm, edits = reports["report"], reports["value_norm"], reports["edits"]
    commands = {key: report_command(spec, key, reports[key]) for key in REPORTS}
    charts: list[dict] = []
    if main is not None:
        charts += faithfulness_charts(main, value_norm, commands) + analyses_charts(main, commands)
    if edits is not None:
        charts += edits_charts(edits, commands)
    settings = main.get("settings") or {} if main is not None else {}
    block = {
        "model": spec.model,
        "label": model_slug(spec.model),
        "measured": main is not None,
        "reports": {key: _source(spec, key, reports[key]) for key in REPORTS},
        "settings": {k: settings.get(k) for k in SETTINGS_KEYS} if main is not None else None,
        "sets": main.get("sets") if main is not None else None,
        "faithfulness": _faithfulness(main),
        "value_norm": _faithfulness(value_norm),
        "analyses": main.get("analyses") if main is not None else None,
        "edits": edits,
    }
    return block, charts


def bake_chapter(prompt_set: Any, context: ChapterContext) -> dict:
    """The manifest of ``prompt_set.daam_findings`` (reports read; no model, no assets).

    The top level holds the first model's reports (what the page's text quotes); ``models`` holds every model's,
    and each chart has the rows of every model that measured it, side by side (``side_by_side``).
    """
    spec: DaamFindingsSpec = prompt_set.daam_findings
    blocks, charts = zip(*(model_block(reports) for reports in spec.model_reports()))
    first = blocks[0]
    return {
        "schema": 1,
        "kind": "daam_findings",
        "id": chapter_id(prompt_set),
        "title": spec.title,
        "provenance": provenance(section_hash(spec), context.key),
        **{k: v for k, v in first.items() if k not in ("model", "label")},
        "models": list(blocks),
        "charts": side_by_side(list(blocks), list(charts)),
    }


def chapter_cache_key(prompt_set: Any, fingerprint: str) -> str:
    """The section and the reports' bytes, plus the baking code (the reports name their own weights)."""
    return cache_key(section_hash(prompt_set.daam_findings))


def baked_note(manifest: dict) -> str:
    """The commands to run for the reports that do not exist yet."""
    blocks = manifest.get("models") or [manifest]
    missing = [source["command"] for block in blocks for source in block["reports"].values() if not source["measured"]]
    return f" (no report yet: {'; '.join(missing)})" if missing else ""
