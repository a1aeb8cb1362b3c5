"""The house rules of ``generator/``, read from the source: imports flow downward, rooms keep to their kind."""

from __future__ import annotations

import pytest
from import_graph import Imported, cycles, imports, modules, private_imports, room

TORCH_LIBRARIES = ("torch", "diffusers", "transformers", "safetensors", "accelerate")
MAX_LINES = 400


def _reachable(start: str) -> set[str]:
    """Every package module ``start`` imports, directly or through others."""
    from import_graph import internal_edges

    edges = internal_edges()
    seen, todo = set(), [start]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _third_party(module: str) -> set[str]:
    """Top-level names of the outside packages ``module`` imports (directly)."""
    return {item.target.split(".")[0] for item in imports()
            if item.source == module and not item.target.startswith("generator")}


def _describe(items: list[Imported]) -> list[str]:
    return [f"{item.source}:{item.line} imports {item.target} {item.names}" for item in items]


def test_no_import_cycles() -> None:
    assert cycles() == []


def test_no_private_names_cross_modules() -> None:
    assert _describe(private_imports()) == []


@pytest.mark.parametrize("torch_free_room", ["render", "manifest"])
def test_render_and_manifest_need_neither_bake_nor_torch(torch_free_room: str) -> None:
    problems = []
    for module in (m for m in modules() if room(m) == torch_free_room):
        reached = _reachable(module) | {module}
        problems += [f"{module} reaches {m}" for m in reached if room(m) == "bake"]
        problems += [f"{module} (through {m}) imports {lib}"
                     for m in reached for lib in _third_party(m) if lib in TORCH_LIBRARIES]
    assert problems == []


def test_spec_reads_nothing_but_the_yaml() -> None:
    """Spec modules import only other spec modules and the error type; no images, weights or models."""
    allowed_inside = {"spec", "errors"}
    allowed_outside = {"__future__", "dataclasses", "hashlib", "json", "math", "pathlib", "re", "typing", "yaml",
                       "collections", "functools", "enum", "itertools", "os"}
    problems = []
    for module in (m for m in modules() if room(m) == "spec"):
        problems += [f"{module} imports {m}" for m in _reachable(module) if room(m) not in allowed_inside]
        problems += [f"{module} imports {lib}" for lib in _third_party(module) - allowed_outside]
    assert problems == []


def test_builtin_models_know_nothing_of_evaluation_or_baking() -> None:
    problems = [f"{module} reaches {m}" for module in modules() if room(module) == "builtin"
                for m in _reachable(module) if room(m) in ("evaluate", "bake", "render", "cli", "experiments")]
    assert problems == []


def test_no_module_over_the_size_limit() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}
