"""Fixtures for render tests: a fake bake output in a temporary site dir (real small images)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakesite import write_fake_generated  # noqa: E402


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """tmp/site with a fake bake output in site/generated (no hand-written pages)."""
    site = tmp_path / "site"
    write_fake_generated(site / "generated")
    return site


@pytest.fixture(scope="session")
def schema_validator():
    """The bake stage's manifest schema, as a jsonschema validator (the reference implementation)."""
    jsonschema = pytest.importorskip("jsonschema")
    from generator.render.schema import SCHEMA_PATH

    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)
