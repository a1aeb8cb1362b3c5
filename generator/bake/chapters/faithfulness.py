"""Bake stage: the page "How faithful is DAAM?" of a prompt set, from the shapes model's eval report, as one manifest.

``faithfulness/<set id>.json`` under the generated folder holds the numbers of the report ``diffatlas eval
shapes`` wrote (generator/evaluate/shapes_report.py): prompt fidelity per group and attribute, DAAM's mIoU per
tau with its baselines, the settings, and the best and worst examples. The examples' tiny base64 PNGs go to the
content-addressed store: the generated image and the checker's mask as they are, the heat map coloured with
inferno (generator/daam/overlay.py). No model is loaded. Without a report the manifest names the command that
writes one, so the page can say so. ``compare`` holds one row of headline numbers per report, this one first,
then those the section's ``compare:`` names. A chapter module (generator/bake/chapters/runner.py): rebaked when its cache key
(title, report bytes, baking code) or an asset changes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from generator.bake.cache import cache_key
from generator.bake.chapters.context import ChapterContext, chapter_id
from generator.bake.manifest import provenance
from generator.bake.prompt.trajectory import image_entry
from generator.bake.store import AssetStore
from generator.builtin.shipped import shipped_weights
from generator.errors import UserError
from generator.spec.faithfulness import FaithfulnessSpec

SETTINGS_KEYS = ("n", "sampler", "steps", "guidance", "seed", "trained_steps", "weight_hash", "text_encoder", "coordinates",
                 "p2_gamma", "prediction", "noisy_share", "started_from_step", "grounding")
ENCODERS = {"clip_text_model": "causal CLIP text encoder", "t5": "bidirectional T5 text encoder"}
DAAM_KEYS = ("nouns", "images", "miou", "best_tau", "best_miou", "baselines")
DEFAULT_N = 200  # images of the measurement the page asks for when the report is missing


def shipped_report() -> Path:
    """Where ``diffatlas eval shapes`` writes by default: next to the shipped shapes weights."""
    return shipped_weights("shapes") / "eval.json"


def report_path(spec: FaithfulnessSpec) -> Path:
    """The eval report the page is baked from (it may not exist yet): the section's, or the shipped one."""
    return Path(spec.report) if spec.report is not None else shipped_report()


def command(spec: FaithfulnessSpec, settings: dict[str, Any] | None = None) -> str:
    """The command that writes the report: with a report's own ``settings`` it measures it again."""
    if settings:
        arguments = (f"--n {settings.get('n')} --scheduler {settings.get('sampler')} --steps {settings.get('steps')} "
                     f"--guidance {settings.get('guidance'):g} --seed {settings.get('seed')}")
    else:
        arguments = f"--n {DEFAULT_N}"
    return f"diffatlas eval shapes {arguments}" + (f" --out {spec.shown_report()}" if spec.report is not None else "")


def section_hash(spec: FaithfulnessSpec) -> str:
    """Hash of the title, the labels and every report's bytes ('absent' for a missing one): the spec part of the key."""
    labels = [c.label for c in spec.compare]
    digest = hashlib.sha256(json.dumps({"title": spec.title, "labels": labels}, sort_keys=True).encode())
    for path in (report_path(spec), *(Path(c.report) for c in spec.compare)):
        digest.update(path.read_bytes() if path.is_file() else b"absent")
    return digest.hexdigest()[:16]


def decode_png(text: str, mode: str, where: str) -> Image.Image:
    """A base64 PNG of the report, as an image of ``mode`` (raises UserError when it is not one)."""
    try:
        image = Image.open(io.BytesIO(base64.b64decode(text, validate=True)))
        image.load()
    except (binascii.Error, OSError, ValueError, TypeError) as error:
        raise UserError(f"{where}: not a base64 PNG ({error})") from None
    return image.convert(mode) if image.mode != mode else image


def heat_colours(heat: Image.Image) -> Image.Image:
    """An 8-bit gray heat map (255 = the map's maximum) in the inferno colormap, as the DAAM widget shows maps."""
    from generator.daam.overlay import inferno

    values = np.asarray(heat, dtype=np.float64) / 255
    return Image.fromarray((inferno(values) * 255).round().astype(np.uint8))


def _example(store: AssetStore, entry: dict, where: str) -> dict:
    """One best/worst example: its text and numbers, and its three images stored as assets."""
    missing = [k for k in ("caption", "noun", "iou", "image", "heat", "truth") if not isinstance(entry, dict) or k not in entry]
    if missing:
        raise UserError(f"{where}: example without {', '.join(missing)}")
    image = decode_png(entry["image"], "RGB", f"{where} image")
    heat = decode_png(entry["heat"], "L", f"{where} heat")
    truth = decode_png(entry["truth"], "1", f"{where} truth")
    if not image.size == heat.size == truth.size:
        raise UserError(f"{where}: image, heat map and mask differ in size ({image.size}, {heat.size}, {truth.size})")
    return {
        "caption": str(entry["caption"]),
        "group": entry.get("group"),
        "noun": str(entry["noun"]),
        "colour": entry.get("colour"),
        "iou": float(entry["iou"]),
        "sample": entry.get("sample"),
        "image": image_entry(store, image),
        "heat": image_entry(store, heat_colours(heat)),
        "truth": image_entry(store, truth),
    }


def read_report(path: Path, command: str) -> dict | None:
    """The eval report as a dict, None when the file does not exist; a malformed one is a UserError."""
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: cannot read the eval report ({error}); write it again with `{command}`") from None
    missing = [k for k in ("summary", "by_attribute", "settings")
               if not isinstance(report, dict) or not isinstance(report.get(k), dict)]
    if missing:
        raise UserError(f"{path}: not a `diffatlas eval shapes` report (no {', '.join(missing)}); "
                        f"write it again with `{command}`")
    return report


def describe_model(settings: dict) -> str:
    """What a report measured, in words, from its settings.

    For example "bidirectional T5 text encoder, x/y input channels, 8500 + 3000 steps": a run that started from
    another run's UNet counts that run's steps first.
    """
    parts = [ENCODERS.get(settings.get("text_encoder"), "model")]
    if settings.get("coordinates"):
        parts.append("x/y input channels")
    if settings.get("p2_gamma"):
        parts.append(f"P2 loss weighting (γ {settings['p2_gamma']:g})")
    if settings.get("prediction") == "v_prediction":
        parts.append("v-prediction")
    if settings.get("noisy_share"):
        parts.append(f"{settings['noisy_share']:.0%} of timesteps from the noisiest 30%")
    if settings.get("grounding"):
        parts.append(f"cross-attention trained on the objects' masks (grounding loss {settings['grounding']:g})")
    steps, before = settings.get("trained_steps"), settings.get("started_from_step")
    if steps is not None:
        parts.append(f"{before} + {steps} steps" if before else f"{steps} steps")
    return ", ".join(parts)


def compare_row(report: dict, label: str | None, shown: str) -> dict:
    """One row of the comparison table: a report's headline numbers and what to call it."""
    settings, summary, daam = report["settings"], report["summary"], report.get("daam") or {}
    return {
        "label": label or describe_model(settings),
        "report": shown,
        "images": summary.get("images"),
        "one_object": summary.get("one_object"),
        "two_object": summary.get("two_object"),
        "scene_right": _rate(report, "one_object", "scene_right"),  # None for reports written before claims
        "binding": _rate(report, "two_object", "binding"),
        "best_miou": daam.get("best_miou"),
        "best_tau": daam.get("best_tau"),
        "baselines": daam.get("baselines") or {},
    }


def _rate(report: dict, group: str, name: str) -> float | None:
    """One judged rate of a report (``claims.GROUP.NAME.rate``), None when the report has none."""
    return (((report.get("claims") or {}).get(group) or {}).get(name) or {}).get("rate")


def _compared(spec: FaithfulnessSpec) -> list[dict]:
    """The rows of the reports the section compares with (each must exist)."""
    rows = []
    for entry in spec.compare:
        report = read_report(Path(entry.report), f"diffatlas eval shapes --out {entry.shown_report()}")
        if report is None:
            raise UserError(f"faithfulness.compare: no eval report at {entry.shown_report()}; write it with "
                            f"`diffatlas eval shapes --weights FOLDER --out {entry.shown_report()}`")
        rows.append(compare_row(report, entry.label, entry.shown_report()))
    return rows


def bake_chapter(prompt_set: Any, context: ChapterContext) -> dict:
    """The manifest of ``prompt_set.faithfulness`` (example images stored; no model is loaded)."""
    store, key = context.store, context.key
    spec: FaithfulnessSpec = prompt_set.faithfulness
    path = report_path(spec)
    report = read_report(path, command(spec))
    manifest: dict[str, Any] = {
        "schema": 1,
        "kind": "faithfulness",
        "id": chapter_id(prompt_set),
        "title": spec.title,
        "report": spec.shown_report(),
        "command": command(spec),
        "provenance": provenance(section_hash(spec), key),
        "measured": report is not None,
    }
    if report is None:
        return manifest
    settings = {k: report["settings"].get(k) for k in SETTINGS_KEYS}
    summary = report["summary"]
    manifest["settings"] = settings
    manifest["command"] = command(spec, settings)
    manifest["compare"] = [compare_row(report, None, spec.shown_report()), *_compared(spec)]
    manifest["fidelity"] = {
        "groups": {g: summary.get(g) for g in ("one_object", "two_object")},
        "targets": summary.get("targets", {}),
        "met": summary.get("met"),
        "images": summary.get("images"),
        "by_attribute": report["by_attribute"],
    }
    manifest["claims"] = {"rates": report.get("claims"), "targets": report.get("claim_targets"),
                          "met": report.get("claims_met")} if report.get("claims") else None
    manifest["sweep"] = report.get("sweep")
    daam = report.get("daam")
    manifest["daam"] = {k: daam.get(k) for k in DAAM_KEYS} if daam and daam.get("best_tau") is not None else None
    examples = (daam or {}).get("examples")
    if manifest["daam"] is not None and examples:
        manifest["examples"] = {
            "tau": examples.get("tau"),
            **{side: [_example(store, e, f"{path}: daam.examples.{side}[{i}]") for i, e in enumerate(examples.get(side, []))]
               for side in ("best", "worst")},
        }
    else:
        manifest["examples"] = None
    return manifest


def chapter_cache_key(prompt_set: Any, fingerprint: str) -> str:
    """The section's title and the report's bytes, plus the baking code (the report names its own weights)."""
    return cache_key(section_hash(prompt_set.faithfulness))


def baked_note(manifest: dict) -> str:
    """The command to run when there is no report yet."""
    return "" if manifest["measured"] else f" (no eval report yet: {manifest['command']})"
