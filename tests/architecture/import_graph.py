"""The import graph of the ``generator`` package, read from the source with ``ast`` (nothing is imported).

Every import counts, including the ones inside functions: a late import hides a cycle from Python,
not from a reader.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "generator"


@dataclass(frozen=True)
class Imported:
    """One import statement: the importing module, the imported module and the names it takes."""

    source: str
    target: str
    names: tuple[str, ...]
    line: int


def module_name(path: Path) -> str:
    """``generator/bake/store.py`` -> ``generator.bake.store`` (a package is its ``__init__``)."""
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache(maxsize=1)
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def _resolve(source: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved against ``source``)."""
    if not node.level:
        return node.module or ""
    base = source.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


@lru_cache(maxsize=1)
def imports() -> tuple[Imported, ...]:
    """Every import in the package, to any module (third-party ones included)."""
    known = modules()
    found = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [Imported(name, alias.name, (), node.lineno) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(name, path.name == "__init__.py", node)
                names = tuple(alias.name for alias in node.names)
                submodules = [n for n in names if f"{target}.{n}" in known]
                found += [Imported(name, f"{target}.{n}", (), node.lineno) for n in submodules]
                rest = tuple(n for n in names if n not in submodules)
                if rest or not submodules:
                    found.append(Imported(name, target, rest, node.lineno))
    return tuple(found)


@lru_cache(maxsize=1)
def internal_edges() -> dict[str, set[str]]:
    """Module -> the package modules it imports (a package import counts as importing its ``__init__``)."""
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for item in imports():
        if item.target in known and item.target != item.source:
            edges[item.source].add(item.target)
    return edges


def cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    edges = internal_edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return components


def private_imports() -> list[Imported]:
    """Imports of a ``_private`` name from another module of the package."""
    known = modules()
    return [item for item in imports()
            if item.target in known and any(n.startswith("_") and not n.startswith("__") for n in item.names)]


def room(module: str) -> str:
    """The room (first folder under ``generator``) a module lives in; top-level modules are their own room."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]
