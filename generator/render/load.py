"""Render stage: read `index.json` and the per-prompt manifests into checked, typed views.

Everything the templates need is checked here, once: the index shape, each manifest against the
bake stage's JSON Schema, the trajectory's frame counts, that every referenced asset exists, and
that each sprite sheet's pixel size holds its grid. Any failure is a `RenderError` naming the file.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from generator.manifest.schema import schema_errors
from generator.render.errors import RenderError


@dataclass(frozen=True)
class Sprite:
    """A sprite sheet: frame i at column i % columns, row i // columns of a sheet_columns x sheet_rows grid."""

    src: str  # relative to the generated dir, e.g. "assets/0123456789abcdef.webp"
    frame_width: int
    frame_height: int
    columns: int
    count: int
    sheet_columns: int  # measured from the file: sheet width / frame width
    sheet_rows: int


@dataclass(frozen=True)
class ImageAsset:
    """A still: its path relative to the generated dir, its size and the judge's verdict on it (None: not judged)."""

    src: str
    width: int
    height: int
    verdict: dict[str, Any] | None = None


@dataclass(frozen=True)
class PromptView:
    """One prompt, as the templates see it."""

    id: str
    text: str
    title: str
    thumbnail: ImageAsset
    final: ImageAsset
    steps: int
    timesteps: tuple[float, ...]
    noisy: Sprite
    predicted: Sprite
    downloads: dict[str, str]
    model: dict[str, Any]
    settings: dict[str, Any]
    provenance: dict[str, Any]
    manifest: dict[str, Any]  # the whole manifest, for sections later widgets render


@dataclass(frozen=True)
class SiteIndex:
    """The site as the templates see it: its title, its model and every prompt, in the index's order."""

    title: str
    model: str
    prompts: tuple[PromptView, ...]


SHOWN_ERRORS = 5  # an error message lists at most this many violations


def check_schema(path: Path, instance: Any, schema: dict[str, Any] | None = None, what: str = "manifest") -> None:
    """Raise a one-line RenderError naming ``path`` and the failing fields when ``instance`` does not validate."""
    errors = schema_errors(instance, schema)
    if errors:
        shown = "; ".join(errors[:SHOWN_ERRORS])
        more = f" (and {len(errors) - SHOWN_ERRORS} more)" if len(errors) > SHOWN_ERRORS else ""
        raise RenderError(f"{path}: {what} does not match the schema: {shown}{more}")


def read_json(path: Path, what: str) -> Any:
    """The JSON at ``path``; a missing or unreadable file is a RenderError naming it as ``what``."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RenderError(f"{path}: {what} not found (run the bake stage first)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RenderError(f"{path}: cannot read {what}: {exc}") from None


def asset_path(generated_dir: Path, src: str, where: str) -> Path:
    """The file of a generated asset (``src`` relative to the generated dir), which must exist (RenderError)."""
    path = generated_dir / src
    if not path.is_file():
        raise RenderError(f"{where}: asset {src} is missing from {generated_dir}")
    return path


def read_sprite(generated_dir: Path, data: dict[str, Any], where: str) -> Sprite:
    """A manifest's sprite entry, its sheet measured from the file and checked to hold the grid (RenderError)."""
    path = asset_path(generated_dir, data["src"], where)
    try:
        with Image.open(path) as im:
            width, height = im.size
    except OSError as exc:
        raise RenderError(f"{where}: cannot read sprite sheet {data['src']}: {exc}") from None
    fw, fh, cols, count = (int(data[k]) for k in ("frame_width", "frame_height", "columns", "count"))
    rows_needed = math.ceil(count / cols)
    if width % fw or height % fh or width // fw < cols or height // fh < rows_needed:
        raise RenderError(
            f"{where}: sprite sheet {data['src']} is {width}x{height}, which does not hold "
            f"{count} frames of {fw}x{fh} in {cols} columns"
        )
    return Sprite(data["src"], fw, fh, cols, count, width // fw, height // fh)


def load_manifest(generated_dir: Path, rel: str) -> dict[str, Any]:
    """Read and validate one manifest (path relative to the generated dir)."""
    path = generated_dir / rel
    manifest = read_json(path, "manifest")
    check_schema(path, manifest)
    traj = manifest["trajectory"]
    steps = traj["steps"]
    if len(traj["timesteps"]) != steps:
        raise RenderError(
            f"{path}: trajectory.timesteps has {len(traj['timesteps'])} entries, expected steps = {steps}"
        )
    for key in ("noisy", "predicted"):
        if traj[key]["count"] != steps + 1:
            raise RenderError(
                f"{path}: trajectory.{key}.count is {traj[key]['count']}, expected steps + 1 = {steps + 1}"
            )
    return manifest


def _prompt(generated_dir: Path, entry: dict[str, Any], where: str) -> PromptView:
    """One index entry's manifest, checked against the entry and its assets, as a PromptView."""
    manifest = load_manifest(generated_dir, entry["manifest"])
    mpath = generated_dir / entry["manifest"]
    if manifest["id"] != entry["id"]:
        raise RenderError(f"{mpath}: manifest id {manifest['id']!r} does not match index id {entry['id']!r}")
    traj = manifest["trajectory"]
    downloads = {k: v for k, v in sorted(traj["downloads"].items()) if isinstance(v, str)}
    for src in (manifest["final"]["src"], *downloads.values()):
        asset_path(generated_dir, src, str(mpath))
    thumb_path = asset_path(generated_dir, entry["thumbnail"], where)
    try:
        with Image.open(thumb_path) as im:
            thumbnail = ImageAsset(entry["thumbnail"], *im.size)
    except OSError as exc:
        raise RenderError(f"{where}: cannot read thumbnail {entry['thumbnail']}: {exc}") from None
    final = manifest["final"]
    return PromptView(
        id=manifest["id"],
        text=manifest["text"],
        title=manifest.get("title") or manifest["text"],
        thumbnail=thumbnail,
        final=ImageAsset(final["src"], final["width"], final["height"], final.get("verdict")),
        steps=traj["steps"],
        timesteps=tuple(traj["timesteps"]),
        noisy=read_sprite(generated_dir, traj["noisy"], f"{mpath} trajectory.noisy"),
        predicted=read_sprite(generated_dir, traj["predicted"], f"{mpath} trajectory.predicted"),
        downloads=downloads,
        model=manifest["model"],
        settings=manifest["settings"],
        provenance=manifest["provenance"],
        manifest=manifest,
    )


def load_index(generated_dir: Path) -> SiteIndex:
    """Read `index.json` and every manifest it lists, checking all of it (raises `RenderError`)."""
    generated_dir = Path(generated_dir)
    path = generated_dir / "index.json"
    index = read_json(path, "index")
    if not isinstance(index, dict) or index.get("schema") != 1:
        raise RenderError(f"{path}: not a schema-1 index (expected an object with \"schema\": 1)")
    for key in ("title", "model"):
        if not isinstance(index.get(key), str):
            raise RenderError(f"{path}: {key!r} must be a string")
    entries = index.get("prompts")
    if not isinstance(entries, list):
        raise RenderError(f"{path}: 'prompts' must be a list")
    prompts: list[PromptView] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"{path} prompts[{i}]"
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) for k in ("id", "text", "manifest", "thumbnail")
        ):
            raise RenderError(f"{where}: needs string fields id, text, manifest, thumbnail")
        if not re.fullmatch(r"assets/[0-9a-f]{16}\.(webp|png|gif)", entry["thumbnail"]):
            raise RenderError(f"{where}: thumbnail {entry['thumbnail']!r} is not an assets/<16 hex>.<ext> path")
        if entry["id"] in seen:
            raise RenderError(f"{where}: duplicate id {entry['id']!r}")
        if not entry["manifest"].startswith("prompts/") or ".." in entry["manifest"]:
            raise RenderError(f"{where}: manifest path {entry['manifest']!r} must be under prompts/")
        seen.add(entry["id"])
        prompts.append(_prompt(generated_dir, entry, where))
    return SiteIndex(title=index["title"], model=index["model"], prompts=tuple(prompts))
