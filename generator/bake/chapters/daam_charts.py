"""Bake stage: the charts of the page "What DAAM's maps tell us", taken from issue 19's JSON reports.

Each chart is one table of a report as rows of intervals, ``{"label", "mean", "low", "high", "n"}`` (a 95%
bootstrap interval; None where the report has none), plus reference lines (the summed map, a uniform share, chance)
and the commands that measure it. Nothing is computed here that the report did not measure: the rows are the
report's numbers, renamed for readers. Read by generator/bake/chapters/daam_findings.py; drawn by
generator/render/chapters/daam_findings.py.
"""

from __future__ import annotations

from typing import Any

PART_NAMES = {"down": "down blocks", "mid": "mid block", "up": "up blocks"}
SHARING = (("shape", "share a shape"), ("colour", "share a colour"), ("neither", "share neither"))
EDITS = (("colour", "colour word"), ("shape", "shape word"), ("relation", "relation word"))


def interval(value: Any, label: str, note: str | None = None) -> dict[str, Any]:
    """One row: a report's ``{mean, low, high, n}`` under a reader's label (missing values: None)."""
    value = value if isinstance(value, dict) else {}
    row = {"label": label, **{k: value.get(k) for k in ("mean", "low", "high", "n")}}
    if note:
        row["note"] = note
    return row


def chart(name: str, section: str, title: str, axis: str, rows: list[dict], commands: list[str],
          references: list[tuple[str, float | None]] = ()) -> dict[str, Any]:
    """A chart entry of the manifest (rows without a mean are left out: nothing to draw)."""
    return {"name": name, "section": section, "title": title, "axis": axis, "commands": commands,
            "rows": [r for r in rows if r["mean"] is not None],
            "references": [{"label": label, "value": value} for label, value in references if value is not None]}


def bin_label(index: int, timesteps: list[list[float]]) -> str:
    """A timestep bin as readers see it: its index and the timesteps it holds (bin 0: the noisiest)."""
    ts = timesteps[index] if index < len(timesteps) else []
    return f"bin {index} (t {ts[0]:g}–{ts[-1]:g})" if ts else f"bin {index}"


def faithfulness_charts(report: dict, value_norm: dict | None, commands: dict[str, str]) -> list[dict]:
    """Where and when the maps are faithful: by step bin, by layer, by head, and the better maps (test mIoU)."""
    faith = report["faithfulness"]
    selections = faith.get("selections") or []
    summed = (faith.get("summed") or {}).get("test") or {}
    reference = [("summed map", summed.get("mean"))]
    timesteps = (report.get("settings") or {}).get("bin_timesteps") or []
    most = faith.get("most_faithful") or {}
    command = [commands["report"]]

    def rows_of(kind: str, label=lambda s: s["name"]) -> list[dict]:
        return [interval(s.get("test"), label(s), f"τ {s.get('tau')}") for s in selections if s.get("kind") == kind]

    steps = rows_of("timestep_bin", lambda s: bin_label(int(s["name"].split()[-1]), timesteps))
    if most.get("step_range"):
        steps.append(interval(most["step_range"].get("test"), f"most faithful range: {most['step_range']['name']}",
                              "chosen on calibration"))
    layers = (rows_of("location", lambda s: PART_NAMES.get(s["name"], s["name"]))
              + rows_of("resolution", lambda s: s["name"].replace("x", "×") + " layers")
              + rows_of("layer", lambda s: f"layer {s['name']}"))
    heads = rows_of("head") + rows_of("head_index")
    better = [interval(summed, "summed map (DAAM Eq. 6)")]
    for key in ("step_range", "layer_set", "head_set", "steps_and_layers"):
        if most.get(key):
            better.append(interval(most[key].get("test"), most[key]["name"], "chosen on calibration"))
    better_commands = list(command)
    if value_norm is not None:
        vn = value_norm.get("faithfulness") or {}
        better.append(interval((vn.get("summed") or {}).get("test"), "value-norm weighted, summed"))
        vn_best = (vn.get("most_faithful") or {}).get("steps_and_layers")
        if vn_best:
            better.append(interval(vn_best.get("test"), f"value-norm weighted, {vn_best['name']}", "chosen on calibration"))
        better_commands.append(commands["value_norm"])
    return [
        chart("steps", "faithful", "mIoU by denoising time", "test mIoU", steps, command, reference),
        chart("layers", "faithful", "mIoU by UNet part, resolution and layer", "test mIoU", layers, command, reference),
        chart("heads", "faithful", "mIoU by attention head", "test mIoU", heads, command, reference),
        chart("better", "better", "Plain DAAM against the better maps", "test mIoU", better, better_commands, reference),
    ]


def analyses_charts(report: dict, commands: dict[str, str]) -> list[dict]:
    """The paper's analyses (§4, §5, special tokens) on both caption sets pooled."""
    analyses = report.get("analyses") or {}
    command = [commands["report"]]
    modifiers = (analyses.get("head_dependent") or {}).get("by_modifier") or {}
    overlap = []
    for kind, pairs in (("colour", (("own", "own noun"), ("other", "other noun"), ("unrelated", "unrelated"))),
                        ("size", (("own", "own noun"), ("other", "other noun"), ("unrelated", "unrelated"))),
                        ("count", (("own", "its noun"), ("unrelated", "unrelated"))),
                        ("relation", (("first", "first noun"), ("second", "second noun"), ("unrelated", "unrelated")))):
        overlap += [interval((modifiers.get(kind) or {}).get(key), f"{kind} word vs {what}") for key, what in pairs]
    spread = ((analyses.get("adjective_spread") or {}).get("by_adjective")) or {}
    area, distance = [], []
    for kind in ("colour", "size"):
        measured = spread.get(kind) or {}
        area += [interval((measured.get("area") or {}).get(key), f"{kind}: {what}")
                 for key, what in (("adjective", "adjective's mask"), ("noun", "noun's mask"), ("true_object", "true object"))]
        distance += [interval((measured.get("mask_spread") or {}).get(key), f"{kind}: {what}")
                     for key, what in (("adjective", "adjective's mask"), ("noun", "noun's mask"))]
    entangled = analyses.get("entanglement") or {}
    sharing = entangled.get("by_sharing") or {}
    noun_iou = [interval((sharing.get(k) or {}).get("noun_iou"), f"objects {what}") for k, what in SHARING]
    failure = [interval((sharing.get(k) or {}).get("binding_failure"), f"objects {what}") for k, what in SHARING]
    auc = [interval(_auc(entangled.get(k)), what) for k, what in
           (("auc_iou_predicts_failure", "noun masks' IoU"), ("auc_soft_overlap_predicts_failure", "noun maps' soft overlap"))]
    special = analyses.get("special_tokens") or {}
    uniform = ((special.get("uniform_baseline") or {}).get("end") or {}).get("mean")
    per_bin = [interval(v, bin_label(i, (report.get("settings") or {}).get("bin_timesteps") or []))
               for i, v in enumerate((special.get("per_bin") or {}).get("end") or [])]
    per_layer = [interval(v, f"layer {name}") for name, v in sorted(((special.get("per_layer") or {}).get("end") or {}).items())]
    share = [("uniform over the visible tokens", uniform)]
    return [
        chart("overlap", "overlap", "Head–dependent overlap (paper §4): IoU of a modifier's mask with a noun's",
              "IoU", overlap, command),
        chart("spread-area", "spread", "Adjective spread (§5): area of the masks", "share of the image", area, command),
        chart("spread-distance", "spread", "Adjective spread (§5): RMS distance of the mask from its centroid",
              "image sides", distance, command),
        chart("entangled-iou", "entangled", "Entanglement (§5): IoU of the two nouns' masks", "IoU", noun_iou, command),
        chart("entangled-failure", "entangled", "Entanglement (§5): binding failure rate", "share of captions",
              failure, command),
        chart("entangled-auc", "entangled", "Does map overlap predict binding failure? (AUC)", "AUC", auc, command,
              [("chance", 0.5)]),
        chart("end-bins", "special", "End token's share of cross-attention by denoising time", "share of attention",
              per_bin, command, share),
        chart("end-layers", "special", "End token's share of cross-attention by layer", "share of attention",
              per_layer, command, share),
    ]


def _auc(value: Any) -> dict | None:
    """An AUC entry as an interval (``auc`` is its mean)."""
    return {"mean": value.get("auc"), "low": value.get("low"), "high": value.get("high"), "n": value.get("n")} \
        if isinstance(value, dict) else None


def edits_charts(edits: dict, commands: dict[str, str]) -> list[dict]:
    """Attention against intervention: the edited word's mask and the baseline against where the image changed."""
    by_edit = edits.get("by_edit") or {}
    iou, rho = [], []
    for key, what in EDITS:
        measured = by_edit.get(key) or {}
        iou += [interval(measured.get("iou"), f"{what}'s mask"), interval(measured.get("baseline_iou"), f"{what}: other noun")]
        rho += [interval(measured.get("rho"), f"{what}'s map"), interval(measured.get("baseline_rho"), f"{what}: other noun")]
    command = [commands["edits"]]
    return [chart("edits-iou", "edits", "IoU with the region the edit changed", "IoU", iou, command),
            chart("edits-rho", "edits", "Rank correlation with the change", "Spearman ρ", rho, command)]
