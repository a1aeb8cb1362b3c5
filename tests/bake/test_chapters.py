"""Chapter manifests (generator/bake/chapters/runner.py): baked once, cached after, removed with their section."""

from pathlib import Path

from generator.bake.runner import bake
from generator.spec.prompt_set import load_prompt_set


def _bake(path: Path, text: str, out: Path) -> list[str]:
    path.write_text(text)
    events: list[str] = []
    bake(load_prompt_set(path), out, on_event=events.append)
    return events


def test_a_chapter_is_cached_then_removed_with_its_section(tmp_path: Path) -> None:
    prompts, out = tmp_path / "notes.yaml", tmp_path / "generated"
    with_section = "model: embedded:shapes\nfaithfulness:\n  title: Faithful?\n  report: missing.json\n"
    manifest = out / "faithfulness" / "notes.json"

    events = _bake(prompts, with_section, out)
    assert manifest.is_file() and any(e.startswith("faithfulness notes: baked (no eval report yet") for e in events)
    first = manifest.read_bytes()
    assert any("unchanged, cached" in e for e in _bake(prompts, with_section, out))
    assert manifest.read_bytes() == first

    events = _bake(prompts, "model: embedded:shapes\nprompts:\n  - id: a\n    text: a red circle\n    steps: 2\n", out)
    assert not manifest.exists() and any("manifest removed" in e for e in events)
    assert (out / "prompts" / "a.json").is_file()
