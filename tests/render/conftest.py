"""Fixtures for render tests: a fake bake output in a temporary site dir (real small images)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakesite import write_fake_generated  # noqa: E402


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """tmp/site with the repo's site/assets (CSS, JS) and a fake bake output in site/generated."""
    site = tmp_path / "site"
    shutil.copytree(Path(__file__).resolve().parents[2] / "site" / "assets", site / "assets")
    write_fake_generated(site / "generated")
    return site


@pytest.fixture(scope="session")
def schema_validator():
    """The bake stage's manifest schema, as a jsonschema validator (the reference implementation)."""
    jsonschema = pytest.importorskip("jsonschema")
    from generator.manifest.schema import SCHEMA_PATH

    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)
