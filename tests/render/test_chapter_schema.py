"""Chapter manifests (experiments, training, faithfulness) against their JSON Schema at render time.

Valid manifests of each kind render; a wrong type or a missing field stops the render with one line that names
the file and the field, before anything is written, as a bad prompt manifest does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from fakechapters import MANIFESTS, write_chapter
from jsonschema import Draft202012Validator

from generator.manifest.schema import chapter_schema, chapters_schema, schema_errors
from generator.render import RenderError, render_site

REPO = Path(__file__).resolve().parents[2]
PAGES = {"experiments": "course", "training": "training", "faithfulness": "faithfulness"}
EMBEDS = {"experiments": "course-course-sdedit-scene.html", "training": "training-digits-epochs-time.html",
          "faithfulness": "faithfulness-faith-miou.html"}


def test_the_schema_file_is_a_valid_schema_with_one_definition_per_kind() -> None:
    Draft202012Validator.check_schema(chapters_schema())
    for kind in PAGES:
        assert chapter_schema(kind)["$ref"] == f"#/$defs/{kind}"
    with pytest.raises(KeyError, match="no chapter kind 'lectures'"):
        chapter_schema("lectures")


@pytest.mark.parametrize("kind", list(PAGES))
def test_a_valid_manifest_of_each_kind_passes_and_renders(site: Path, kind: str) -> None:
    generated = site / "generated"
    manifest = MANIFESTS[kind](generated)
    assert schema_errors(manifest, chapter_schema(kind)) == []
    assert schema_errors(manifest, chapters_schema()) == []  # the file's root picks the definition by kind
    write_chapter(generated, kind, manifest)
    result = render_site(generated, site)
    assert generated / f"{PAGES[kind]}.md" in result.changed
    assert site / "embed" / EMBEDS[kind] in result.embeds


def _pop(*keys: str) -> Callable[[dict], None]:
    def mutate(manifest: dict) -> None:
        *parents, last = keys
        for key in parents:
            manifest = manifest[key] if isinstance(manifest, dict) else manifest[int(key)]
        manifest.pop(last)

    return mutate


def _set(value: object, *keys: str) -> Callable[[dict], None]:
    def mutate(manifest: dict) -> None:
        *parents, last = keys
        for key in parents:
            manifest = manifest[key] if isinstance(manifest, dict) else manifest[int(key)]
        manifest[last if isinstance(manifest, dict) else int(last)] = value

    return mutate


BROKEN = [
    ("experiments", _set("ten", "sdedit", "0", "steps"), "sdedit/0/steps: 'ten' is not of type 'integer'"),
    ("experiments", _pop("model"), "(root): 'model' is a required property"),
    ("experiments", _pop("hybrids", "0", "trajectory", "noisy"), "hybrids/0/trajectory: 'noisy' is a required property"),
    ("training", _set(2.5, "time", "epochs", "0", "sprite", "count"), "time/epochs/0/sprite/count: 2.5 is not of type 'integer'"),
    ("training", _pop("jumps"), "(root): 'jumps' is a required property"),
    ("training", _set("time", "missing", "gans"), "missing: 'gans' is not one of ['class', 'time', 'denoiser', 'flow-class', 'flow-time']"),
    ("faithfulness", _set("yes", "measured"), "measured: 'yes' is not of type 'boolean'"),
    ("faithfulness", _pop("fidelity"), "(root): 'fidelity' is a required property"),  # measured: the numbers are required
    ("faithfulness", _pop("examples", "best", "0", "iou"), "examples/best/0: 'iou' is a required property"),
]


@pytest.mark.parametrize(("kind", "mutate", "failure"), BROKEN, ids=[f"{k}-{m.split(':')[0]}" for k, _, m in BROKEN])
def test_a_wrong_type_or_missing_field_is_one_clear_error(site: Path, kind: str, mutate: Callable, failure: str) -> None:
    generated = site / "generated"
    manifest = json.loads(json.dumps(MANIFESTS[kind](generated)))  # no shared entries: change only the one
    mutate(manifest)
    path = write_chapter(generated, kind, manifest)
    with pytest.raises(RenderError) as error:
        render_site(generated, site)
    assert str(error.value) == f"{path}: {kind} manifest does not match the schema: {failure}"
    assert not (generated / "gallery.md").exists() and not (site / "embed").exists()  # checked before any write


def test_an_unmeasured_faithfulness_manifest_needs_no_numbers(site: Path) -> None:
    manifest = MANIFESTS["faithfulness"](site / "generated")
    for key in ("settings", "fidelity", "daam", "examples"):
        del manifest[key]
    assert schema_errors({**manifest, "measured": False}, chapter_schema("faithfulness")) == []
    assert schema_errors(manifest, chapter_schema("faithfulness")) == [
        f"(root): '{key}' is a required property" for key in ("settings", "fidelity", "daam", "examples")]


def test_a_manifest_in_another_kinds_folder_is_refused(site: Path) -> None:
    generated = site / "generated"
    path = generated / "experiments" / "digits.json"
    path.parent.mkdir()
    path.write_text(json.dumps(MANIFESTS["training"](generated)))
    with pytest.raises(RenderError) as error:
        render_site(generated, site)
    assert str(error.value) == f"{path}: kind: a training manifest in experiments/ (the bake stage writes it to training/)"
    path.write_text(json.dumps({**MANIFESTS["experiments"](generated), "kind": "lectures"}))  # no kind of chapter
    with pytest.raises(RenderError) as error:
        render_site(generated, site)
    assert str(error.value) == f"{path}: experiments manifest does not match the schema: kind: 'experiments' was expected"


def test_the_cli_shows_a_bad_chapter_manifest_as_one_line(site: Path) -> None:
    generated = site / "generated"
    manifest = MANIFESTS["training"](generated)
    manifest["settings"]["steps"] = "four"
    path = write_chapter(generated, "training", manifest)
    proc = subprocess.run([sys.executable, "-m", "generator", "render", "--manifest", str(generated / "index.json"),
                           "--out", str(site)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip() == (f"error: {path}: training manifest does not match the schema: "
                                   "settings/steps: 'four' is not of type 'integer'")
